"""
TLS: the server's C{ssl:} port and the client's C{--tls}, C{--ca} and C{--insecure}.

Unit tests (no sockets) for the new client options and for C{run} on a memory reactor, then
end-to-end tests: the real ``twistd -n chat`` on an C{ssl:} port of 127.0.0.1 with a self-signed
certificate made here, Python's own TLS client and the real client program.
"""

from __future__ import annotations

import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer
from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ConnectionLost
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import MemoryReactorClock

from chat_twisted.client import (
    CONNECT_TIMEOUT_SECONDS,
    INSECURE_WARNING,
    ChatClient,
    ServerSide,
    parse_args,
    run,
    tls_failure,
    tls_settings,
)
from tests.e2e import ServerProcess, SocketClient, run_client
from tests.helpers import FakeStdio, accept, exit_code, result_of, write_self_signed

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")

# --- a self-signed certificate -------------------------------------------------------------------


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh self-signed key.pem and cert.pem in C{tmp_path}."""
    return write_self_signed(tmp_path)


# --- parse_args and tls_settings --------------------------------------------------------------------


def test_plain_tcp_by_default() -> None:
    """Without TLS options the client speaks plain TCP."""
    options = parse_args([])
    assert (options.tls, options.ca, options.insecure) == (False, None, False)


def test_tls_flag() -> None:
    """--tls alone: TLS checked against the system's trust store."""
    options = parse_args(["--tls"])
    assert (options.tls, options.ca, options.insecure) == (True, None, False)


def test_ca_implies_tls(cert_files: tuple[Path, Path]) -> None:
    """--ca FILE reads the certificate at once and turns TLS on."""
    options = parse_args(["--ca", str(cert_files[1])])
    assert options.tls and not options.insecure
    assert options.ca is not None


def test_insecure_implies_tls() -> None:
    """--insecure turns TLS on."""
    options = parse_args(["--insecure"])
    assert options.tls and options.insecure


def test_ca_and_insecure_conflict(cert_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """--ca and --insecure contradict each other: a usage error."""
    with pytest.raises(SystemExit) as raised:
        parse_args(["--ca", str(cert_files[1]), "--insecure"])
    assert raised.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["missing", "key"])
def test_ca_must_be_readable_pem_certificate(
    which: str, cert_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--ca naming a missing file, or one with no certificate in it, is a usage error naming the file."""
    path = cert_files[0] if which == "key" else cert_files[0].parent / "missing.pem"
    with pytest.raises(SystemExit) as raised:
        parse_args(["--ca", str(path)])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "argument --ca: " in err and repr(str(path)) in err


def test_tls_settings_verify_host_name() -> None:
    """--tls and --ca check the certificate against --host (sent by SNI when it is a name)."""
    settings = tls_settings(parse_args(["--tls", "--host", "chat.example"]))
    assert settings._hostnameASCII == "chat.example"  # type: ignore[attr-defined]
    assert settings._sendServerName  # type: ignore[attr-defined]


def test_tls_settings_insecure_verifies_nothing() -> None:
    """--insecure gives TLS settings that check no certificate."""
    settings = tls_settings(parse_args(["--insecure"]))
    assert isinstance(settings, CertificateOptions)
    assert not settings.verify


def test_tls_failure_reasons() -> None:
    """Handshake failures are told in a few words: OpenSSL's texts, a host name mismatch, a time-out."""
    assert tls_failure(SSL.Error([("SSL routines", "", "certificate verify failed")])) == (
        "TLS handshake failed: certificate verify failed"
    )
    assert tls_failure(VerificationError(errors=[])) == (
        "TLS handshake failed: the server's certificate is for another host name"
    )
    assert tls_failure(defer.TimeoutError(10, "Deferred")) == "TLS handshake failed: no answer in 10 seconds"
    assert tls_failure(ConnectionLost()).startswith("TLS handshake failed: Connection to the other side")


def test_plain_server_side_is_ready_at_once() -> None:
    """Over plain TCP there is no handshake to wait for."""
    assert result_of(ServerSide(ChatClient(MemoryReactorClock())).ready) is None


# --- run on a memory reactor -------------------------------------------------------------------------


def test_run_tls_sends_client_hello_and_waits(fake_stdio: FakeStdio) -> None:
    """With --tls, C{run} starts a TLS handshake and attaches the terminal only once it is done."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--tls"]))
    server = accept(reactor)
    assert server.value()[:1] == b"\x16"  # a TLS handshake record: the ClientHello
    assert fake_stdio.terminals == []
    assert not d.called
    # HostnameEndpoint's wrapper, then TLS, then our ServerSide: as if the handshake finished.
    server_side = server.protocol._wrappedProtocol.wrappedProtocol  # type: ignore[attr-defined]
    assert isinstance(server_side, ServerSide)
    server_side.handshakeCompleted()
    assert len(fake_stdio.terminals) == 1


def test_run_tls_connection_lost_in_handshake_exits_1(
    capsys: pytest.CaptureFixture[str], fake_stdio: FakeStdio
) -> None:
    """A connection lost during the handshake is one 'cannot connect' line and exit status 1."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--insecure", "--port", "6001"]))
    server = accept(reactor)
    server.loseConnection()
    assert exit_code(d) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == INSECURE_WARNING
    assert err[1].startswith("chat: cannot connect to 127.0.0.1:6001: TLS handshake failed: ")
    assert len(err) == 2
    assert fake_stdio.terminals == []


