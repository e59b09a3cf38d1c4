"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e import VirtualDisplay


@pytest.fixture(scope="session")
def x_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualDisplay]:
    """
    A virtual X display (Xvfb with an X authority file of its own) for the whole session, stopped
    at its end; the test is skipped, saying why, where Xvfb or xauth is not installed.
    """
    if shutil.which("Xvfb") is None or shutil.which("xauth") is None:
        pytest.skip("no X server can be had: Xvfb and xauth are not installed (apt-get install xvfb)")
    display = VirtualDisplay(tmp_path_factory.mktemp("x-display"))
    try:
        yield display
    finally:
        display.stop()
