"""Settings of the operation-pattern IDS (``opsids:`` in the configuration file): keys and thresholds.

    opsids:
      pseudonym_key_id: "2026a"                 # the key new pseudonyms are made with
      pseudonym_keys: {"2026a": "env:JUKIMON_OPSIDS_KEY_2026A", "2025b": "..."}
      bulk_factor: 4.0                          # look-ups above factor x baseline per hour
      bulk_floor: 40                            # ... and never below this many an hour
      ...

Keys are rotated by adding a new id and making it current; older keys stay so that
a pseudonym recorded under them can still be matched (the key id is kept with it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from monitor.configerror import ConfigError

KEY_ENV = "JUKIMON_OPSIDS_KEY"  # "key-id:secret" — overrides the configured keys


@dataclass(frozen=True)
class OpsIdsSettings:
    pseudonym_key_id: str = ""
    pseudonym_keys: dict[str, str] = field(default_factory=dict)  # key id → secret (or env:NAME)
    bulk_factor: float = 4.0
    bulk_floor: int = 40  # look-ups per operator-hour that are never "bulk"
    bulk_min_hours: int = 8  # hours of history before a baseline replaces the floor
    enumeration_max_step: int = 100  # |code difference| that counts as "next to" the previous code
    enumeration_run: int = 12  # consecutive sequential or equal-stride look-ups
    biometric_failures: int = 5  # failed vein logins on one terminal ...
    biometric_window: float = 600.0  # ... within this many seconds
    concurrent_seconds: float = 60.0  # one operator on two terminals closer than this
    dormant_days: float = 21.0
    agency_factor: float = 3.0  # a day's instant provisions above factor x the median day
    agency_min_days: int = 5
    agency_batch_min: int = 1000  # a provision of at least this many residents is a batch
    cooldown: float = 3600.0  # one alert per type, organisation and operator within this many seconds

    def check(self, key: str) -> None:
        if self.pseudonym_key_id and self.pseudonym_key_id not in self.pseudonym_keys:
            raise ConfigError(f"{key}.pseudonym_key_id: {self.pseudonym_key_id!r} is not in pseudonym_keys")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise ConfigError(f"{key}.{f.name}: must be a number > 0, got {value!r}")

    def keys(self) -> tuple[str, dict[str, bytes]]:
        """(current key id, every key id → secret bytes); the environment's key wins. Empty if none."""
        keys = {kid: _secret(f"opsids.pseudonym_keys.{kid}", v).encode() for kid, v in self.pseudonym_keys.items()}
        current = self.pseudonym_key_id
        override = os.environ.get(KEY_ENV)
        if override:
            kid, sep, secret = override.partition(":")
            if not sep or not kid or len(secret) < 16:
                raise ConfigError(f"{KEY_ENV}: must be \"key-id:secret\" with a secret of at least 16 characters")
            keys[kid] = secret.encode()
            current = kid
        return current, keys


def _secret(key: str, value: str) -> str:
    if value.startswith("env:"):
        found = os.environ.get(value[4:])
        if not found:
            raise ConfigError(f"{key}: environment variable {value[4:]} is not set")
        return found
    return value
