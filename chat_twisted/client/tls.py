"""
The client's TLS settings: C{--tls} checks the server's certificate against the system's trust
store and C{--host}; C{--ca FILE} trusts only the certificates in FILE; C{--insecure} checks
nothing. Also how a failed handshake is told to the user, in a few words.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

#: How long to wait for the server to accept the connection, and then for the TLS handshake.
CONNECT_TIMEOUT_SECONDS = 10.0

#: Printed to standard error when C{--insecure} turns certificate checks off.
INSECURE_WARNING = "chat: warning: --insecure: the server's certificate is not checked"


def load_trust_root(path: str) -> IOpenSSLTrustRoot:
    """Read the PEM certificates in C{path} as the only ones to trust (an C{argparse} type)."""
    try:
        with open(path, "rb") as file:
            found = x509.load_pem_x509_certificates(file.read())
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {error.strerror}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{path!r} holds no valid PEM certificate") from None
    return trustRootFromCertificates([Certificate.loadPEM(cert.public_bytes(Encoding.PEM)) for cert in found])


def tls_settings(options: argparse.Namespace) -> IOpenSSLClientConnectionCreator:
    """Return the TLS client settings that C{--tls}, C{--ca} and C{--insecure} ask for."""
    if options.insecure:
        return CertificateOptions()  # type: ignore[return-value]  # verifies nothing
    trust = platformTrust() if options.ca is None else options.ca
    return optionsForClientTLS(options.host, trustRoot=trust)


def tls_failure(error: BaseException) -> str:
    """Say in a few words why the TLS handshake failed (OpenSSL's error list reduced to its texts)."""
    if isinstance(error, SSL.Error) and error.args and isinstance(error.args[0], list):
        reason = "; ".join(str(entry[-1]) for entry in error.args[0])
    elif isinstance(error, VerificationError):
        reason = "the server's certificate is for another host name"
    elif isinstance(error, defer.TimeoutError):
        reason = f"no answer in {CONNECT_TIMEOUT_SECONDS:g} seconds"
    else:
        reason = str(error)
    return f"TLS handshake failed: {reason}"
