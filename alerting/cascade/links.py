"""Signed one-click confirm links (受信確認リンク): who confirms which report, until when.

A token is ``<payload>.<mac>``, both base64url without padding: the payload is
``report \\n organisation \\n expiry`` (epoch seconds), the MAC HMAC-SHA256 over it
with a server-side key (a file of random bytes, never in the link, never logged).
Nothing about the token is stored: the tracker confirms exactly the (report,
organisation) the token names. The MAC is compared in constant time; a tampered,
truncated or expired token is rejected with a reason a person can act on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

from alerting.cascade.model import check_id
from monitor.files import write_private

CONFIRM_PATH = "/cascade/confirm"
_MIN_KEY_BYTES = 32


class LinkError(ValueError):
    """A confirm link that cannot be honoured. ``reason``: malformed | tampered | expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaim:
    report: str
    org: str
    expires: int


def generate_link_key(path: Path, *, overwrite: bool = False) -> None:
    """Write a new random key (hex text, owner-readable only)."""
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to replace the link key (every sent link would break)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_private(Path(path), (secrets.token_hex(_MIN_KEY_BYTES) + "\n").encode())


def load_link_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(Path(path).read_text(encoding="ascii").strip())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise ValueError(f"{path}: not a hex key") from None
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"{path}: key too short ({len(key)} bytes, at least {_MIN_KEY_BYTES})")
    return key


class LinkSigner:
    """Makes and checks confirm tokens and the URLs that carry them."""

    __slots__ = ("_key", "base_url", "ttl", "clock")

    def __init__(self, key: bytes, base_url: str, ttl: float, clock: Callable[[], float] = time.time) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"link key too short ({len(key)} bytes, at least {_MIN_KEY_BYTES})")
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self.clock = clock

    def __repr__(self) -> str:
        return f"LinkSigner(base_url={self.base_url!r}, ttl={self.ttl})"

    def token(self, report: str, org: str, expires: float | None = None) -> str:
        check_id("report", report)
        check_id("organisation", org)
        when = int(expires if expires is not None else self.clock() + self.ttl)
        payload = f"{report}\n{org}\n{when}".encode("ascii")
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def url(self, report: str, org: str) -> str:
        return f"{self.base_url}{CONFIRM_PATH}?{urlencode({'token': self.token(report, org)})}"

    def verify(self, token: str) -> LinkClaim:
        """The claim of a genuine, unexpired token; LinkError otherwise."""
        payload_part, dot, mac_part = token.strip().partition(".")
        try:
            payload, mac = _unb64(payload_part), _unb64(mac_part)
        except (binascii.Error, ValueError):
            raise LinkError("malformed", "リンクが不完全です（途中で切れている可能性があります）") from None
        if not dot or not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkError("tampered", "リンクが改ざんされているか、このシステムが発行したものではありません")
        report, org, expires = payload.decode("ascii").split("\n")  # well-formed: we made it
        if self.clock() > int(expires):
            raise LinkError("expired", "リンクの有効期限が切れています")
        return LinkClaim(report, org, int(expires))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 400:
        raise ValueError("empty or too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
