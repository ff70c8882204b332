"""``jukimon opsids replay FILE.jsonl``: run the operation-pattern detectors over an audit file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("opsids", help="operation-pattern IDS: suspicious operator behaviour")
    commands = parser.add_subparsers(dest="opsids_command", metavar="SUBCOMMAND", required=True)
    replay = commands.add_parser("replay", help="print one JSON alert per line for a file of audit records")
    replay.add_argument("file", type=Path, help="audit records, one JSON object per line (docs/audit-records.md)")
    replay.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from ids.operations.replay import OperationsIds, replay
    from simnet.cli import load_inventory_arg

    ids = OperationsIds(load_inventory_arg(args))
    for alert in replay(args.file, ids):
        print(alert.to_json(), flush=False)
    return 0
