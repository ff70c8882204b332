"""``jukimon lifecycle report``: what must be renewed by when (support deadlines, certificates, weak crypto)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from monitor.argtypes import iso_date
from monitor.japan_time import JST


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("lifecycle", help="renewal: support deadlines, certificate expiry, weak crypto")
    commands = parser.add_subparsers(dest="lifecycle_command", metavar="SUBCOMMAND", required=True)
    report = commands.add_parser("report", help="what must be renewed by when, month by month")
    report.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.add_argument("--today", type=iso_date, metavar="YYYY-MM-DD",
                        help="judge deadlines as of this day (default: today in Japan)")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from monitor.lifecycle_report import lifecycle_command
    from simnet.cli import load_inventory_arg

    today = args.today or dt.datetime.now(JST).date()
    print(lifecycle_command(load_inventory_arg(args), args.json, today), end="")
    return 0
