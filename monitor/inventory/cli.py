"""``jukimon inventory generate | check | stats``: make, verify and summarise inventory files."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from monitor.logs import fields
from monitor.argtypes import iso_date

log = logging.getLogger("jukimon.inventory")

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``inventory`` command and its subcommands to the ``jukimon`` parser."""
    parser = sub.add_parser(
        "inventory",
        help="generate, check and summarise inventory files (sites, devices, leased lines)",
        description="The inventory lists every site, device and leased line of 住基ネット. "
        "Files are YAML with one entry per line; see monitor/inventory/README.md.",
    )
    commands = parser.add_subparsers(dest="inventory_command", metavar="SUBCOMMAND", required=True)

    gen = commands.add_parser(
        "generate",
        help="write a full-scale synthetic inventory (47 prefectures, 1,741 municipalities)",
        description="Write a deterministic synthetic inventory at national scale: the same seed "
        "and --as-of always give the same file. Addresses are on 127.0.0.0/8 so the simulator "
        "can run the whole network on one host.",
    )
    gen.add_argument("--out", required=True, metavar="FILE", help="file to write (replaced atomically)")
    gen.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    gen.add_argument("--as-of", type=iso_date, metavar="YYYY-MM-DD",
                     help="reference date for installation, support and certificate dates (default today)")
    gen.add_argument("--single-line-share", type=_share, default=0.1, metavar="F",
                     help="share of municipalities with one leased line instead of two (default 0.1)")
    gen.add_argument("--single-cs-share", type=_share, default=0.3, metavar="F",
                     help="share of municipalities with one CS plus a recovery server instead of a cluster (default 0.3)")
    gen.add_argument("--outsourced-share", type=_share, default=0.3, metavar="F",
                     help="share of prefectures whose network is outsourced (委託網) (default 0.3)")
    gen.set_defaults(handler=cmd_generate)

    check = commands.add_parser(
        "check",
        help="validate an inventory file; list every problem with its line",
        description="Validate FILE. Exit 0 and print a one-line summary if it is consistent; exit 1 "
        "and print every problem as FILE:LINE: ID: MESSAGE on stderr if not; exit 2 if FILE "
        "cannot be read.",
    )
    check.add_argument("file", metavar="FILE", help="inventory YAML file")
    check.set_defaults(handler=cmd_check)

    stats = commands.add_parser(
        "stats",
        help="counts by tier, role and carrier; redundancy; crypto and certificate renewal due",
        description="Summarise FILE: sites by tier, devices by role, leased lines by carrier, "
        "single-line and single-CS municipalities, weak crypto and certificates expiring.",
    )
    stats.add_argument("file", metavar="FILE", help="inventory YAML file")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("--as-of", type=iso_date, metavar="YYYY-MM-DD",
                       help="judge certificate and support dates against this day (default today)")
    stats.set_defaults(handler=cmd_stats)




def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def cmd_generate(args: argparse.Namespace) -> int:
    from monitor.inventory.generate import generate_inventory
    from monitor.inventory.yaml_io import save_inventory

    started = time.perf_counter()
    inv = generate_inventory(
        seed=args.seed,
        as_of=args.as_of,
        single_line_share=args.single_line_share,
        single_cs_share=args.single_cs_share,
        outsourced_share=args.outsourced_share,
    )
    try:
        save_inventory(inv, args.out)
    except OSError as exc:
        print(f"jukimon: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    elapsed = time.perf_counter() - started
    log.info("inventory written", extra=fields(file=args.out, seed=args.seed, devices=len(inv.devices),
                                               seconds=round(elapsed, 2)))
    print(f"{args.out}: {_summary(inv)}")
    return EXIT_OK


def _load(path: str) -> tuple[Any, int]:
    """(inventory, 0) or (None, exit code) with the problems already printed."""
    from monitor.inventory.model import InventoryError
    from monitor.inventory.yaml_io import load_inventory

    try:
        return load_inventory(path), EXIT_OK
    except OSError as exc:
        print(f"jukimon: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None, EXIT_UNREADABLE
    except InventoryError as exc:
        for p in exc.problems:
            where = f"{path}:{p.line}" if p.line is not None else path
            entry = f" {p.entry}:" if p.entry is not None else ""
            print(f"{where}:{entry} {p.message}", file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return None, EXIT_INVALID


def cmd_check(args: argparse.Namespace) -> int:
    inv, code = _load(args.file)
    if inv is None:
        return code
    print(f"{args.file}: OK — {_summary(inv)}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from monitor.inventory.stats import inventory_stats, render_stats

    inv, code = _load(args.file)
    if inv is None:
        return code
    stats = inventory_stats(inv, as_of=args.as_of)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
    else:
        print(render_stats(stats), end="")
    return EXIT_OK


def _summary(inv: Any) -> str:
    from monitor.inventory.model import Tier

    prefectures = len(inv.sites_of_tier(Tier.PREFECTURE))
    munis = len(inv.sites_of_tier(Tier.MUNICIPALITY))
    polled = sum(1 for _ in inv.polled_devices())
    return (f"{len(inv.sites):,} sites ({prefectures} prefectures, {munis:,} municipalities), "
            f"{len(inv.devices):,} devices ({polled:,} polled), {len(inv.links):,} leased lines")
