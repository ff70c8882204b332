"""Ed25519 signatures on cascade messages, so a recipient can check a report came from the national centre.

Where the signature lives: one header, ``X-Jukimon-Signature`` (not a detached MIME
part), so that the message stays a plain single-part Japanese text mail every
client shows as is. Its value, in the manner of DKIM::

    v=1; a=ed25519; k=<key id>; h=from:to:subject:...; bh=<body hash>; b=<signature>

- ``k``: the first 16 hex digits of SHA-256 over the raw public key (which key signed).
- ``h``: the signed headers, in order. ``REQUIRED_HEADERS`` must all be among them:
  the drill marker and the report id cannot be changed or stripped unnoticed.
- ``bh``: base64 SHA-256 of the canonical body.
- ``b``: base64 Ed25519 signature over the canonical headers plus ``bh``.

Canonical form (robust to what mail transport does, strict about content): each
signed header as ``name:value`` with the value decoded from RFC 2047 words and
its whitespace runs collapsed to one space; the body as decoded Unicode text with
line ends as LF, trailing spaces of each line and trailing empty lines removed.

A signed header that appears twice fails verification: a client might show the
other one. The private key is only ever read from its PEM file; it is never
logged or shown (``Signer`` has no repr of it).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from monitor.files import write_private

SIGNATURE_HEADER = "X-Jukimon-Signature"
REQUIRED_HEADERS = ("from", "subject", "date", "message-id", "x-jukimon-report", "x-jukimon-drill")
_WHITESPACE = re.compile(r"\s+")


class SigningError(ValueError):
    """A key file that cannot be used (missing, unreadable, not an Ed25519 key)."""


# --- keys ---------------------------------------------------------------------------------------

def generate_keypair(private_path: Path, public_path: Path, *, overwrite: bool = False) -> str:
    """Write a new key pair as PEM (private key readable by the owner only); returns the key id."""
    if Path(private_path).exists() and not overwrite:
        raise SigningError(f"{private_path}: exists; refusing to replace a signing key")
    key = Ed25519PrivateKey.generate()
    for path in (private_path, public_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(Path(private_path), pem)
    Path(public_path).write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = _load(path, lambda data: serialization.load_pem_private_key(data, password=None), "private")
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = _load(path, serialization.load_pem_public_key, "public")
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key")
    return key


def _load(path: Path, loader: Callable[[bytes], Any], kind: str) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return loader(data)
    except (ValueError, TypeError):  # the library's message could quote the file: keep key material out of logs
        raise SigningError(f"{path}: not a usable PEM {kind} key (unencrypted)") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# --- canonical form ----------------------------------------------------------------------------

def canonical_value(raw: str) -> str:
    """A header value as signed: RFC 2047 decoded, folding and whitespace runs collapsed.

    ValueError if it cannot be decoded (a broken encoded word, an unknown charset): as received, not as signed.
    """
    try:
        return _WHITESPACE.sub(" ", str(make_header(decode_header(raw)))).strip()
    except (HeaderParseError, LookupError, UnicodeError) as exc:
        raise ValueError(f"undecodable header value: {exc}") from None


def canonical_body(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).rstrip("\n")


def body_hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(canonical_body(text).encode("utf-8")).digest()).decode()


def _signed_data(headers: list[tuple[str, str]], bh: str) -> bytes:
    lines = [f"{name}:{canonical_value(value)}" for name, value in headers]
    return ("\n".join(lines) + f"\nbh={bh}").encode("utf-8")


# --- signing and verifying ---------------------------------------------------------------------

class Signer:
    """Signs outgoing messages with the national centre's private key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id})"

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def signature_header(self, headers: list[tuple[str, str]], body: str) -> str:
        """The ``X-Jukimon-Signature`` value for these (raw, as sent) headers and this body text."""
        names = [name.lower() for name, _ in headers]
        missing = [h for h in REQUIRED_HEADERS if h not in names]
        if missing:
            raise ValueError(f"cannot sign without headers {', '.join(missing)}")
        bh = body_hash(body)
        signature = self._key.sign(_signed_data([(name.lower(), value) for name, value in headers], bh))
        return f"v=1; a=ed25519; k={self.key_id}; h={':'.join(names)}; bh={bh}; " \
               f"b={base64.b64encode(signature).decode()}"

    def sign_bytes(self, data: bytes) -> str:
        """A base64 signature over any bytes (the MQTT channel's canonical JSON)."""
        return base64.b64encode(self._key.sign(data)).decode()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    reason: str  # why not, or what was verified
    report: str | None = None
    drill: bool | None = None


def verify_message(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Check a message as received (RFC 5322 bytes). Says exactly why it does not verify."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)  # raw header text, as signed
    values = msg.get_all(SIGNATURE_HEADER) or []
    if not values:
        return Verification(False, f"no {SIGNATURE_HEADER} header: the message is not signed")
    if len(values) > 1:
        return Verification(False, f"{len(values)} {SIGNATURE_HEADER} headers: only one is allowed")
    try:
        params = _parse_params(canonical_value(values[0]))  # a relay may have folded or even encoded it
    except ValueError as exc:
        return Verification(False, f"{SIGNATURE_HEADER} malformed: {exc}")
    if params.get("v") != "1" or params.get("a") != "ed25519":
        return Verification(False, f"unsupported signature version/algorithm v={params.get('v')} "
                                   f"a={params.get('a')} (expected v=1 a=ed25519)")
    expected_key = key_id(public_key)
    if params["k"] != expected_key:
        return Verification(False, f"signed with key {params['k']}, not with the given public key {expected_key}")
    names = params["h"].split(":")
    uncovered = [h for h in REQUIRED_HEADERS if h not in names]
    if uncovered:
        return Verification(False, f"signature does not cover header(s) {', '.join(uncovered)}")
    headers: list[tuple[str, str]] = []
    for name in names:
        found = msg.get_all(name) or []
        if len(found) != 1:
            what = "missing" if not found else f"present {len(found)} times"
            return Verification(False, f"signed header {name} is {what}")
        headers.append((name, found[0]))
    try:
        body = _body_text(msg)
    except (LookupError, UnicodeDecodeError, ValueError) as exc:
        return Verification(False, f"body cannot be decoded: {exc}")
    if body_hash(body) != params["bh"]:
        return Verification(False, "body altered after signing (body hash does not match)")
    try:
        public_key.verify(base64.b64decode(params["b"], validate=True), _signed_data(headers, params["bh"]))
    except (InvalidSignature, ValueError):
        return Verification(False, f"signed headers altered after signing ({', '.join(names)})")
    report = canonical_value(headers[names.index("x-jukimon-report")][1])
    drill = canonical_value(headers[names.index("x-jukimon-drill")][1]) == "yes"
    return Verification(True, f"signed by key {expected_key}: report {report}{' (訓練 drill)' if drill else ''}",
                        report, drill)


def verify_bytes(data: bytes, signature: str, public_key: Ed25519PublicKey) -> bool:
    if not isinstance(signature, str):  # it comes from a received JSON document: any type at all
        return False
    try:
        public_key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _parse_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in _WHITESPACE.sub("", value).split(";"):
        if not part:
            continue
        name, sep, val = part.partition("=")
        if not sep or not name:
            raise ValueError(f"{part!r} is not name=value")
        params[name] = val
    missing = [p for p in ("v", "a", "k", "h", "bh", "b") if not params.get(p)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return params


def _body_text(msg: Message) -> str:
    if msg.is_multipart():
        raise ValueError("multipart body: a cascade message is one text/plain part")
    payload = msg.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise ValueError("no body")
    return payload.decode(msg.get_content_charset() or "us-ascii")
