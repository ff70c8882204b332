"""``jukimon audit verify``: is the operator audit trail as it was written? Exit 0 if so, 1 with where it is not."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlalchemy import select

from dashboards.audit import audit_table, metadata
from dashboards.audit_chain import read_head, verify

AUDIT_DIR = Path("state/audit")  # the main job's default: key pair and head file


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("audit", help="the operator audit trail: verify it has not been altered")
    commands = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser("verify", help="check every entry's hash chain and signature; exit 1 with where not")
    check.add_argument("--config", type=Path, help="configuration YAML naming the store (default: embedded)")
    check.add_argument("--public-key", type=Path, default=AUDIT_DIR / "ed25519.pub.pem",
                       help="Ed25519 public key (PEM) of the trail (default: state/audit/ed25519.pub.pem)")
    check.add_argument("--head", type=Path, default=AUDIT_DIR / "head.json",
                       help="the signed head file, to detect entries cut off the end (default: state/audit/head.json)")
    check.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from alerting.cascade.signing import load_public_key
    from monitor.config import load_config
    from monitor.store import Store

    public_key = load_public_key(args.public_key) if args.public_key.exists() else None
    head = read_head(args.head)

    async def rows() -> list[dict]:
        async with await Store.open(load_config(args.config).store.url) as store:
            await store.create_tables(metadata)
            async with store.engine.connect() as conn:
                result = await conn.execute(select(audit_table).order_by(audit_table.c.id))
                return [dict(row._mapping) for row in result]

    count, problems = verify(asyncio.run(rows()), public_key, head)
    for problem in problems:
        print(f"NG  {problem}")
    if public_key is None:
        print(f"note: no public key at {args.public_key}: hashes checked, signatures not")
    if head is None:
        print(f"note: no head file at {args.head}: entries cut off the end would not show")
    print(f"{'OK' if not problems else 'NG'}  {count} entries checked")
    return 0 if not problems else 1
