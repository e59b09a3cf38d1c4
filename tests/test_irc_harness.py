"""
Proof that the IRC end-to-end harness works, against a known IRC server: ngircd, run here in the
foreground on 127.0.0.1 with a configuration of its own. irssi (L{tests.irc_tmux.Irssi}) in tmux
and the raw socket client (L{tests.e2e.IrcClient}) join a channel and exchange channel and
private messages, in plain TCP and in TLS. Skipped, saying why, without ngircd, irssi or tmux;
CI does not install ngircd, so there it is skipped: the real end-to-end tests run the harness
against chat_twisted's own IRC door.
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import WAIT, IrcClient, free_port, wait_until
from tests.irc_tmux import Irssi, needs_irssi
from tests.helpers import write_self_signed

NGIRCD = shutil.which("ngircd")

pytestmark = [
    pytest.mark.skipif(
        NGIRCD is None,
        reason="ngircd is not installed: it is only the reference IRC server these harness tests run against "
               "(apt-get install ngircd; CI does not)",
    ),
    needs_irssi,
]


class Ngircd:
    """
    ngircd in the foreground (C{-n}) on a free port of 127.0.0.1 (and a TLS port with C{tls}, a
    key and certificate pair), configured in C{workdir}: no DNS or ident look-ups, no PAM, no
    other servers. Stopped by L{stop}.
    """

    def __init__(self, workdir: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        includes = workdir / "ngircd.conf.d"
        includes.mkdir()
        config = workdir / "ngircd.conf"
        text = (
            "[Global]\n"
            "  Name = irc.test\n  Info = harness test server\n"
            "  AdminInfo1 = test\n  AdminInfo2 = test\n  AdminEMail = test@invalid\n"
            f"  Listen = 127.0.0.1\n  Ports = {self.port}\n  MotdPhrase = \"test server\"\n"
            "[Limits]\n  MaxConnectionsIP = 0\n  MaxNickLength = 30\n"
            f"[Options]\n  DNS = no\n  Ident = no\n  PAM = no\n  IncludeDir = {includes}\n"
        )
        if tls is not None:
            key, cert = tls
            text += f"[SSL]\n  KeyFile = {key}\n  CertFile = {cert}\n  Ports = {self.tls_port}\n"
        config.write_text(text)
        self.log_path = workdir / "ngircd.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([NGIRCD or "ngircd", "-n", "-f", str(config)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        for port in (self.port, self.tls_port):
            if port is not None:
                self._wait_for_log(f"Now listening on [127.0.0.1]:{port} ")

    def _wait_for_log(self, text: str) -> None:
        """Wait (bounded) until ngircd's output has C{text}."""

        def said() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ngircd exited:\n{self.log_path.read_text(errors='replace')}")
            return text in self.log_path.read_text(errors="replace")

        try:
            wait_until(said, f"ngircd to say {text!r}", seen=lambda: self.log_path.read_text(errors="replace"))
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop ngircd with SIGTERM (bounded wait, then SIGKILL)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[Ngircd]:
    """ngircd on 127.0.0.1 with a plain port and a TLS port (a self-signed certificate for 127.0.0.1)."""
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    key, cert = write_self_signed(tls_dir)
    server = Ngircd(tmp_path, tls=(key, cert))
    try:
        yield server
    finally:
        server.stop()


def test_irssi_and_socket_client_exchange_channel_and_private_messages(ngircd: Ngircd, tmp_path: Path) -> None:
    """irssi in tmux and the raw socket client, both in #lobby, see each other's channel and private messages."""
    bob = IrcClient(ngircd.port)
    try:
        bob.register("bob", caps=["multi-prefix"])
        assert bob.nick == "bob" and bob.caps_enabled == {"multi-prefix"}
        with Irssi(tmp_path, "alice") as alice:
            assert alice.connect(ngircd.port) == "alice"
            alice.join("#lobby")
            bob.join("#lobby")
            alice.wait_for(r"bob \S+ has joined #lobby", target="#lobby")

            bob.privmsg("#lobby", "hello from bob")
            alice.wait_for(r"^\S+ <bob> hello from bob$", target="#lobby")
            alice.send("hello from alice")  # plain text goes to the active window: #lobby
            bob.expect_privmsg("alice", "#lobby", "hello from alice")

            alice.say("bob", "psst, bob")
            bob.expect_privmsg("alice", "bob", "psst, bob")
            bob.privmsg("alice", "psst yourself")
            alice.wait_for(r"^\S+ <bob> psst yourself$", target="bob")
            alice.send("/query bob")  # /msg opened a query window but left #lobby the active one
            alice.wait_for_screen(r"^\S+ <bob> psst yourself$")
            assert "psst yourself" not in alice.log_path("#lobby").read_text()

            assert alice.quit("see you") == 0
            quit_message = bob.expect_message("QUIT")[-1]
            assert quit_message.nick == "alice" and "see you" in quit_message.last
        bob.quit()
    finally:
        bob.close()


def test_two_irssi_over_tls_exchange_channel_and_private_messages(ngircd: Ngircd, tmp_path: Path) -> None:
    """Two irssi over TLS (one trusting the self-signed certificate, one not verifying) talk in #lobby and privately."""
    assert ngircd.tls_port is not None
    cert = tmp_path / "tls" / "cert.pem"
    with Irssi(tmp_path, "alice") as alice, Irssi(tmp_path, "bob") as bob:
        # irssi checks the certificate's DNS names only, never its IP addresses: connect by name
        assert alice.connect(ngircd.tls_port, "localhost", tls=True, tls_cafile=cert) == "alice"
        assert bob.connect(ngircd.tls_port, tls=True, tls_verify=False) == "bob"
        alice.join("#lobby")
        bob.join("#lobby")
        alice.wait_for(r"bob \S+ has joined #lobby", target="#lobby")

        bob.send("hello over tls")
        alice.wait_for(r"^\S+ <bob> hello over tls$", target="#lobby")
        alice.say("bob", "private over tls")
        bob.wait_for(r"^\S+ <alice> private over tls$", target="alice")

        # the socket client checks the same certificate the same way
        carol = IrcClient(ngircd.tls_port, tls=ssl.create_default_context(cafile=str(cert)))
        try:
            carol.register("carol")
            carol.join("#lobby")
            alice.send("hello carol")
            carol.expect_privmsg("alice", "#lobby", "hello carol")
        finally:
            carol.close()

        assert alice.quit() == 0
        bob.wait_for(r"alice \S+ has quit", target="#lobby")
        assert bob.quit() == 0


def test_irssi_refuses_an_unverified_certificate(ngircd: Ngircd, tmp_path: Path) -> None:
    """irssi verifies the server's certificate by default, so a self-signed one fails unless trusted or unverified."""
    assert ngircd.tls_port is not None
    with Irssi(tmp_path, "alice") as alice:
        alice.connect(ngircd.tls_port, tls=True, wait=False)
        alice.wait_for(r"Could not verify TLS servers certificate: self-signed certificate")
        alice.wait_for(r"Connection lost to 127\.0\.0\.1")
        assert not alice.raw_log().exists() or " 001 " not in alice.raw_log().read_text()
