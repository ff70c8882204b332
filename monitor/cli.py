"""The ``jukimon`` command: one entry point, subcommands registered by each package."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from monitor.logs import configure_logging

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    # Imported here so that `jukimon --help` stays fast and packages stay independent.
    from alerting.cascade.cli import register as cascade
    from collectors.cli import register as poll
    from collectors.syslog.cli import register as syslog
    from dashboards.audit_cli import register as audit
    from dashboards.cli import register as console
    from drills.cli import register as drill
    from ids.operations.cli import register as opsids
    from ids.traffic.cli import register as ids
    from monitor.inventory.cli import register as inventory
    from monitor.lifecycle_cli import register as lifecycle
    from monitor.pki_cli import register as pki
    from monitor.monitor_cli import register as monitor
    from monitor.run import register as run
    from simnet.cli import register as simnet

    return [run, monitor, inventory, simnet, poll, syslog, lifecycle, cascade, console, drill, ids, opsids, audit,
            pki]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jukimon",
        description="Jukimon — network operations and security monitoring for 住基ネット.",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json_lines=args.log_json)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last resort: one readable line, the traceback at DEBUG
        logging.getLogger("jukimon").debug("command failed", exc_info=True)
        print(f"jukimon: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
