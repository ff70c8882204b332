"""Which collector polls which device: rendezvous (highest-random-weight) hashing over the live members.

Every collector process computes the owner of a device from nothing but the device id and the set
of live members, so all of them agree without talking to each other or to a coordinator. Each member
draws a pseudo-random score per device; the highest score owns it. Removing a member moves only the
devices it owned (each to whichever member scored second for it); adding one moves to it only the
devices it now outscores everybody on — about 1/N of them — and nobody else's devices move.
Weighted (capacity) scores use ``-weight / ln(u)`` (Schindelhauer & Schomaker), so a member of
weight 2 gets about twice the share of a member of weight 1.
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterable, Mapping

_SCALE = float(2**64)


def score(member: str, device_id: str, weight: float = 1.0) -> float:
    """The member's draw for this device: the same on every host, for every Python (no hash seed)."""
    digest = hashlib.blake2b(f"{member}\0{device_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / _SCALE  # uniform in (0, 1), never 0 or 1
    return -weight / math.log(u)


def owner(device_id: str, members: Mapping[str, float]) -> str | None:
    """The member (id → weight) that polls the device; None when there is nobody. Ties go to the smaller id."""
    best: str | None = None
    best_score = -1.0
    for member in sorted(members):
        s = score(member, device_id, members[member])
        if s > best_score:
            best, best_score = member, s
    return best


def share(member: str, device_ids: Iterable[str], members: Mapping[str, float]) -> set[str]:
    """The devices ``member`` polls when ``members`` are alive (empty if it is not one of them)."""
    if member not in members:
        return set()
    return {device_id for device_id in device_ids if owner(device_id, members) == member}


def assign(device_ids: Iterable[str], members: Mapping[str, float]) -> dict[str, set[str]]:
    """Every member's share, for tools and tests: member id → device ids."""
    out: dict[str, set[str]] = {member: set() for member in members}
    for device_id in device_ids:
        chosen = owner(device_id, members)
        if chosen is not None:
            out[chosen].add(device_id)
    return out