def test_run_tls_handshake_time_out_exits_1(
    capsys: pytest.CaptureFixture[str], fake_stdio: FakeStdio
) -> None:
    """A server that accepts but never answers the handshake is given up on after the time-out."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--tls"]))
    accept(reactor)
    reactor.advance(CONNECT_TIMEOUT_SECONDS)
    assert exit_code(d) == 1
    assert capsys.readouterr().err == (
        "chat: cannot connect to 127.0.0.1:5000: TLS handshake failed: "
        f"no answer in {CONNECT_TIMEOUT_SECONDS:g} seconds\n"
    )


# --- end to end ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """One real server on a TLS port of 127.0.0.1 for this module's end-to-end tests, and its cert.pem."""
    workdir = tmp_path_factory.mktemp("tls")
    key, cert = write_self_signed(workdir)
    process = ServerProcess(workdir, port=f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
    try:
        yield process, cert
    finally:
        assert process.stop() in (0, -signal.SIGTERM), process.log_text()


def tls_socket(server: ServerProcess, cert: Path) -> SocketClient:
    """A Python TLS socket client on C{server} that trusts C{cert} and checks the host name."""
    return SocketClient(server.port, tls=ssl.create_default_context(cafile=str(cert)))


def test_line_protocol_over_tls(tls_server: tuple[ServerProcess, Path]) -> None:
    """The server speaks the line protocol over TLS: login, room messages, and /quit closes at once."""
    server, cert = tls_server
    alice, bob = tls_socket(server, cert), tls_socket(server, cert)
    try:
        assert alice.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
        alice.login("alice")
        bob.login("bob")
        alice.send("secret hello\n")
        assert bob.expect("alice: secret hello")[-1].endswith("] alice: secret hello")
        bob.send("/quit\n")
        assert "Goodbye" in bob.expect_closed()[-1]  # the server ends TLS and closes, without waiting for us
        alice.expect("* bob left lobby (quit)")
    finally:
        alice.close()
        bob.close()


def test_client_with_ca_chats_over_tls(tls_server: tuple[ServerProcess, Path]) -> None:
    """The client with --ca cert.pem connects, chats, sees its own message and exits 0."""
    server, cert = tls_server
    watcher = tls_socket(server, cert)
    try:
        watcher.login("watcher")
        result = run_client(server.port, b"carol\nhello over tls\n", "--ca", str(cert))
        assert result.returncode == 0, result.stderr
        assert result.stderr == b""
        assert "carol: hello over tls" in result.stdout.decode("utf-8")
        watcher.expect("carol: hello over tls")
    finally:
        watcher.close()


def test_client_checks_host_name_by_dns_name(tls_server: tuple[ServerProcess, Path]) -> None:
    """--host localhost is checked against the certificate's DNS name (and the chat works)."""
    server, cert = tls_server
    result = run_client(server.port, b"dave\n", "--host", "localhost", "--ca", str(cert))
    assert result.returncode == 0, result.stderr
    assert "Welcome, dave!" in result.stdout.decode("utf-8")


def test_client_tls_rejects_self_signed_certificate(tls_server: tuple[ServerProcess, Path]) -> None:
    """With --tls alone the self-signed certificate is not trusted: non-zero exit, one line, nothing sent."""
    server, _ = tls_server
    result = run_client(server.port, b"mallory\nnot for you\n", "--tls")
    assert result.returncode != 0
    err = result.stderr.decode().strip().splitlines()
    assert err == [
        f"chat: cannot connect to 127.0.0.1:{server.port}: TLS handshake failed: certificate verify failed"
    ]
    assert result.stdout == b""
    assert "mallory" not in server.log_text()


def test_client_insecure_connects_with_warning(tls_server: tuple[ServerProcess, Path]) -> None:
    """--insecure connects to the self-signed server, after one warning line on stderr."""
    server, _ = tls_server
    result = run_client(server.port, b"erin\nunchecked\n", "--insecure")
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines() == [INSECURE_WARNING]
    assert "erin: unchecked" in result.stdout.decode("utf-8")
