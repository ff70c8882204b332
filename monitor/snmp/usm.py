"""SNMPv3 User-based Security Model (RFC 3414, RFC 3826, RFC 7860) for the agents.

Keys are derived once per password (the 1 MB password-to-key expansion costs
milliseconds) and localised per engine (cheap), so 9,000 agents with their own
engine IDs share one expansion.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 47 keeps CFB among the "decrepit" modes; SNMP still needs it (RFC 3826)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

# usmStats counters reported back to managers (SNMP-USER-BASED-SM-MIB)
UNSUPPORTED_SEC_LEVELS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0)
NOT_IN_TIME_WINDOWS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0)
UNKNOWN_USER_NAMES = (1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0)
UNKNOWN_ENGINE_IDS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)
WRONG_DIGESTS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0)
DECRYPTION_ERRORS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0)

TIME_WINDOW_SECONDS = 150


@dataclass(frozen=True)
class AuthProtocol:
    name: str  # as net-snmp spells it: SHA, SHA-256, SHA-512, MD5
    hash_name: str
    digest_length: int  # truncated HMAC length carried in msgAuthenticationParameters


AUTH_PROTOCOLS = {
    "SHA": AuthProtocol("SHA", "sha1", 12),
    "SHA-224": AuthProtocol("SHA-224", "sha224", 16),
    "SHA-256": AuthProtocol("SHA-256", "sha256", 24),
    "SHA-384": AuthProtocol("SHA-384", "sha384", 32),
    "SHA-512": AuthProtocol("SHA-512", "sha512", 48),
}

PRIV_PROTOCOLS = ("AES",)  # AES-128-CFB (RFC 3826)


@lru_cache(maxsize=64)
def password_to_key(password: str, hash_name: str) -> bytes:
    """RFC 3414 A.2: hash 1 MB of the repeated password."""
    secret = password.encode()
    if len(secret) < 8:
        raise ValueError("SNMPv3 passphrases must be at least 8 characters")
    digest = hashlib.new(hash_name)
    repeated = (secret * (64 // len(secret) + 2))
    count = 0
    while count < 1_048_576:
        chunk_start = count % len(secret)
        digest.update(repeated[chunk_start : chunk_start + 64])
        count += 64
    return digest.digest()


def localize_key(master_key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    return hashlib.new(hash_name, master_key + engine_id + master_key).digest()


@dataclass(frozen=True)
class UsmUser:
    """One configured SNMPv3 user (authPriv or authNoPriv)."""

    name: str
    auth: AuthProtocol
    auth_password: str
    priv_password: str | None  # None: authNoPriv only

    def localized(self, engine_id: bytes) -> "LocalizedKeys":
        hash_name = self.auth.hash_name
        auth_key = localize_key(password_to_key(self.auth_password, hash_name), engine_id, hash_name)
        priv_key = None
        if self.priv_password is not None:
            # RFC 3826: the AES key is the first 16 bytes of the localised key (auth hash)
            priv_key = localize_key(password_to_key(self.priv_password, hash_name), engine_id, hash_name)[:16]
        return LocalizedKeys(self, auth_key, priv_key)


@dataclass(frozen=True)
class LocalizedKeys:
    user: UsmUser
    auth_key: bytes
    priv_key: bytes | None

    def digest(self, whole_message: bytes) -> bytes:
        mac = hmac.new(self.auth_key, whole_message, self.user.auth.hash_name).digest()
        return mac[: self.user.auth.digest_length]

    def decrypt(self, ciphertext: bytes, boots: int, time: int, salt: bytes) -> bytes:
        return _aes_cfb(self._require_priv(), boots, time, salt).decryptor().update(ciphertext)

    def encrypt(self, plaintext: bytes, boots: int, time: int, salt: bytes) -> bytes:
        return _aes_cfb(self._require_priv(), boots, time, salt).encryptor().update(plaintext)

    def _require_priv(self) -> bytes:
        if self.priv_key is None:
            raise ValueError(f"user {self.user.name} has no privacy key")
        return self.priv_key


def _aes_cfb(key: bytes, boots: int, time: int, salt: bytes) -> Cipher:
    if len(salt) != 8:
        raise ValueError("AES privacy parameters must be 8 bytes")
    if not (0 <= boots < 2**32 and 0 <= time < 2**32):  # from the message: a hostile sender picks them
        raise ValueError("engine boots/time outside 0..2**32-1")
    iv = boots.to_bytes(4, "big") + time.to_bytes(4, "big") + salt
    return Cipher(algorithms.AES(key), CFB(iv))


@dataclass
class KeyCache:
    """Localised keys per (engine, user), computed on first use."""

    users: dict[bytes, UsmUser]
    _cache: dict[tuple[bytes, bytes], LocalizedKeys] = field(default_factory=dict)

    def keys_for(self, engine_id: bytes, user_name: bytes) -> LocalizedKeys | None:
        cached = self._cache.get((engine_id, user_name))
        if cached is None:
            user = self.users.get(user_name)
            if user is None:
                return None
            if len(self._cache) >= 50_000:  # engine IDs come from the messages: bound what a sender can add
                self._cache.clear()
            cached = self._cache[(engine_id, user_name)] = user.localized(engine_id)
        return cached
