"""
End-to-end: the real ``twistd -n chat`` scraped over HTTP at ``--metrics``, and logging JSON lines
through ``twistd --logger chat_twisted.logs.json_observer``, after a user chatted.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import WAIT, ServerProcess, SocketClient

METRICS_LISTENING = re.compile(r"chat metrics listening on 127\.0\.0\.1:(\d+)")
SECRET = "secret body text"


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """GET /metrics; return the text and every sample by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def chat(port: int) -> SocketClient:
    """Alice logs in, says the secret text and sees it echoed; bob tries a wrong password and leaves. Return alice."""
    alice = SocketClient(port)
    alice.login("alice")
    alice.send(f"{SECRET}\n/register hunter2pw\n")
    alice.expect(f"alice: {SECRET}")
    alice.expect("registered")
    bob = SocketClient(port)
    bob.login("bob")
    bob.send("/login alice wrongpass\n")
    bob.expect("error:")
    bob.close()
    alice.send("/who\n")
    alice.expect("alice")
    return alice


def test_metrics_are_scraped_over_http_from_a_running_server(tmp_path: Path) -> None:
    """After a chat, /metrics over real HTTP counts the user, the message and the failed login, and holds no text."""
    server = ServerProcess(tmp_path, ["--metrics", "tcp:0:interface=127.0.0.1"])
    try:
        port = int(server.wait_for_log(METRICS_LISTENING).group(1))
        alice = chat(server.port)
        text, samples = scrape(port)
        alice.close()
        assert samples[("chat_connections", (("door", "line"),))] == 1
        assert samples[("chat_users", ())] == 1
        assert samples[("chat_messages_total", (("kind", "say"),))] == 1
        assert samples[("chat_commit_seconds_count", ())] >= 1
        assert samples[("chat_deliveries_total", ())] >= 1
        assert samples[("chat_login_failures_total", (("reason", "wrong_password"),))] == 1
        assert samples[("process_resident_memory_bytes", ())] > 0
        for secret in ("secret", "hunter2pw", "wrongpass"):
            assert secret not in text
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=WAIT)
        assert missing.value.code == 404
    finally:
        assert server.stop() == 0, server.log_text()
    assert "GET /metrics" not in server.log_text()


def test_twistd_logger_writes_json_lines_without_message_bodies(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With --logger chat_twisted.logs.json_observer, each log line is a JSON object; no body or password is in it."""
    monkeypatch.setenv("CHAT_LOG_JSON", str(tmp_path / "server.log"))
    server = ServerProcess(tmp_path, twistd_args=["--logger", "chat_twisted.logs.json_observer"])
    try:
        chat(server.port).close()
    finally:
        assert server.stop() == 0, server.log_text()
    text = server.log_text()
    events = [json.loads(line) for line in text.splitlines()]
    texts = [event["text"] for event in events]
    assert any(re.fullmatch(r"chat server listening on 127\.0\.0\.1:\d+", line) for line in texts)
    assert any(line.startswith("alice logged in from 127.0.0.1:") for line in texts)
    assert {event["log_level"]["name"] for event in events} <= {"debug", "info", "warn"}
    for secret in ("secret", "hunter2pw", "wrongpass"):
        assert secret not in text
