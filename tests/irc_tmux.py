"""
A real IRC client, Debian's irssi, in a real terminal (a detached tmux session on a private tmux
server, see L{tests.tmux}), for end-to-end tests against any IRC server on 127.0.0.1: host, port,
nick and password in; what irssi shows and logs out. Not a test itself.

Each L{Irssi} has a throwaway home and configuration of its own in the test's directory: no
networks, servers or channels but those a test adds, no scripts, the default theme, no
autoconnect, nothing saved on exit. It logs to files that are easier to assert on than the screen:

  - C{logs/<network>/<target>.log}: irssi's autolog of one channel or private conversation
    (the target lowercased, as irssi writes it), every level;
  - C{logs/all.log}: every line irssi prints that no autolog took, the status window's above all
    (the welcome, SASL outcomes, errors, the connection's end);
  - C{logs/<network>.raw}: irssi's rawlog, the IRC lines it sent (C{<< }) and received (C{>> }),
    and irssi's own notes between them (C{--> }).

Every wait is bounded by L{tests.e2e.WAIT}; no test measures wall-clock time.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.e2e import WAIT
from tests.tmux import TMUX, TmuxPane

#: The irssi program, or None where irssi is not installed.
IRSSI = shutil.which("irssi")

#: Why tests that drive irssi are skipped here, or None if they can run.
SKIP_REASON: str | None = (
    "tmux is not installed, so irssi cannot be run in a terminal (apt-get install tmux irssi)" if TMUX is None
    else "irssi is not installed, so no real IRC client can be driven (apt-get install irssi)" if IRSSI is None
    else None
)

#: Marks a test (or, as C{pytestmark}, a module) that drives irssi: skipped, saying why, without it.
needs_irssi = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

#: The irssi configuration: settings only (no networks, servers, channels); the paths filled in.
_CONFIG = """\
settings = {{
  core = {{
    nick = "{nick}";
    user_name = "{nick}";
    real_name = "{nick}";
    settings_autosave = "no";
    write_buffer_size = "0";
    write_buffer_timeout = "0";
    resolve_prefer_ipv6 = "no";
    log_timestamp = "%H:%M:%S ";
  }};
  "fe-common/core" = {{
    theme = "default";
    autolog = "yes";
    autolog_path = "{logs}/$tag/$0.log";
    autolog_level = "all";
    term_charset = "UTF-8";
    beep_msg_level = "";
    show_nickmode_empty = "no";
  }};
  "fe-text" = {{ paste_detect_time = "0"; }};
}};
logs = {{ "{logs}/all.log" = {{ auto_open = "yes"; level = "all"; }}; }};
"""


def _escape_log_target(target: str) -> str:
    """The file name irssi's autolog gives C{target}: lowercased (IRC is case-insensitive), "/" as "_"."""
    return target.lower().replace("/", "_")


