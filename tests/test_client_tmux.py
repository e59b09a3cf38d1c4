"""
End to end, as a person would use it: the real client in a real terminal (a detached tmux session
of 100x30 on a private tmux server), against the real ``twistd -n chat`` on 127.0.0.1, with
keys sent by ``tmux send-keys`` and the screen read by ``tmux capture-pane``. Skipped where tmux
is not installed. Every wait is bounded.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import WAIT, ServerProcess, SocketClient, free_port
from tests.helpers import client_command
from tests.tmux import TMUX, TmuxPane

pytestmark = [
    pytest.mark.skipif(
        TMUX is None,
        reason="tmux is not installed, so the client cannot be run in a real terminal (apt-get install tmux)",
    ),
    pytest.mark.usefixtures("no_user_settings"),  # no CHAT_* variables or user config file of whoever runs the tests
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server on an ephemeral port of 127.0.0.1, stopped after the test."""
    process = ServerProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def panes() -> Iterator[list[TmuxPane]]:
    """The tmux panes a test starts, all closed after it."""
    started: list[TmuxPane] = []
    yield started
    for pane in started:
        pane.close()


def last_row(rows: list[str]) -> str:
    """The bottom non-blank row: where the line being typed is."""
    return rows[-1] if rows else ""


def test_message_arrives_above_the_line_being_typed(
    server: ServerProcess, tmp_path: Path, panes: list[TmuxPane]
) -> None:
    """
    In a real terminal, a message arriving while a line is half typed appears above it, the half
    line stays whole at the bottom, finishing it sends it whole, own lines are coloured, and
    /quit exits 0.
    """
    bob = SocketClient(server.port)
    try:
        bob.login("bob")
        pane = TmuxPane(tmp_path, client_command(server.port, "--nick", "alice"))
        panes.append(pane)
        pane.wait_for(lambda rows: any("alice joined lobby" in row for row in rows) and last_row(rows) == "alice>",
                      "the welcome and the prompt")
        pane.type("this is a partial li")
        pane.wait_for(lambda rows: last_row(rows) == "alice> this is a partial li", "the partial line")

        bob.send("hello from bob while alice types\n")
        rows = pane.wait_for(lambda rows: any("bob: hello from bob while alice types" in row for row in rows),
                             "bob's message")
        assert last_row(rows) == "alice> this is a partial li"
        message_row = next(i for i, row in enumerate(rows) if "bob: hello from bob" in row)
        assert message_row < len(rows) - 1
        assert sum("partial" in row for row in rows) == 1

        pane.type("ne")
        pane.press("Enter")
        assert bob.expect("alice: this is a partial line")[-1].endswith("] alice: this is a partial line")
        rows = pane.wait_for(lambda rows: any("alice: this is a partial line" in row for row in rows),
                             "alice's own message")
        assert last_row(rows) == "alice>"
        own = next(row for row in pane.rows(colours=True) if "alice: this is a partial line" in row)
        assert "\x1b[32m" in own  # green: our own message

        pane.type("/quit")
        pane.press("Enter")
        assert pane.exit_status() == 0
        bob.expect("* alice left lobby (quit)")
    finally:
        bob.close()


def test_long_lines_wrap_and_resize_repaints(server: ServerProcess, tmp_path: Path, panes: list[TmuxPane]) -> None:
    """A long message wraps with a hanging indent, a long typed line wraps below it, and both survive a resize."""
    bob = SocketClient(server.port)
    try:
        bob.login("bob")
        pane = TmuxPane(tmp_path, client_command(server.port, "--nick", "alice", "--no-color"))
        panes.append(pane)
        pane.wait_for(lambda rows: last_row(rows) == "alice>", "the prompt")
        typed = "0123456789" * 17  # with the prompt, two rows at 100 columns, three at 60
        pane.type(typed)
        pane.wait_for(lambda rows: "".join(rows).endswith("alice> " + typed), "the long typed line")
        bob.send("x " * 70 + "end of bob's long line\n")
        rows = pane.wait_for(lambda rows: any("end of bob's long line" in row for row in rows), "bob's long message")
        first = next(i for i, row in enumerate(rows) if "bob: x x" in row)
        assert rows[first + 1].startswith(" " * 11 + "x")  # hanging indent past "[HH:MM:SS] "
        assert "".join(rows[-2:]) == "alice> " + typed

        def repainted(rows: list[str]) -> bool:
            # tmux itself re-wraps the old rows on resizing, but without the hanging indent
            message_rows = [row for row in rows if "x x" in row or "long line" in row]
            return (
                all(len(row) <= 60 for row in rows)
                and all(row.startswith(("[", " " * 11 + "x", " " * 11 + "end", " " * 11 + "of")) for row in message_rows)
                and "".join(rows[-3:]) == "alice> " + typed
            )

        pane.resize(60, 20)
        rows = pane.wait_for(repainted, "the repainted screen after resizing")
        assert "end of bob's long line" in " ".join(row.strip() for row in rows)
        pane.press("C-c")
        assert pane.exit_status() == 0
    finally:
        bob.close()


def test_reconnects_after_server_restart_and_restores_terminal(tmp_path: Path, panes: list[TmuxPane]) -> None:
    """
    When the server goes away the client says so and keeps the typed line; once a server is back
    on the same port it logs in again as the same user and says so; Ctrl-C then exits 0 and the
    terminal's settings are as they were before the client started.
    """
    port = free_port()
    server = ServerProcess(tmp_path, port=f"tcp:{port}:interface=127.0.0.1")
    settings = tmp_path / "stty"
    command = (
        f"stty -g > {settings}.before; {shlex.join(client_command(port, '--nick', 'alice'))}; status=$?; "
        f"stty -g > {settings}.after; exit $status"
    )
    pane = TmuxPane(tmp_path, ["sh", "-c", command])
    panes.append(pane)
    try:
        pane.wait_for(lambda rows: last_row(rows) == "alice>", "the prompt")
        pane.type("still here")
        server.stop()
        rows = pane.wait_for(lambda rows: any("lost the connection to" in row for row in rows), "the loss")
        assert last_row(rows) == "(offline) alice> still here"
        server = server.restart()
        rows = pane.wait_for(lambda rows: any("reconnected to" in row for row in rows)
                             and last_row(rows) == "alice> still here", "the reconnection", timeout=3 * WAIT)
        server.wait_for_log(re.compile("alice logged in"))
        pane.press("C-c")
        assert pane.exit_status() == 0
        assert settings.with_suffix(".after").read_text() == settings.with_suffix(".before").read_text()
    finally:
        server.stop()
