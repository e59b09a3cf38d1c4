"""
Output's direct send: on a plain TCP connection with nothing waiting, the bytes go to the socket
at once, and only what the kernel did not take goes through the transport. No real socket: a
tcp.Server made without one, given a recording stand-in.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import tcp
from twisted.internet.testing import StringTransport

from chat_twisted.guard import Output


class FakeSocket:
    """Takes at most C{room} bytes per send (None: all of them), or raises C{error}."""

    def __init__(self, room: int | None = None, error: OSError | None = None) -> None:
        self.room, self.error = room, error
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        taken = data if self.room is None else data[: self.room]
        self.sent.append(bytes(taken))
        return len(taken)


def plain_tcp(sock: FakeSocket, waiting: bytes = b"") -> tuple[Any, list[bytes]]:
    """A tcp.Server (built without a real socket) on C{sock}; what its write() is given is recorded."""
    transport: Any = tcp.Server.__new__(tcp.Server)
    written: list[bytes] = []
    transport.socket, transport.connected, transport.disconnecting = sock, 1, False
    transport._writeDisconnected, transport._tempDataBuffer = False, []
    transport.dataBuffer, transport.offset = waiting, 0
    transport.write = written.append
    return transport, written


def output_on(transport: Any) -> Output:
    output = Output(1 << 20, lambda: None)
    output.transport = transport  # attach() would register a producer: not needed here
    return output


def test_an_idle_plain_connection_gets_the_bytes_straight_from_the_socket() -> None:
    """Everything the kernel takes never touches the transport's buffer."""
    sock = FakeSocket()
    transport, written = plain_tcp(sock)
    output = output_on(transport)
    output.queue(b"one\r\n")
    output.queue(b"two\r\n")
    output.flush()
    assert sock.sent == [b"one\r\ntwo\r\n"]
    assert written == []


def test_what_the_kernel_does_not_take_goes_through_the_transport() -> None:
    """A partial send leaves the rest, in order, to the transport."""
    sock = FakeSocket(room=3)
    transport, written = plain_tcp(sock)
    output = output_on(transport)
    output.queue(b"abcdef")
    output.flush()
    assert (sock.sent, written) == ([b"abc"], [b"def"])


@pytest.mark.parametrize("error", [BlockingIOError(), ConnectionResetError(), BrokenPipeError()])
def test_a_socket_error_leaves_everything_to_the_transport(error: OSError) -> None:
    """Would-block or a broken connection: the transport is given all of it and deals with it its own way."""
    transport, written = plain_tcp(FakeSocket(error=error))
    output = output_on(transport)
    output.queue(b"hello")
    output.flush()
    assert written == [b"hello"]


def test_bytes_already_waiting_keep_their_place() -> None:
    """With output still buffered in the transport, new bytes queue behind it, never straight to the socket."""
    sock = FakeSocket()
    transport, written = plain_tcp(sock, waiting=b"earlier")
    output = output_on(transport)
    output.queue(b"later")
    output.flush()
    assert (sock.sent, written) == ([], [b"later"])


def test_other_transports_are_written_as_before() -> None:
    """Any other transport (a TLS wrapper, a test's) is given write() as always."""
    transport = StringTransport()
    output = output_on(transport)
    output.queue(b"x")
    output.flush()
    assert transport.value() == b"x"
