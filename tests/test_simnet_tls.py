"""Simulated TLS services, over real sockets on loopback.

Clients are blocking ``ssl`` sockets run in a thread, the way a collector's check
would see the device, while the server runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from monitor.inventory.model import CryptoProfile, Device, Lifecycle, Role
from simnet.certs import KeyPool, SimulationCA, issue_service_certificate
from simnet.tls import TlsServicePool

NOW = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.timezone.utc)


def make_device(
    n: int,
    algorithm: str = "rsa",
    key_size: int = 2048,
    signature_hash: str = "sha256",
    *,
    cert_not_after: dt.date = dt.date(2026, 3, 31),
    net: str = "127.77",
    role: Role = Role.CS,
) -> Device:
    lifecycle = Lifecycle(
        model="SIM-CS-2019",
        installed=dt.date(2019, 4, 1),
        hw_support_end=dt.date(2025, 3, 31),
        sw_support_end=dt.date(2025, 3, 31),
        crypto=CryptoProfile(algorithm, key_size, signature_hash),
        cert_not_after=cert_not_after,
    )
    return Device(
        id=f"cs-{n:04d}",
        site=f"m-{n:04d}",
        role=role,
        name=f"CS {n}",
        address=f"{net}.{n // 250}.{n % 250 + 1}",
        parents=(),
        lifecycle=lifecycle,
    )


RSA2048 = make_device(1, "rsa", 2048, "sha256")
ECDSA256 = make_device(2, "ecdsa", 256, "sha256", cert_not_after=dt.date(2027, 12, 31))
WEAK = make_device(3, "rsa", 1024, "sha1", cert_not_after=dt.date(2025, 6, 30))
SILENT = make_device(4)
SLOW = make_device(5, "ecdsa", 256, "sha256")
TERMINAL = make_device(6, role=Role.TERMINAL)  # does not serve TLS: no listener
FLEET = [RSA2048, ECDSA256, WEAK, SILENT, SLOW, TERMINAL]
SLOW_DELAY = 0.4


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("simnet-state")


@pytest.fixture(scope="module")
def ca(state_dir: Path) -> SimulationCA:
    return SimulationCA.load_or_create(state_dir, now=NOW)


@pytest.fixture(scope="module")
def keys() -> KeyPool:
    return KeyPool(size=2)  # shared across tests: keys are the slow part


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.77.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def pool(ca: SimulationCA, keys: KeyPool, state_dir: Path, port: int):
    pool = TlsServicePool(
        ca,
        port=port,
        state_dir=state_dir,
        is_answering=lambda device_id: device_id != SILENT.id,
        delay_of=lambda device_id: SLOW_DELAY if device_id == SLOW.id else 0.0,
        now=lambda: NOW,
        keys=keys,
        silent_hold=1.0,
        idle_timeout=0.3,
    )
    await pool.start(FLEET)
    yield pool
    await pool.stop()


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def fetch(address: str, port: int, timeout: float = 5.0) -> tuple[bytes, x509.Certificate]:
    """Blocking TLS client: (banner line, peer certificate)."""
    with socket.create_connection((address, port), timeout=timeout) as raw:
        with client_context().wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
            banner = b""
            while not banner.endswith(b"\n"):
                chunk = tls.recv(256)
                if not chunk:
                    break
                banner += chunk
    assert der is not None
    return banner, x509.load_der_x509_certificate(der)


def end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.timezone.utc)


async def eventually(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


# --- certificates on the wire ---------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "key_type", "hash_name"),
    [
        (RSA2048, rsa.RSAPublicKey, "sha256"),
        (ECDSA256, ec.EllipticCurvePublicKey, "sha256"),
        (WEAK, rsa.RSAPublicKey, "sha1"),
    ],
    ids=["rsa2048-sha256", "ecdsa256-sha256", "weak-rsa1024-sha1"],
)
async def test_presented_certificate_follows_lifecycle(pool, port, ca, device, key_type, hash_name):
    banner, cert = await asyncio.to_thread(fetch, device.address, port)

    crypto = device.lifecycle.crypto
    assert banner == f"JUKI {device.id} READY\r\n".encode()
    assert isinstance(cert.public_key(), key_type)
    assert cert.public_key().key_size == crypto.key_size
    assert cert.signature_hash_algorithm.name == hash_name == crypto.signature_hash
    assert cert.not_valid_after_utc == end_of_day(device.lifecycle.cert_not_after)
    assert cert.not_valid_before_utc.date() == device.lifecycle.installed
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == device.id
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [device.id]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [device.address]
    assert cert.issuer == ca.cert.subject
    # Signed by the simulation CA with the profile's hash (SHA-1 included).
    ca.key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(_hash(hash_name))
    )


def _hash(name: str) -> hashes.HashAlgorithm:
    return {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384}[name]()


async def test_certificates_are_issued_once_and_keys_kept_private(pool, port, state_dir):
    assert pool.stats()["listeners"] == 5  # the terminal has no TLS service
    assert pool.stats()["certificates_issued"] == 0  # nothing issued at start
    await asyncio.to_thread(fetch, ECDSA256.address, port)
    await asyncio.to_thread(fetch, ECDSA256.address, port)
    assert pool.stats()["certificates_issued"] == 1
    key_file = state_dir / "certs" / f"{ECDSA256.id}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_concurrent_first_connections_issue_one_certificate(ca, keys, tmp_path, port):
    device = make_device(20, "ecdsa", 384, "sha384")
    pool = TlsServicePool(ca, port=port, state_dir=tmp_path, is_answering=lambda _id: True, keys=keys)
    await pool.start([device])
    try:
        assert pool.stats()["certificates_issued"] == 0
        assert list((tmp_path / "certs").iterdir()) == []
        results = await asyncio.gather(*(asyncio.to_thread(fetch, device.address, port) for _ in range(6)))
        assert {cert.serial_number for _, cert in results} == {results[0][1].serial_number}
        assert pool.stats()["certificates_issued"] == 1
        assert results[0][1].public_key().curve.name == "secp384r1"
    finally:
        await pool.stop()


async def test_context_cache_eviction_reloads_without_reissuing(ca, keys, tmp_path, port):
    devices = [make_device(30 + i) for i in range(3)]
    pool = TlsServicePool(
        ca, port=port, state_dir=tmp_path, is_answering=lambda _id: True, keys=keys, context_cache_size=1
    )
    await pool.start(devices)
    try:
        first = [(await asyncio.to_thread(fetch, d.address, port))[1] for d in devices]
        again = [(await asyncio.to_thread(fetch, d.address, port))[1] for d in devices]
        assert [c.serial_number for c in first] == [c.serial_number for c in again]
        assert pool.stats()["certificates_issued"] == 3
        assert len(pool._contexts) == 1
    finally:
        await pool.stop()


async def test_expired_certificate_toggle(pool, port):
    _, normal = await asyncio.to_thread(fetch, RSA2048.address, port)
    assert normal.not_valid_after_utc == end_of_day(RSA2048.lifecycle.cert_not_after)

    pool.set_certificate_expired(RSA2048.id, True)
    _, expired = await asyncio.to_thread(fetch, RSA2048.address, port)
    assert expired.not_valid_after_utc < NOW
    assert expired.not_valid_before_utc < expired.not_valid_after_utc
    assert expired.public_key().key_size == 2048

    pool.set_certificate_expired(RSA2048.id, False)
    _, restored = await asyncio.to_thread(fetch, RSA2048.address, port)
    assert restored.not_valid_after_utc == end_of_day(RSA2048.lifecycle.cert_not_after)
    assert len({normal.serial_number, expired.serial_number, restored.serial_number}) == 3


def test_ca_is_persisted_and_reused(tmp_path):
    first = SimulationCA.load_or_create(tmp_path)
    second = SimulationCA.load_or_create(tmp_path)
    assert first.cert == second.cert
    assert stat.S_IMODE((tmp_path / "simulation-ca.key").stat().st_mode) == 0o600
    subject = first.cert.subject
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Jukimon Simulation CA"
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "J-LIS (simulated)"
    assert isinstance(first.key, ec.EllipticCurvePrivateKey) and first.key.curve.name == "secp256r1"
    assert first.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_issue_is_cheap_once_keys_exist(ca, keys):
    device = make_device(40, "rsa", 2048, "sha256")
    issue_service_certificate(ca, device, now=NOW, keys=keys)  # warm the key slot
    start = time.perf_counter()
    for _ in range(20):
        issue_service_certificate(ca, device, now=NOW, keys=keys)
    assert (time.perf_counter() - start) / 20 < 0.02  # ~0.3 ms in practice; generous for CI


# --- behaviour of the service ---------------------------------------------------------


async def test_silent_device_is_a_black_hole(pool, port):
    def handshake() -> None:
        with socket.create_connection((SILENT.address, port), timeout=0.5) as raw:
            client_context().wrap_socket(raw)

    with pytest.raises((TimeoutError, socket.timeout)):
        await asyncio.to_thread(handshake)
    assert pool.stats()["silent_holds"] >= 1
    await eventually(lambda: pool.stats()["open_connections"] == 0)  # client gone → released


async def test_silent_hold_ends_after_hold_time(pool, port):
    def wait_for_close() -> tuple[bytes, float]:
        with socket.create_connection((SILENT.address, port), timeout=5) as raw:
            start = time.monotonic()
            return raw.recv(10), time.monotonic() - start

    data, waited = await asyncio.to_thread(wait_for_close)
    assert data == b"" and 0.8 < waited < 3.0  # silent_hold=1.0, no byte ever sent


async def test_garbage_and_early_close_do_not_break_the_server(pool, port, caplog):
    caplog.set_level(logging.DEBUG, logger="simnet.tls")
    failures = pool.stats()["handshake_failures"]

    def garbage() -> bytes:
        with socket.create_connection((RSA2048.address, port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))
            reply = b""
            while chunk := raw.recv(4096):
                reply += chunk
            return reply

    def early_close() -> None:
        socket.create_connection((RSA2048.address, port), timeout=5).close()

    await asyncio.to_thread(garbage)
    await asyncio.to_thread(early_close)
    await eventually(lambda: pool.stats()["handshake_failures"] >= failures + 2)

    banner, _ = await asyncio.to_thread(fetch, RSA2048.address, port)
    assert banner == f"JUKI {RSA2048.id} READY\r\n".encode()
    logged = [r for r in caplog.records if r.getMessage() == "tls handshake failed"]
    assert logged and all(r.levelno == logging.DEBUG for r in logged)
    assert all(r.fields["device"] == RSA2048.id for r in logged)


async def test_delay_of_delays_the_handshake(pool, port):
    await asyncio.to_thread(fetch, SLOW.address, port)  # issue its certificate first
    await asyncio.to_thread(fetch, ECDSA256.address, port)

    async def timed(device: Device) -> float:
        start = time.monotonic()
        await asyncio.to_thread(fetch, device.address, port)
        return time.monotonic() - start

    fast, slow = await timed(ECDSA256), await timed(SLOW)
    assert slow >= SLOW_DELAY
    assert slow - fast >= SLOW_DELAY * 0.8


async def test_idle_connection_is_closed_after_banner(pool, port):
    def read_until_close() -> tuple[bytes, float]:
        with socket.create_connection((ECDSA256.address, port), timeout=5) as raw:
            with client_context().wrap_socket(raw) as tls:
                start = time.monotonic()
                data = b""
                while chunk := tls.recv(256):
                    data += chunk
                return data, time.monotonic() - start

    data, waited = await asyncio.to_thread(read_until_close)
    assert data == f"JUKI {ECDSA256.id} READY\r\n".encode()
    assert 0.2 < waited < 3.0  # idle_timeout=0.3


async def test_stop_closes_listeners_and_connections(ca, keys, tmp_path, port):
    device = make_device(50)
    held = make_device(51)
    pool = TlsServicePool(
        ca, port=port, state_dir=tmp_path, keys=keys, is_answering=lambda device_id: device_id != held.id
    )
    await pool.start([device, held])
    await asyncio.to_thread(fetch, device.address, port)
    hold = await asyncio.to_thread(socket.create_connection, (held.address, port), 5)
    try:
        await eventually(lambda: pool.stats()["open_connections"] == 1)
        await pool.stop()
        assert pool.stats()["listeners"] == 0 and pool.stats()["open_connections"] == 0
        assert await asyncio.to_thread(hold.recv, 10) == b""  # stop() closed the held connection
        for target in (device, held):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((target.address, port), timeout=1).close()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    finally:
        hold.close()


async def test_start_is_all_or_nothing_when_an_address_is_taken(ca, keys, tmp_path, port):
    blocker = socket.socket()
    blocker.bind(("127.77.0.62", port))
    blocker.listen()
    devices = [make_device(60), make_device(61)]  # 127.77.0.61 / .62
    pool = TlsServicePool(ca, port=port, state_dir=tmp_path, keys=keys, is_answering=lambda _id: True)
    try:
        with pytest.raises(OSError, match=devices[1].id):
            await pool.start(devices)
        assert pool.stats()["listeners"] == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((devices[0].address, port), timeout=1).close()
    finally:
        blocker.close()
        await pool.stop()


@pytest.mark.slow
async def test_national_fleet_listeners_bind_and_stop(ca, keys, tmp_path, port):
    fleet = [make_device(n, net="127.78") for n in range(3600)]
    pool = TlsServicePool(ca, port=port, state_dir=tmp_path, keys=keys, is_answering=lambda _id: True)
    start = time.perf_counter()
    await pool.start(fleet)
    elapsed = time.perf_counter() - start
    try:
        assert pool.stats()["listeners"] == 3600
        assert pool.stats()["certificates_issued"] == 0  # nothing issued up front
        assert elapsed < 10  # ~0.2 s measured
        last = fleet[-1]
        banner, cert = await asyncio.to_thread(fetch, last.address, port)
        assert banner == f"JUKI {last.id} READY\r\n".encode()
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == last.id
    finally:
        await pool.stop()
    for device in (fleet[0], fleet[1799], fleet[-1]):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((device.address, port), timeout=1).close()
