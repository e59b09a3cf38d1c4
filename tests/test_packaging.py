"""Packaging: what `pip install .` ships."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_setup_cfg() -> None:
    """Each chat_twisted package directory is in setup.cfg's list, so a plain install ships it."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "chat_twisted").rglob("__init__.py")
    }
    assert found | {"twisted.plugins"} == listed


def test_plugin_directory_is_not_a_package() -> None:
    """twisted/plugins has no __init__.py, so installing it cannot shadow Twisted's own package."""
    assert not (ROOT / "twisted" / "__init__.py").exists()
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()
    assert (ROOT / "twisted" / "plugins" / "chat_twisted_plugin.py").exists()
