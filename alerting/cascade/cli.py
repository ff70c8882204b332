"""``jukimon cascade``: keys, verifying a received report, and the receipt status of the reports on record.

    jukimon cascade keygen [--private PEM] [--public PEM] [--force]
    jukimon cascade link-key [--out FILE] [--force]
    jukimon cascade verify FILE.eml --public-key PEM      # exit 0 OK, 1 does not verify, 2 unreadable
    jukimon cascade status [--store URL] [--report ID] [--inventory FILE] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from alerting.cascade.model import CascadeSettings, Directory

if TYPE_CHECKING:  # imported when a command runs, so that `jukimon --help` stays fast
    from alerting.cascade.tracker import Tracker

_DEFAULTS = CascadeSettings()


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("cascade", help="incident report cascade (初報・第2報・終報): keys, verify, status")
    commands = parser.add_subparsers(dest="cascade_command", metavar="SUBCOMMAND", required=True)

    keygen = commands.add_parser("keygen", help="new Ed25519 signing key pair (PEM; private key mode 0600)")
    keygen.add_argument("--private", type=Path, default=_DEFAULTS.private_key, help="private key file")
    keygen.add_argument("--public", type=Path, default=_DEFAULTS.public_key, help="public key file to hand out")
    keygen.add_argument("--force", action="store_true", help="replace an existing private key")
    keygen.set_defaults(handler=_keygen)

    link_key = commands.add_parser("link-key", help="new HMAC key for the one-click confirm links")
    link_key.add_argument("--out", type=Path, default=_DEFAULTS.link_key)
    link_key.add_argument("--force", action="store_true", help="replace an existing key (sent links stop working)")
    link_key.set_defaults(handler=_link_key)

    verify = commands.add_parser("verify", help="check a received report's signature (OK, or exactly why not)")
    verify.add_argument("message", type=Path, metavar="FILE.eml", help="the message as received (RFC 5322)")
    verify.add_argument("--public-key", type=Path, required=True, help="the national centre's public key (PEM)")
    verify.set_defaults(handler=_verify)

    status = commands.add_parser("status", help="receipt status: counts per report, or one report in detail")
    status.add_argument("--store", default="sqlite+aiosqlite:///state/jukimon.db", help="database URL")
    status.add_argument("--report", help="one report id (INCIDENT.N): per prefecture and who is missing")
    status.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)


def _keygen(args: argparse.Namespace) -> int:
    from alerting.cascade.signing import generate_keypair

    key = generate_keypair(args.private, args.public, overwrite=args.force)
    print(f"key {key}: private {args.private} (keep it on the national centre's host), public {args.public}")
    return 0


def _link_key(args: argparse.Namespace) -> int:
    from alerting.cascade.links import generate_link_key

    generate_link_key(args.out, overwrite=args.force)
    print(f"link key written to {args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from alerting.cascade.signing import SigningError, load_public_key, verify_message

    try:
        data = args.message.read_bytes()
        key = load_public_key(args.public_key)
    except (OSError, SigningError, ValueError) as exc:
        print(f"{args.message}: cannot check: {exc}", file=sys.stderr)
        return 2
    result = verify_message(data, key)
    print(f"{'OK' if result.ok else 'NG'}: {args.message}: {result.reason}")
    return 0 if result.ok else 1


def _status(args: argparse.Namespace) -> int:
    from simnet.cli import load_inventory_arg

    directory = _DEFAULTS.directory(load_inventory_arg(args))
    print(asyncio.run(_status_text(args.store, directory, args.report, args.json)), end="")
    return 0


async def _status_text(url: str, directory: Directory, report_id: str | None, as_json: bool) -> str:
    from alerting.cascade.store import CascadeStore
    from alerting.cascade.tracker import Tracker
    from monitor.store import Store

    async with await Store.open(url) as store:
        tracker = await Tracker.open(await CascadeStore.open(store), directory, _DEFAULTS)
    if report_id is not None:
        if report_id not in tracker.reports:
            raise ValueError(f"no report {report_id} (known: {', '.join(tracker.reports) or 'none'})")
        progress = tracker.progress(report_id)
        if as_json:
            return json.dumps(progress.to_json(), ensure_ascii=False, indent=2) + "\n"
        lines = [_count_line(report_id, tracker), "", "都道府県  転送   対象  配信  確認"]
        lines += [f"{p.code} {p.name:<5} {p.forwarded_by or '未転送':<6} {p.targets:>5} {p.delivered:>5} "
                  f"{p.confirmed:>5}" for p in progress.prefectures]
        lines += ["", f"未確認 {len(progress.missing)}:"]
        lines += [f"  {m.id} {m.name} {m.status} 再送{m.reminders}" for m in progress.missing]
        return "\n".join(lines) + "\n"
    if as_json:
        return json.dumps({r: asdict(tracker.counts(r)) for r in tracker.reports}, ensure_ascii=False, indent=2) + "\n"
    return "".join(_count_line(r, tracker) + "\n" for r in tracker.reports) or "no reports on record\n"


def _count_line(report_id: str, tracker: Tracker) -> str:
    report = tracker.reports[report_id]
    incident = tracker.incidents[report.incident]
    c = tracker.counts(report_id)
    return (f"{report_id} {'【訓練】' if incident.drill else ''}【{report.label}】{incident.title}: "
            f"対象 {c.targets} 配信 {c.delivered} 失敗 {c.failed} 確認 {c.confirmed} 未確認 {c.missing} "
            f"期限超過 {c.overdue} 再送 {c.reminders} 未転送の都道府県 {c.awaiting_forward}")
