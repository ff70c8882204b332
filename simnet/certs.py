"""Certificates for the simulated fleet's TLS services.

Every simulated server presents a certificate that follows its lifecycle data
(key algorithm and size, signature hash, expiry), weak or nearly expired ones
included, so the collectors' lifecycle checks read the real thing off the wire.

Cost model: key generation dominates (RSA-2048 ~50 ms, RSA-4096 ~300 ms), signing
is ~0.1 ms. A ``KeyPool`` therefore keeps a few private keys per (algorithm, size)
and simulated devices share them; only the certificates differ.

SHA-1: ``cryptography`` (≥ 4x) refuses to *sign* certificates with SHA-1 whatever
the CA key type, so an RSA CA would not help. For SHA-1 profiles the certificate
is built and signed normally, then its TBSCertificate is re-labelled
``ecdsa-with-SHA1`` and re-signed with a raw ``ECDSA(SHA1)`` signature (which the
library still allows); see ``_resign_sha1``. OpenSSL accepts the result at
``@SECLEVEL=0``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.inventory.model import CryptoProfile, Device
from monitor.files import write_atomic, write_private
from monitor.pki import build_ca

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

DEFAULT_PROFILE = CryptoProfile(algorithm="rsa", key_size=2048, signature_hash="sha256")
CA_NAME = "Jukimon Simulation CA"
CA_ORG = "J-LIS (simulated)"
CA_KEY_FILE = "simulation-ca.key"
CA_CERT_FILE = "simulation-ca.crt"
CA_VALIDITY = dt.timedelta(days=20 * 365)

_RSA_SIZES = frozenset({1024, 2048, 3072, 4096})
_CURVES: dict[int, type[ec.EllipticCurve]] = {256: ec.SECP256R1, 384: ec.SECP384R1}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
}
_NO_ENCRYPTION = serialization.NoEncryption()


@dataclass(frozen=True, slots=True)
class SimulationCA:
    """The simulation's issuing CA (EC P-256), persisted so certificates survive restarts."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, state_dir: Path, *, now: dt.datetime | None = None) -> SimulationCA:
        """Reuse the CA in ``state_dir`` if present and valid; otherwise create and persist one."""
        now = now or dt.datetime.now(dt.timezone.utc)
        state_dir = Path(state_dir)
        key_path, cert_path = state_dir / CA_KEY_FILE, state_dir / CA_CERT_FILE
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if (
                isinstance(key, ec.EllipticCurvePrivateKey)
                and cert.public_key() == key.public_key()
                and cert.not_valid_after_utc > now
            ):
                return cls(key, cert)
        ca = cls._create(now)
        state_dir.mkdir(parents=True, exist_ok=True)
        write_private(key_path, private_pem(ca.key))
        write_atomic(cert_path, ca.cert_pem)
        return ca

    @classmethod
    def _create(cls, now: dt.datetime) -> SimulationCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
            ]
        )
        cert = build_ca(key, name, not_before=now - dt.timedelta(days=1), not_after=now + CA_VALIDITY)
        return cls(key, cert)


