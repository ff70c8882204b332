"""The audit trail's tamper evidence: every entry hash-chained to the one before it and signed with Ed25519.

Entry *n* stores ``hash_n = SHA-256(canonical(entry_n) || hash_{n-1})`` and an
Ed25519 signature over ``hash_n``; the first entry chains to 64 zeros. Editing
an entry breaks its hash, deleting or reordering entries breaks the chain (and
the sequence numbers), and a forger without the private key cannot re-sign.
Cutting entries off the end leaves a valid chain, so the newest ``(seq, hash)``
is also kept, signed, in a head file outside the database: ``verify`` reports a
chain shorter than its head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from monitor.files import write_atomic

GENESIS = "0" * 64
CHAINED_FIELDS = ("seq", "at", "user", "role", "action", "target", "result", "detail", "client")


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes that are hashed: the chained fields in a fixed order, compact JSON, floats as repr."""
    return json.dumps({k: entry[k] for k in CHAINED_FIELDS}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()


def chain_hash(entry: dict[str, Any], previous: str) -> str:
    return hashlib.sha256(canonical(entry) + previous.encode()).hexdigest()


def sign(key: Ed25519PrivateKey | None, digest: str) -> str:
    return key.sign(digest.encode()).hex() if key is not None else ""


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the entry where the trail stops being trustworthy (None: the trail as a whole)
    what: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.what}" if self.seq is not None else self.what


def verify(rows: Iterable[dict[str, Any]], public_key: Ed25519PublicKey | None,
           head: dict[str, Any] | None = None) -> tuple[int, list[Problem]]:
    """Check a trail read in storage order; returns (entries checked, problems — empty when intact)."""
    problems: list[Problem] = []
    previous, expected_seq, count = GENESIS, 1, 0
    for row in rows:
        count += 1
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(Problem(seq, f"out of sequence: expected entry {expected_seq} here "
                                         f"({'missing entries' if seq > expected_seq else 'moved or repeated'})"))
        if row["prev_hash"] != previous:
            problems.append(Problem(seq, "does not follow the entry before it (deleted, inserted or reordered)"))
        if chain_hash(row, row["prev_hash"]) != row["hash"]:
            problems.append(Problem(seq, "content changed after it was written"))
        if public_key is not None and not _signed(public_key, row["hash"], row["signature"]):
            problems.append(Problem(seq, "signature does not verify (re-hashed by someone without the key?)"))
        previous, expected_seq = row["hash"], seq + 1
    if head is not None:
        if public_key is not None and not _signed(public_key, f"{head['seq']}:{head['hash']}", head["signature"]):
            problems.append(Problem(None, "the head file's signature does not verify"))
        elif head["seq"] > expected_seq - 1:
            problems.append(Problem(expected_seq, f"the trail ends at entry {expected_seq - 1} but entry "
                                                  f"{head['seq']} was written: entries cut off the end"))
        elif head["seq"] == expected_seq - 1 and head["hash"] != previous:
            problems.append(Problem(head["seq"], "the last entry is not the one that was written"))
    return count, problems


def _signed(key: Ed25519PublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(bytes.fromhex(signature), message.encode())
        return True
    except (InvalidSignature, ValueError):
        return False


def write_head(path: Path, seq: int, digest: str, key: Ed25519PrivateKey | None) -> None:
    """The newest (seq, hash), signed — written beside the state, outside the database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"seq": seq, "hash": digest, "signature": sign(key, f"{seq}:{digest}")}).encode())


def read_head(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
