"""Pseudonymisation at ingestion: resident codes → keyed HMAC-SHA256, with the key id alongside.

A pseudonym is ``<key id>:<first 128 bits of HMAC-SHA256(key, code), hex>``: stable
under one key (repeated look-ups of one resident match), meaningless without it, and
the key id says which key made it so that keys can be rotated. Without a configured
key a random one is made for the process (pseudonyms then link only within one run).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from monitor.logs import fields

log = logging.getLogger("ids.operations.pseudonym")

_MODULUS = 10**11  # 住民票コード: 11 digits


class Pseudonymiser:
    def __init__(self, current: str = "", keys: dict[str, bytes] | None = None):
        keys = dict(keys or {})
        if not current:
            current = "ephemeral"
            keys[current] = secrets.token_bytes(32)
            log.warning("no pseudonym key configured: using a random one for this run",
                        extra=fields(key_id=current))
        self.key_id = current
        self._keys = keys
        self._mac = hmac.new(keys[current], digestmod=hashlib.sha256)
        # Sequential-code detection needs code differences, not codes: the state keeps codes
        # shifted by a key-derived offset, so differences survive and the codes do not.
        self._offset = int.from_bytes(hashlib.sha256(b"offset" + keys[current]).digest()[:8]) % _MODULUS

    def pseudonym(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode())
        return f"{self.key_id}:{mac.hexdigest()[:32]}"

    def pseudonyms_under_every_key(self, value: str) -> list[str]:
        """A code's pseudonym under each known key (to find it in records made before a rotation)."""
        return [f"{kid}:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]}"
                for kid, key in self._keys.items()]

    def masked_number(self, code: str) -> int:
        """The code as a number shifted by the key's offset: differences are exact, the code is not kept."""
        return (int(code) + self._offset) % _MODULUS


def masked_step(previous: int, current: int) -> int:
    """Signed difference of two masked codes, wrapped into (-10^11/2, 10^11/2]."""
    step = (current - previous) % _MODULUS
    return step - _MODULUS if step > _MODULUS // 2 else step
