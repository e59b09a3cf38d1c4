"""
L{Dialler}: how a client connects to the server its options name (TCP, or TLS with the checks
asked for), shared by the terminal client and the desktop window.
"""

from __future__ import annotations

import argparse
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory

from chat_twisted.client.server import ServerSide
from chat_twisted.client.session import ChatClient
from chat_twisted.client.tls import CONNECT_TIMEOUT_SECONDS, tls_settings


class Dialler:
    """
    Makes connections to C{options.host} and C{options.port} (with TLS if C{options.tls}), each
    a new L{ServerSide} of C{client}. Owns the endpoint and the factory; writes to no transport.
    Calling it makes one connection attempt.
    """

    def __init__(self, reactor: object, client: ChatClient, options: argparse.Namespace) -> None:
        self.where = f"{options.host}:{options.port}"
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor, options.host, options.port, timeout=CONNECT_TIMEOUT_SECONDS
        )
        if options.tls:
            endpoint = wrapClientTLS(tls_settings(options), endpoint, clock=cast(IReactorTime, reactor))
        self.endpoint = endpoint
        self.factory = Factory.forProtocol(lambda: ServerSide(client, tls=options.tls))

    def __call__(self) -> Deferred[ServerSide]:
        """Try to connect once; the Deferred fires with the L{ServerSide}, or fails with why not."""
        return cast("Deferred[ServerSide]", self.endpoint.connect(self.factory))
