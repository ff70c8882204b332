"""The operator audit trail is tamper-evident: an edit, a deletion, a reordering or a truncation is found and located."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update

from alerting.cascade.signing import generate_keypair, load_private_key
from dashboards.audit import AuditTrail, audit_table
from dashboards.audit_chain import read_head, verify
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[1]


async def written_trail(url: str, tmp_path: Path, entries: int = 6) -> tuple[Store, AuditTrail, Path, Path]:
    private, public = tmp_path / "audit.pem", tmp_path / "audit.pub.pem"
    generate_keypair(private, public)
    store = await Store.open(url)
    trail = await AuditTrail(store, signing_key=load_private_key(private), head_path=tmp_path / "head.json").open()
    for i in range(entries):
        await trail.record(f"operator{i % 2}", "noc-operator", "alarm.acknowledge", f"device_down:cs{i}",
                           client="127.0.0.1", comment=f"確認 {i}")
    return store, trail, public, tmp_path / "head.json"


async def check(store: Store, public: Path, head: Path) -> list[str]:
    from alerting.cascade.signing import load_public_key
    async with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(select(audit_table).order_by(audit_table.c.id))]
    return [str(p) for p in verify(rows, load_public_key(public), read_head(head))[1]]


async def test_an_untouched_trail_verifies_on_both_databases(url: str, tmp_path: Path) -> None:
    store, _, public, head = await written_trail(url, tmp_path)
    assert await check(store, public, head) == []
    await store.close()


async def test_an_edited_entry_is_found(url: str, tmp_path: Path) -> None:
    store, _, public, head = await written_trail(url, tmp_path)
    async with store.engine.begin() as conn:
        await conn.execute(update(audit_table).where(audit_table.c.seq == 3).values(user="someone-else"))
    assert await check(store, public, head) == ["entry 3: content changed after it was written"]
    await store.close()


async def test_a_deleted_entry_is_found(url: str, tmp_path: Path) -> None:
    store, _, public, head = await written_trail(url, tmp_path)
    async with store.engine.begin() as conn:
        await conn.execute(delete(audit_table).where(audit_table.c.seq == 4))
    problems = await check(store, public, head)
    assert problems and all(p.startswith("entry 5:") for p in problems), problems
    await store.close()


async def test_reordered_entries_are_found(url: str, tmp_path: Path) -> None:
    store, _, public, head = await written_trail(url, tmp_path)
    async with store.engine.begin() as conn:  # entries 2 and 3 change places in storage order
        rows = {r.seq: dict(r._mapping) for r in await conn.execute(select(audit_table))}
        second, third = rows[2], rows[3]
        await conn.execute(update(audit_table).where(audit_table.c.id == second["id"]).values(seq=-2))
        for target, source in ((third, second), (second, third)):
            await conn.execute(update(audit_table).where(audit_table.c.id == target["id"]).values(
                **{k: v for k, v in source.items() if k != "id"}))
    problems = await check(store, public, head)
    assert problems[0] == "entry 3: out of sequence: expected entry 2 here (missing entries)", problems
    assert "entry 3: does not follow the entry before it (deleted, inserted or reordered)" in problems
    await store.close()


async def test_truncation_at_the_end_is_found_from_the_signed_head(url: str, tmp_path: Path) -> None:
    store, _, public, head = await written_trail(url, tmp_path)
    async with store.engine.begin() as conn:
        await conn.execute(delete(audit_table).where(audit_table.c.seq >= 5))
    assert await check(store, public, head) == [
        "entry 5: the trail ends at entry 4 but entry 6 was written: entries cut off the end"]
    await store.close()


async def test_a_re_hashed_forgery_fails_the_signature(url: str, tmp_path: Path) -> None:
    """Someone who edits an entry and recomputes its hash and every hash after it still lacks the key."""
    store, _, public, head = await written_trail(url, tmp_path, entries=3)
    from dashboards.audit_chain import chain_hash, sign
    forger = Ed25519PrivateKey.generate()
    async with store.engine.begin() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(select(audit_table).order_by(audit_table.c.seq))]
        rows[1]["user"] = "forged"
        previous = rows[0]["hash"]
        for row in rows[1:]:
            row["prev_hash"], row["hash"] = previous, chain_hash(row, previous)
            row["signature"], previous = sign(forger, row["hash"]), row["hash"]
            await conn.execute(update(audit_table).where(audit_table.c.id == row["id"]).values(
                user=row["user"], prev_hash=row["prev_hash"], hash=row["hash"], signature=row["signature"]))
    problems = await check(store, public, head)
    assert "entry 2: signature does not verify (re-hashed by someone without the key?)" in problems
    await store.close()


def test_the_command_says_ok_then_where_it_was_altered(tmp_path: Path) -> None:
    import asyncio
    url = f"sqlite+aiosqlite:///{tmp_path}/jukimon.db"
    store, _, public, head = asyncio.run(written_trail(url, tmp_path))
    asyncio.run(store.close())
    config = tmp_path / "jukimon.yaml"
    config.write_text(f"store: {{url: '{url}'}}\n")
    command = [sys.executable, "-m", "monitor.cli", "audit", "verify", "--config", str(config),
               "--public-key", str(public), "--head", str(head)]
    ok = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK  6 entries checked" in ok.stdout, ok.stdout + ok.stderr

    async def edit() -> None:
        async with await Store.open(url) as s, s.engine.begin() as conn:
            await conn.execute(update(audit_table).where(audit_table.c.seq == 2).values(action="alarm.resolve"))
    asyncio.run(edit())
    bad = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "NG  entry 2: content changed after it was written" in bad.stdout, bad.stdout

