"""Jukimon's own small PKI for the bus: a CA, the broker's server certificate, one client certificate per component.

The broker (Mosquitto, ``deploy/mosquitto/``) requires a client certificate signed by this CA and
takes its CN as the user name (``use_identity_as_username``), so the ACL file decides per
component what it may publish and read. A certificate's roles (one ``OU`` each) say which ACL
block its CN gets: ``jukimon pki issue DIR collector-osaka --role collector`` makes a second
collector with the collectors' rights; a one-host main job (which polls, judges and runs the
cascade in one process) takes ``--role monitor --role collector --role cascade``.

Keys are ECDSA P-256 with SHA-256 signatures: accepted by Mosquitto/OpenSSL, Python's ssl and
embedded MQTT clients alike. Private keys are written 0600 (``monitor.files.write_private``).

Files in the directory: ``ca.crt``/``ca.key``, ``ca.crl``, ``broker.crt``/``broker.key``, ``<name>.crt``/``<name>.key``.
``jukimon pki revoke DIR NAME`` puts a certificate on the CRL (a stolen collector key): the broker refuses it
from its next start, and its ACL block is gone from the next rendering.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.files import write_atomic, write_private
from monitor.inventory.model import Tier

ORGANISATION = "Jukimon"
CA_CN = "Jukimon MQTT CA"
BROKER = "broker"
COMPONENTS = ("collector", "monitor", "console", "ids", "cascade")  # `pki init` makes one certificate each
DEFAULT_BROKER_HOSTS = ("127.0.0.1", "localhost")
CA_DAYS = 10 * 365
CERT_DAYS = 2 * 365
CRL_FILE = "ca.crl"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"  # the shipped conf and ACL

# What each role may do on the bus, derived from the topic tree (collectors/outputs/mqtt.py,
# monitor/state/bus.py, monitor/intake.py, collectors/shard/membership.py, alerting/cascade/mqtt_replies.py).
# "{p}" is the topic prefix. Device records are <p>/<tier>/<site>/<device>/...; the tier level is
# spelled out (an unknown tier is "_", collectors.outputs.mqtt.topic_level) so that a collector cannot
# write <p>/monitor/<a>/<b>/samples into the monitor's tree.
_TIERS = (*(t.value for t in Tier), "_")
_RECORDS = ("samples", "sample/+", "state", "event/poll", "event/trap", "event/syslog", "event/tls", "event/audit")
_DEVICE_RECORDS = tuple(f"{{p}}/{tier}/+/+/{record}" for tier in _TIERS for record in _RECORDS)
_ALERTS = tuple(f"{{p}}/{tier}/+/+/event/alert" for tier in _TIERS)
ROLE_ACL: dict[str, tuple[tuple[str, str], ...]] = {
    # Polls and listens: device samples, events and state; shard heartbeats (its own and its peers'),
    # re-check requests from the monitor. Not alerts: those are the IDS's and the monitor's word.
    "collector": (*(("write", t) for t in _DEVICE_RECORDS),
                  ("readwrite", "{p}/collectors/#"), ("read", "{p}/control/#")),
    # Judges: reads the whole tree, publishes its states and conditions, control requests and the
    # notifications of MQTT receivers (routing file topics under <p>/alarms).
    "monitor": (("read", "{p}/#"), ("write", "{p}/monitor/#"), ("write", "{p}/control/#"),
                ("write", "{p}/alarms/#")),
    # The report cascade: signed reports out, receipts in.
    "cascade": (("write", "{p}/cascade/+/report"), ("read", "{p}/cascade/+/ack")),
    # The console only watches.
    "console": (("read", "{p}/#"),),
    # IDS sensors publish their alerts as device events.
    "ids": tuple(("write", t) for t in _ALERTS),
    # A prefecture or municipality (CN = its id, e.g. muni-01-002): only the patterns below, for its own reports.
    "organisation": (),
}
# Any certificate whose CN is an organisation id may read its own reports and confirm them.
_ORGANISATION_PATTERNS = (("read", "{p}/cascade/%u/report"), ("write", "{p}/cascade/%u/ack"))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class PkiError(ValueError):
    """A PKI directory or request that cannot be used; the message says why."""


@dataclass(frozen=True)
class Issued:
    name: str
    roles: tuple[str, ...]
    cert: Path
    key: Path


def build_ca(key: ec.EllipticCurvePrivateKey, subject: x509.Name, *, not_before: dt.datetime,
             not_after: dt.datetime) -> x509.Certificate:
    """A self-signed CA certificate that may sign end-entity certificates only (path length 0)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def init(directory: Path, *, broker_hosts: Sequence[str] = DEFAULT_BROKER_HOSTS,
         now: dt.datetime | None = None) -> list[Issued]:
    """Make the CA (or reuse the one there), the broker certificate and one client certificate per
    component that has none yet; returns what was made."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.timezone.utc)
    made: list[Issued] = []
    if not (directory / "ca.key").exists():
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                             x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
        cert = build_ca(key, subject, not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=CA_DAYS))
        made.append(_save(directory, "ca", (), cert, key))
    if not (directory / CRL_FILE).exists():
        _write_crl(directory, [], now)
    if not (directory / f"{BROKER}.crt").exists():
        made.append(issue(directory, BROKER, (), server_hosts=broker_hosts, now=now))
    for component in COMPONENTS:
        if not (directory / f"{component}.crt").exists():
            made.append(issue(directory, component, (component,), now=now))
    return made


def issue(directory: Path, name: str, roles: Iterable[str], *, server_hosts: Sequence[str] = (),
          days: int = CERT_DAYS, now: dt.datetime | None = None) -> Issued:
    """A certificate signed by the directory's CA: a client certificate with ``roles`` (CN = ``name``), or
    with ``server_hosts`` the broker's server certificate for those names and addresses."""
    roles = tuple(dict.fromkeys(roles))
    check_name(name)
    unknown = [r for r in roles if r not in ROLE_ACL]
    if unknown:
        raise PkiError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLE_ACL)})")
    if not roles and not server_hosts:
        raise PkiError("a client certificate needs at least one role")
    if name == "ca" or (name == BROKER and not server_hosts):
        raise PkiError(f"{name!r} is reserved for the CA and the broker")
    ca_key, ca_cert = load_ca(directory)
    now = now or dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role) for role in roles]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server_hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in server_hosts]),
                                        critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return _save(directory, name, roles, builder.sign(ca_key, hashes.SHA256()), key)


