"""TLS service check of a CS or server: is it answering, how fast, and what certificate it presents.

The certificate facts (key algorithm and size, signature hash, expiry) feed the
lifecycle checks — crypto compromise (暗号危殆化) forced renewals before, so a
weak or expiring certificate is something the NOC must see. The check accepts
any certificate (it inspects, it does not trust) and allows legacy algorithms,
because refusing them would hide exactly what it is looking for.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    subject: str
    issuer: str
    key_algorithm: str  # "rsa" | "ecdsa" | "ed25519" | ...
    key_size: int
    signature_hash: str  # "sha1", "sha256", ... ("none" for EdDSA)
    not_before: float  # epoch seconds
    not_after: float

    def days_left(self, now: float) -> float:
        return (self.not_after - now) / 86_400

    @property
    def weak(self) -> bool:
        """Below what the fleet's renewal rules accept (RSA < 2048, SHA-1 or MD5 signatures)."""
        return (self.key_algorithm == "rsa" and self.key_size < 2048) or self.signature_hash in ("sha1", "md5")


@dataclass(frozen=True, slots=True)
class TlsCheck:
    ok: bool
    error: str | None  # "timeout", "refused", "handshake: ...", None when ok
    connect_ms: float | None
    handshake_ms: float | None
    tls_version: str | None
    certificate: CertificateFacts | None


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


_CONTEXT = _client_context()


def certificate_facts(der: bytes) -> CertificateFacts:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        algorithm, size = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        algorithm, size = "ecdsa", key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        algorithm, size = "dsa", key.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm, size = "ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        algorithm, size = "ed448", 456
    else:
        algorithm, size = type(key).__name__.lower(), 0
    digest = cert.signature_hash_algorithm
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        key_algorithm=algorithm,
        key_size=size,
        signature_hash=digest.name if digest is not None else "none",
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )


async def check_tls(address: str, port: int = 443, *, timeout: float = 3.0, source: str | None = None) -> TlsCheck:
    """Connect, handshake, read the peer certificate, close. Never raises for network trouble.

    ``source``: the local address to connect from (the network monitor's own), else the kernel's choice.
    """
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    try:
        transport, _ = await asyncio.wait_for(loop.create_connection(
            asyncio.Protocol, address, port, local_addr=(source, 0) if source else None), timeout)
    except asyncio.TimeoutError:
        return TlsCheck(False, "timeout", None, None, None, None)
    except OSError as exc:
        return TlsCheck(False, "refused" if isinstance(exc, ConnectionRefusedError) else f"connect: {exc}",
                        None, None, None, None)
    connected = time.perf_counter()
    try:
        tls_transport = await asyncio.wait_for(
            loop.start_tls(transport, transport.get_protocol(), _CONTEXT, server_hostname=None),
            max(0.1, timeout - (connected - began)))
    except asyncio.TimeoutError:
        transport.abort()
        return TlsCheck(False, "timeout", (connected - began) * 1000, None, None, None)
    except (ssl.SSLError, OSError, ConnectionError) as exc:
        transport.abort()
        return TlsCheck(False, f"handshake: {exc}", (connected - began) * 1000, None, None, None)
    done = time.perf_counter()
    if tls_transport is None:  # asyncio's answer when the peer closes during the handshake
        transport.abort()
        return TlsCheck(False, "handshake: connection closed", (connected - began) * 1000, None, None, None)
    try:
        ssl_object = tls_transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        version = ssl_object.version() if ssl_object is not None else None
        facts = certificate_facts(der) if der else None
    except ValueError as exc:
        return TlsCheck(False, f"certificate: {exc}", (connected - began) * 1000, (done - connected) * 1000,
                        None, None)
    finally:
        tls_transport.abort()
    return TlsCheck(True, None, (connected - began) * 1000, (done - connected) * 1000, version, facts)


__all__ = ["CertificateFacts", "TlsCheck", "certificate_facts", "check_tls"]
