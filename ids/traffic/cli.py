"""``jukimon ids replay|live|learn|eve-ingest``: the traffic IDS over capture files or an interface, and
alerts from an external Suricata."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from monitor.logs import fields

log = logging.getLogger(__name__)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("ids", help="traffic IDS: replay captures, learn a baseline")
    commands = parser.add_subparsers(dest="ids_command", metavar="SUBCOMMAND", required=True)
    replay = commands.add_parser("replay", help="run the detectors over a pcap/pcapng; one EVE JSON alert per line")
    replay.add_argument("file", type=Path, help="pcap or pcapng capture")
    _detector_options(replay)
    replay.set_defaults(handler=_replay)
    live = commands.add_parser("live", help="capture on an interface (root) and print one EVE JSON alert per line")
    live.add_argument("--interface", default="lo", help="interface to capture on (default lo: the simulation)")
    live.add_argument("--seconds", type=float, help="stop after this long (default: until interrupted)")
    _detector_options(live)
    live.set_defaults(handler=_live)
    learn = commands.add_parser("learn", help="learn peers and per-link volume from a capture of normal traffic")
    learn.add_argument("file", type=Path, help="pcap or pcapng of normal traffic")
    learn.add_argument("--out", type=Path, required=True, help="baseline JSON to write")
    learn.set_defaults(handler=_learn)
    ingest = commands.add_parser("eve-ingest", help="hand an external Suricata's EVE JSON alerts to the running monitor",
                                 description="Reads EVE JSON (one event per line; '-' for stdin), keeps the alert "
                                             "events and appends them, as Jukimon alerts of type signature, to the "
                                             "inbox the main job follows: they become traffic alarms and show on /ids.")
    ingest.add_argument("file", help="EVE JSON file, or - for standard input")
    ingest.add_argument("--state-dir", type=Path, default=Path("state"),
                        help="the main job's state directory (default state): the inbox is <dir>/ids/eve-inbox.jsonl")
    ingest.set_defaults(handler=_eve_ingest)


def _detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", type=Path, help="inventory YAML: turns the communication-matrix detector on")
    parser.add_argument("--baseline", type=Path,
                        help="baseline JSON from `jukimon ids learn`: turns new-peer and volume detectors on")
    parser.add_argument("--rules", type=Path, action="append",
                        help="Suricata rule file (repeatable; default: Jukimon's own rules)")


def _detectors(args: argparse.Namespace) -> dict:
    """The engine's options from the command line."""
    from ids.traffic.baseline import Baseline
    from ids.traffic.rules import DEFAULT_RULES, load_rules
    from monitor.inventory import load_inventory

    return {"inventory": load_inventory(args.inventory) if args.inventory else None,
            "baseline": Baseline.load(args.baseline) if args.baseline else None,
            "rules": [rule for path in (args.rules or [DEFAULT_RULES]) for rule in load_rules(path)]}


def _print_alert(alert: dict) -> None:
    sys.stdout.write(json.dumps(alert, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _replay(args: argparse.Namespace) -> int:
    from ids.traffic.pcapio import CaptureError
    from ids.traffic.replay import replay

    try:
        stats = replay(args.file, _print_alert, **_detectors(args))
    except CaptureError as exc:
        print(f"jukimon ids replay: {exc}", file=sys.stderr)
        return 2
    log.info("replay done", extra=fields(file=str(args.file), packets=stats.packets, malformed=stats.malformed,
                                         ignored=stats.ignored, alerts=stats.alerts))
    return 0


def _live(args: argparse.Namespace) -> int:
    import threading

    from ids.traffic.engine import Engine
    from ids.traffic.live import capture

    stop = threading.Event()
    if args.seconds is not None:
        threading.Timer(args.seconds, stop.set).start()
    try:
        capture(Engine(_print_alert, **_detectors(args)), args.interface, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _eve_ingest(args: argparse.Namespace) -> int:
    from ids.traffic.suricata import EveReader, inbox_path

    reader, inbox = EveReader(), inbox_path(args.state_dir)
    inbox.parent.mkdir(parents=True, exist_ok=True)
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    try:
        with open(inbox, "a", encoding="utf-8") as out:  # whole lines, appended: the follower reads complete ones
            for alert in reader.alerts(stream):
                out.write(json.dumps(alert, ensure_ascii=False) + "\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    log.info("EVE ingested", extra=fields(file=args.file, inbox=str(inbox), **reader.counts))
    return 0 if reader.counts["alerts"] or not reader.counts["malformed"] else 1


def _learn(args: argparse.Namespace) -> int:
    from ids.traffic.replay import learn_baseline

    baseline = learn_baseline(args.file)
    baseline.save(args.out)
    log.info("baseline learned", extra=fields(file=str(args.file), peers=len(baseline.peers),
                                              links=len(baseline.peaks)))
    return 0