def revoke(directory: Path, name: str, *, now: dt.datetime | None = None) -> int:
    """Put ``name``'s certificate on the CRL, set its files aside (``<name>.<serial>.revoked``, key deleted) so
    that the name can be issued again; returns the serial number."""
    check_name(name)
    if name == "ca":
        raise PkiError("the CA cannot revoke itself: make a new PKI directory")
    path = directory / f"{name}.crt"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        raise PkiError(f"{path}: no certificate to revoke") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    entry = (x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now)
             .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
    _write_crl(directory, [*_revoked(directory), entry], now)
    path.rename(directory / f"{name}.{cert.serial_number:x}.revoked")
    (directory / f"{name}.key").unlink(missing_ok=True)
    return cert.serial_number


def _revoked(directory: Path) -> list[x509.RevokedCertificate]:
    try:
        return list(x509.load_pem_x509_crl((directory / CRL_FILE).read_bytes()))
    except OSError:
        return []


def _write_crl(directory: Path, revoked: Sequence[x509.RevokedCertificate], now: dt.datetime) -> None:
    """The CA's CRL. It is valid until the CA expires: OpenSSL refuses every client once a CRL has lapsed, and
    it is signed again whenever a certificate is revoked."""
    ca_key, ca_cert = load_ca(directory)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now - dt.timedelta(minutes=5)).next_update(ca_cert.not_valid_after_utc))
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    write_atomic(directory / CRL_FILE, builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


def check_name(name: str) -> None:
    """A CN is the broker's user name and a file name: letters, digits, ``.``, ``_``, ``-``; 1–64."""
    if not _NAME.fullmatch(name):
        raise PkiError(f"bad name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{directory}: no usable CA ({exc}); make one with: jukimon pki init {directory}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        raise PkiError(f"{directory}: ca.key does not belong to ca.crt")
    return key, cert


def clients(directory: Path) -> list[Issued]:
    """Every client certificate in the directory with its roles, by name."""
    found = []
    for path in sorted(directory.glob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        roles = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME))
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if roles and cn:
            found.append(Issued(str(cn[0].value), roles, path, path.with_suffix(".key")))
    return found


def acl_text(users: Iterable[tuple[str, Sequence[str]]], prefix: str = "jukimon") -> str:
    """Mosquitto ACL file: one ``user`` block per certificate CN with its roles' rights, then the
    organisations' receipt patterns. Anything not granted is refused."""
    lines = ["# Jukimon MQTT ACLs (rendered by `jukimon pki mosquitto-conf`; roles in monitor/pki.py).",
             "# User = client certificate CN (use_identity_as_username). Anything not granted here is refused.",
             ""]
    for name, roles in users:
        lines.append(f"# {name}: {', '.join(roles)}")
        lines.append(f"user {name}")
        rules = dict.fromkeys(rule for role in roles for rule in ROLE_ACL[role])
        lines += [f"topic {access} {topic.format(p=prefix)}" for access, topic in rules]
        lines.append("")
    lines.append("# A certificate whose CN is an organisation id reads its reports and confirms them.")
    lines += [f"pattern {access} {topic.format(p=prefix)}" for access, topic in _ORGANISATION_PATTERNS]
    return "\n".join(lines) + "\n"


def default_acl_text(prefix: str = "jukimon") -> str:
    """The ACL for the certificates ``init`` makes (what ``deploy/mosquitto/jukimon.acl`` ships)."""
    return acl_text(((c, (c,)) for c in COMPONENTS), prefix)


def render_conf(template: str, settings: dict[str, str]) -> str:
    """The shipped configuration with some settings replaced (``cafile`` → a path, …), comments kept.

    Every key in ``settings`` must occur in the template: a renamed option fails loudly instead of
    leaving a production path in a rendered file.
    """
    out, seen = [], set()
    for line in template.splitlines():
        word = line.split(maxsplit=1)[0] if line.strip() and not line.lstrip().startswith("#") else ""
        if word in settings:
            line = f"{word} {settings[word]}"
            seen.add(word)
        out.append(line)
    missing = sorted(set(settings) - seen)
    if missing:
        raise PkiError(f"the configuration template has no {', '.join(missing)}")
    return "\n".join(out) + "\n"


def mosquitto_files(pki_dir: Path, out_dir: Path, *, port: int = 8883, bind: str | None = None,
                    persistence_dir: Path | None = None, prefix: str = "jukimon",
                    extra: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``jukimon.conf`` (the shipped one, with this PKI's paths) and ``jukimon.acl`` (a block per
    client certificate in ``pki_dir``) into ``out_dir``; ``extra`` lines are appended to the conf."""
    pki_dir, out_dir = pki_dir.resolve(), out_dir.resolve()
    load_ca(pki_dir)
    if not (pki_dir / f"{BROKER}.crt").is_file():
        raise PkiError(f"{pki_dir}: no broker certificate; make one with: jukimon pki init {pki_dir}")
    if not (pki_dir / CRL_FILE).exists():  # a directory made before CRLs existed
        _write_crl(pki_dir, [], dt.datetime.now(dt.timezone.utc))
    out_dir.mkdir(parents=True, exist_ok=True)
    conf, acl = out_dir / "jukimon.conf", out_dir / "jukimon.acl"
    settings = {"acl_file": str(acl), "cafile": str(pki_dir / "ca.crt"), "crlfile": str(pki_dir / CRL_FILE),
                "certfile": str(pki_dir / f"{BROKER}.crt"),
                "keyfile": str(pki_dir / f"{BROKER}.key"), "listener": f"{port} {bind}" if bind else str(port)}
    if persistence_dir is not None:
        settings["persistence_location"] = f"{persistence_dir.resolve()}/"
    text = render_conf((DEPLOY_DIR / "jukimon.conf").read_text(encoding="utf-8"), settings)
    write_atomic(acl, acl_text(((c.name, c.roles) for c in clients(pki_dir)), prefix).encode())
    write_atomic(conf, (text + "".join(f"{line}\n" for line in extra)).encode())
    return conf, acl


def _save(directory: Path, name: str, roles: tuple[str, ...], cert: x509.Certificate,
          key: ec.EllipticCurvePrivateKey) -> Issued:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(name, roles, cert_path, key_path)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
