"""``jukimon run``: the main job — the simulated national network and the monitor, on localhost.

Today it starts the simulation with its fault-control channel; collectors,
monitor core and console join this process as they land (see README).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from monitor.logs import fields

log = logging.getLogger("jukimon.run")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from simnet.cli import add_simulation_options

    run = sub.add_parser("run", help="run the simulated national network and the monitor (main job)",
                         description="Start everything on localhost with embedded defaults; Ctrl-C stops it.")
    add_simulation_options(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from simnet.cli import load_inventory_arg, simnet_config_from
    from simnet.service import serve_until_signal

    inventory = load_inventory_arg(args)
    log.info("jukimon starting", extra=fields(devices=len(inventory.devices)))
    asyncio.run(serve_until_signal(inventory, simnet_config_from(args), args.control))
    log.info("jukimon stopped")
    return 0