class KeyPool:
    """A few private keys per (algorithm, size), generated on first use, shared by devices.

    Thread-safe: key generation releases the GIL, so callers may generate in a worker
    thread without stalling the event loop that runs the rest of the simulation.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = max(1, size)
        self._keys: dict[tuple[str, int, int], tuple[PrivateKey, bytes]] = {}
        self._lock = threading.Lock()

    def key_for(self, device_id: str, algorithm: str, key_size: int) -> tuple[PrivateKey, bytes]:
        """The (key, PKCS#8 PEM) a device uses; the same device always gets the same slot."""
        slot = zlib.crc32(device_id.encode()) % self.size
        ident = (algorithm, key_size, slot)
        with self._lock:  # held while generating: concurrent misses on one slot wait, not race
            found = self._keys.get(ident)
            if found is None:
                key = _generate(algorithm, key_size)
                found = self._keys[ident] = (key, private_pem(key))
            return found

    def __len__(self) -> int:
        return len(self._keys)


_DEFAULT_POOL = KeyPool()


def issue_service_certificate(
    ca: SimulationCA,
    device: Device,
    *,
    now: dt.datetime,
    expired: bool = False,
    keys: KeyPool | None = None,
) -> tuple[bytes, bytes]:
    """Issue ``device``'s TLS service certificate as its lifecycle describes it.

    Returns ``(cert_pem, key_pem)``. ``expired`` back-dates the expiry to ``now - 1 day``
    (fault injection); otherwise it is the end of ``cert_not_after`` (UTC).
    """
    lifecycle = device.lifecycle
    profile = lifecycle.crypto or DEFAULT_PROFILE
    hash_cls = _HASHES.get(profile.signature_hash)
    if hash_cls is None:
        raise ValueError(f"{device.id}: unsupported signature hash {profile.signature_hash!r}")
    key, key_pem = (keys or _DEFAULT_POOL).key_for(device.id, profile.algorithm, profile.key_size)
    not_after, not_before = _validity(device, now, expired)

    san: list[x509.GeneralName] = [x509.DNSName(device.id)]
    if device.address:
        san.append(x509.IPAddress(ipaddress.ip_address(device.address)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORG),
                    x509.NameAttribute(NameOID.COMMON_NAME, device.id),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(  # one certificate per device, for serving and for talking to other devices
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if hash_cls is hashes.SHA1:
        cert_der = _resign_sha1(builder.sign(ca.key, hashes.SHA256()), ca.key)
        cert = x509.load_der_x509_certificate(cert_der)
    else:
        cert = builder.sign(ca.key, hash_cls())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _validity(device: Device, now: dt.datetime, expired: bool) -> tuple[dt.datetime, dt.datetime]:
    """(not_after, not_before): lifecycle expiry end-of-day UTC, from installation."""
    lifecycle = device.lifecycle
    if expired:
        not_after = now - dt.timedelta(days=1)
    elif lifecycle.cert_not_after is not None:
        not_after = dt.datetime.combine(lifecycle.cert_not_after, dt.time(23, 59, 59), dt.timezone.utc)
    else:
        not_after = now + dt.timedelta(days=365)
    if lifecycle.installed is not None:
        not_before = dt.datetime.combine(lifecycle.installed, dt.time(0, 0), dt.timezone.utc)
    else:
        not_before = now - dt.timedelta(days=365)
    # An expired or odd lifecycle may put not_after before installation: keep the window sane.
    return not_after, min(not_before, not_after - dt.timedelta(days=1))


def _generate(algorithm: str, key_size: int) -> PrivateKey:
    if algorithm == "rsa":
        if key_size not in _RSA_SIZES:
            raise ValueError(f"unsupported RSA key size {key_size}")
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    if algorithm == "ecdsa":
        curve = _CURVES.get(key_size)
        if curve is None:
            raise ValueError(f"unsupported EC key size {key_size}")
        return ec.generate_private_key(curve())
    raise ValueError(f"unsupported key algorithm {algorithm!r}")


# --- SHA-1 re-signing: minimal DER surgery --------------------------------------------

# AlgorithmIdentifier ::= SEQUENCE { OID 1.2.840.10045.4.1 ecdsa-with-SHA1 } (no parameters)
_ECDSA_WITH_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def _resign_sha1(cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Rewrite ``cert`` as signed with ecdsa-with-SHA1 (cryptography won't sign it directly)."""
    tbs = cert.tbs_certificate_bytes
    tag, content_start, end = _tlv(tbs, 0)
    fields: list[bytes] = []
    pos = content_start
    while pos < end:
        _, _, nxt = _tlv(tbs, pos)
        fields.append(tbs[pos:nxt])
        pos = nxt
    # TBSCertificate: [0] version, serialNumber, signature AlgorithmIdentifier, ...
    sig_index = 2 if fields and fields[0][0] == 0xA0 else 1
    fields[sig_index] = _ECDSA_WITH_SHA1
    new_tbs = _der(tag, b"".join(fields))
    signature = ca_key.sign(new_tbs, ec.ECDSA(hashes.SHA1()))
    return _der(0x30, new_tbs + _ECDSA_WITH_SHA1 + _der(0x03, b"\x00" + signature))


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the DER element at ``pos`` (single-byte tags only)."""
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    return tag, pos + 2 + n, pos + 2 + n + length


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


# --- files ----------------------------------------------------------------------------


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, _NO_ENCRYPTION)



__all__ = [
    "DEFAULT_PROFILE",
    "KeyPool",
    "SimulationCA",
    "issue_service_certificate",
]
