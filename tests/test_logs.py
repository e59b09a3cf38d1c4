"""Tests for the JSON lines log (chat_twisted.logs), in-process: no twistd, no files but tmp_path."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.logger import Logger, globalLogPublisher

from chat_twisted import logs
from chat_twisted.wire.line import LineChatFactory
from tests.helpers import line_user, make_core


def test_each_event_is_one_json_object_on_a_line() -> None:
    """An event becomes one line of JSON with its fields, level, format and worded text."""
    out = io.StringIO()
    log = Logger(observer=logs.json_lines_observer(out), namespace="chat_twisted.test")
    log.info("{nick} logged in from {peer}", nick="bob", peer="127.0.0.1:4000")
    log.warn("second")
    lines = out.getvalue().split("\n")
    assert len(lines) == 3 and lines[2] == ""
    first = json.loads(lines[0])
    assert first["text"] == "bob logged in from 127.0.0.1:4000"
    assert (first["nick"], first["log_level"]["name"], first["log_namespace"]) == ("bob", "info", "chat_twisted.test")
    assert first["log_format"] == "{nick} logged in from {peer}" and isinstance(first["log_time"], float)
    assert json.loads(lines[1])["log_level"]["name"] == "warn"


def test_a_failure_keeps_its_traceback_in_the_text() -> None:
    """A logged failure's line carries the traceback in C{text}, still on one line of JSON."""
    out = io.StringIO()
    log = Logger(observer=logs.json_lines_observer(out))
    try:
        raise OSError("disk full")
    except OSError:
        log.failure("storing a message from {nick} failed", nick="bob")
    [line] = out.getvalue().splitlines()
    event = json.loads(line)
    assert event["text"].startswith("storing a message from bob failed\nTraceback")
    assert "OSError: disk full" in event["text"]


def test_json_observer_appends_to_the_file_named_in_the_environment(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With CHAT_LOG_JSON set, the observer twistd's --logger builds appends JSON lines to that file."""
    path = tmp_path / "chat.json"
    path.write_text('{"earlier": true}\n', "utf-8")
    monkeypatch.setenv(logs.JSON_LOG_PATH, str(path))
    observer = logs.json_observer()
    Logger(observer=observer).info("chat server listening on {address}", address="127.0.0.1:5000")
    observer._outFile.close()  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert lines[0] == {"earlier": True}
    assert lines[1]["text"] == "chat server listening on 127.0.0.1:5000"


def test_json_observer_writes_to_stdout_by_default(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Without CHAT_LOG_JSON the JSON lines go to stdout (the journal, under systemd)."""
    monkeypatch.delenv(logs.JSON_LOG_PATH, raising=False)
    Logger(observer=logs.json_observer()).info("hello {who}", who="world")
    assert json.loads(capsys.readouterr().out)["text"] == "hello world"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the JSON observer writes of every event published while the test runs."""
    out = io.StringIO()
    observer = logs.json_lines_observer(out)
    globalLogPublisher.addObserver(observer)
    yield out
    globalLogPublisher.removeObserver(observer)


def test_a_chat_logs_no_message_body_or_password(json_log: io.StringIO) -> None:
    """Users chatting, registering and failing a login leave logins in the JSON log, never a body or password."""
    core, _ = make_core()
    factory = LineChatFactory(core, rate=0.0)
    alice, bob = line_user(factory, "alice", 1), line_user(factory, "bob", 2)
    alice.send("secret body text\n/me secret action\n/msg bob secret private\n/topic secret topic\n")
    alice.send("/register hunter2pw\n/quit secret reason\n")
    bob.send("/login alice wrongpass\n")
    text = json_log.getvalue()
    assert [json.loads(line) for line in text.splitlines()]
    assert "alice logged in from 127.0.0.1:1" in text
    for secret in ("secret", "hunter2pw", "wrongpass"):
        assert secret not in text
