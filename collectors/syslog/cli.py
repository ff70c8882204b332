"""``jukimon syslog parse FILE``: what the collector would make of a log file, line by line.

For checking a vendor's format before pointing its firewalls at the collector, and
for reading an exported log during an incident. One output line per input line,
so the output can be pasted next to the input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Iterator

from collectors.syslog.firewall import describe, to_event
from monitor.japan_time import JST
from collectors.syslog.parse import MAX_LENGTH, SyslogError, SyslogMessage, parse_syslog
from monitor.envelope import encode

EXIT_OK, EXIT_UNREADABLE = 0, 2


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``syslog`` command and its subcommands to the ``jukimon`` parser."""
    parser = sub.add_parser("syslog", help="syslog collector tools (parse log files as the collector would)",
                            description="Syslog collector: RFC 5424 / RFC 3164 messages and firewall traffic logs "
                            "(Cisco ASA, FortiGate, Juniper SRX, PAN-OS, netfilter). See collectors/syslog/README.md.")
    commands = parser.add_subparsers(dest="syslog_command", metavar="SUBCOMMAND", required=True)
    parse = commands.add_parser(
        "parse", help="parse a file of syslog lines; print one result per line",
        description="Parse FILE (one message per line, '-' for stdin) and print, for every line, the event "
        "(time in JST, host, severity, app, and the firewall decision where there is one) or "
        "'line N: rejected: REASON'. Exit 0 once the file was read, even with rejections; 2 if it cannot be read. "
        "RFC 3164 lines carry no year: it is inferred from the file's modification time.")
    parse.add_argument("file", metavar="FILE", help="log file, one syslog message per line ('-': stdin)")
    parse.add_argument("--json", action="store_true",
                       help='print each event as envelope JSON, or {"line": N, "rejected": REASON}')
    parse.add_argument("--inventory", type=Path, metavar="FILE",
                       help="inventory YAML: name the sending devices (by hostname) and their site")
    parse.add_argument("--tz-offset", type=float, default=9.0, metavar="HOURS",
                       help="zone of RFC 3164 times without one, hours east of UTC (default 9, JST)")
    parse.add_argument("--max-length", type=int, default=MAX_LENGTH, metavar="BYTES",
                       help=f"longest accepted message (default {MAX_LENGTH})")
    parse.set_defaults(handler=cmd_parse)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    for line in stream:
        yield line.rstrip(b"\n")


def cmd_parse(args: argparse.Namespace) -> int:
    inventory = None
    if args.inventory is not None:
        from monitor.inventory import load_inventory

        inventory = load_inventory(args.inventory)
    tz = dt.timezone(dt.timedelta(hours=args.tz_offset))
    out = sys.stdout
    try:
        if args.file == "-":
            stream, received = sys.stdin.buffer, time.time()
        else:
            stream = open(args.file, "rb")  # closed in the finally below
            received = os.fstat(stream.fileno()).st_mtime
    except OSError as exc:
        print(f"jukimon syslog parse: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        for number, line in enumerate(_lines(stream), 1):
            try:
                msg = parse_syslog(line, received=received, max_length=args.max_length, local_tz=tz)
            except SyslogError as exc:
                out.write(json.dumps({"line": number, "rejected": exc.reason}) + "\n" if args.json
                          else f"line {number}: rejected: {exc.reason}\n")
                continue
            event = to_event(msg, inventory)
            out.write(encode(event).decode() + "\n" if args.json else render(msg, event.origin.device) + "\n")
    except BrokenPipeError:
        raise  # the reader went away (| head): the jukimon entry point exits quietly
    except OSError as exc:
        print(f"jukimon syslog parse: error reading {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return EXIT_OK


_SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {127: "\\x7f"}


def render(msg: SyslogMessage, device: str | None = None) -> str:
    """``2024-01-05 10:11:12 JST  muni-01-001-fw  warning  %ASA-4-106023: DENY tcp … (…)``."""
    try:
        when = dt.datetime.fromtimestamp(msg.timestamp, JST).strftime("%Y-%m-%d %H:%M:%S JST")
    except (ValueError, OverflowError, OSError):  # a year beyond 9999 after the shift to JST
        when = f"@{msg.timestamp:.0f}"
    fw_name = msg.firewall.device_name if msg.firewall is not None else None
    host = device or msg.hostname or fw_name or msg.peer or "-"
    app = msg.app or msg.msgid or "-"
    if msg.procid:
        app += f"[{msg.procid}]"
    text = describe(msg.firewall) if msg.firewall is not None else msg.message.translate(_CONTROL)
    return f"{when}  {host}  {_SEVERITIES[msg.severity]}  {app}: {text}"