class Irssi:
    """
    One irssi in a detached tmux session of C{width}x{height}, with its own home, configuration
    and logs under C{workdir/irssi-<nick>}; started without connecting anywhere. Call L{close}
    (or use it as a context manager) to stop it whatever happened.
    """

    def __init__(self, workdir: Path, nick: str, width: int = 100, height: int = 30) -> None:
        if SKIP_REASON is not None:
            pytest.skip(SKIP_REASON)
        self.nick = nick
        self.directory = workdir / f"irssi-{nick}"
        self.home = self.directory / "home"
        self.logs = self.directory / "logs"
        self.config = self.directory / "config"
        self.home.mkdir(parents=True)
        self.logs.mkdir()
        self.config.write_text(_CONFIG.format(nick=nick, logs=self.logs), "utf-8")
        command = [
            "env", "LC_ALL=C.UTF-8", "LANG=C.UTF-8", f"HOME={self.home}",
            IRSSI or "irssi", f"--home={self.home}", f"--config={self.config}", "--noconnect", "-n", nick,
        ]
        self.pane = TmuxPane(self.directory, command, width, height)
        self.networks: list[str] = []
        self._wait_until_ready()

    def __enter__(self) -> Irssi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _wait_until_ready(self) -> None:
        """
        Wait (bounded) until irssi reads what is typed: keys typed while it starts are lost, so
        type an /echo until its output is logged, each try given a moment (not a threshold: a
        slow start only means more tries).
        """
        deadline = time.monotonic() + WAIT
        for attempt in range(1, 1000):
            token = f"irssi-is-ready-{attempt}"
            self.send(f"/echo {token}")
            moment = time.monotonic() + 0.5
            while time.monotonic() < moment:
                if self.all_log.exists() and "irssi-is-ready-" in self.all_log.read_text("utf-8", errors="replace"):
                    return
                time.sleep(0.05)
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"irssi never read what was typed; the screen:\n{self.screen()}")

    # -- typing

    def send(self, line: str) -> None:
        """Type C{line} (a command such as C{/join #lobby}, or text for the active window) and press Enter."""
        self.pane.type(line)
        self.pane.press("Enter")

    def connect(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        network: str = "chat",
        password: str | None = None,
        sasl: tuple[str, str] | None = None,
        tls: bool = False,
        tls_verify: bool = True,
        tls_cafile: Path | None = None,
        server_options: Sequence[str] = (),
        wait: bool = True,
    ) -> str | None:
        """
        Add C{network} with one server, C{host}:C{port} (its C{password}, sent as PASS, if given;
        SASL PLAIN with C{sasl}'s account and password if given; TLS if C{tls}, verified unless
        not C{tls_verify}, against C{tls_cafile} if given; C{server_options} added to
        C{/server add}, say C{-tls_pinned_cert FINGERPRINT}), and connect to it, the rawlog on.
        With C{wait}, wait (bounded) for the welcome (001) in L{raw_log} and return the nick it
        welcomes (irssi tries another nick if the server refuses its own); else return None.
        """
        if sasl is not None:
            account, secret = sasl
            self.send(f"/network add -sasl_mechanism PLAIN -sasl_username {account} -sasl_password {secret} {network}")
        else:
            self.send(f"/network add {network}")
        options = ["-network", network, "-notls"]
        if tls:
            options = ["-network", network, "-tls", "-tls_verify" if tls_verify else "-notls_verify"]
            if tls_cafile is not None:
                options += ["-tls_cafile", str(tls_cafile)]
        options += server_options
        self.send(f"/server add {' '.join(options)} {host} {port}" + (f" {password}" if password else ""))
        self.send(f"/connect -rawlog {self.raw_log(network)} {network}")
        self.networks.append(network)
        if not wait:
            return None
        return self.wait_for(r"^>> (?:@\S+ )?:\S+ 001 (\S+) ", log=self.raw_log(network)).group(1)

    def join(self, channel: str, network: str = "chat") -> None:
        """Join C{channel} (it becomes the active window) and wait (bounded) until irssi shows the join."""
        self.send(f"/join {channel}")
        self.wait_for(rf"{re.escape(self.nick)} \S+ has joined {re.escape(channel)}", target=channel, network=network)

    def say(self, target: str, text: str) -> None:
        """Send C{text} to C{target} (a channel or a nick) with /msg."""
        self.send(f"/msg {target} {text}")

    def quit(self, message: str = "bye") -> int:
        """Quit with C{message}; wait (bounded) for irssi to exit and return its exit status."""
        self.send(f"/quit {message}")
        return self.pane.exit_status()

    # -- reading

    def log_path(self, target: str | None = None, network: str = "chat") -> Path:
        """The autolog of C{target} (a channel or a nick) on C{network}; with no target, L{all_log}."""
        if target is None:
            return self.all_log
        return self.logs / network / f"{_escape_log_target(target)}.log"

    @property
    def all_log(self) -> Path:
        """The log of every line no autolog took: the status window's above all."""
        return self.logs / "all.log"

    def raw_log(self, network: str = "chat") -> Path:
        """The rawlog of C{network}'s connection: C{<< } before each line irssi sent, C{>> } before each received."""
        return self.logs / f"{network}.raw"

    def wait_for(
        self,
        pattern: str | re.Pattern[str],
        target: str | None = None,
        network: str = "chat",
        log: Path | None = None,
    ) -> re.Match[str]:
        """
        Wait (bounded) until a line of a log matches C{pattern} (searched, multiline); return the
        match. The log is C{log} if given, else the autolog of C{target}, else L{all_log}.
        """
        path = log if log is not None else self.log_path(target, network)
        compiled = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + WAIT
        while True:
            text = path.read_text("utf-8", errors="replace") if path.exists() else ""
            match = compiled.search(text)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{path} never matched {compiled.pattern!r}; it has:\n{text}\nthe screen:\n" + self.screen()
                )
            time.sleep(0.05)

    def screen(self) -> str:
        """The screen as it is now, rows joined by newlines."""
        return "\n".join(self.pane.rows())

    def wait_for_screen(self, check: Callable[[list[str]], bool] | str, what: str = "") -> list[str]:
        """
        Wait (bounded) until the screen's rows satisfy C{check}, or one of them matches it if it
        is a regular expression; return the rows.
        """
        if isinstance(check, str):
            compiled = re.compile(check)
            return self.pane.wait_for(lambda rows: any(compiled.search(row) for row in rows), what or check)
        return self.pane.wait_for(check, what)

    def close(self) -> None:
        """Stop irssi and its tmux server, whatever state they are in."""
        self.pane.close()
