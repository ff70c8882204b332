"""``jukimon run``: the main job — the simulated national network and the monitor, on localhost.

See ``monitor.mainjob`` for what runs and how it is wired; the console joins as it lands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from monitor.logs import fields

log = logging.getLogger("jukimon.run")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from simnet.cli import add_simulation_options

    run = sub.add_parser("run", help="run the simulated national network and the monitor (main job)",
                         description="Start everything on localhost with embedded defaults; Ctrl-C stops it. "
                                     "The simulated network runs in a child process; MQTT broker and TSDB are "
                                     "started privately under state/ unless the configuration names them.")
    run.add_argument("--config", type=Path, help="configuration YAML (default: embedded defaults)")
    add_simulation_options(run)
    run.add_argument("--status-every", type=float, default=60.0, metavar="SECONDS",
                     help="period of the status line (polls/s, missed cycles, unreachable devices; default 60)")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from monitor.config import load_config, under_state_dir
    from monitor.mainjob import MainJob, SimulationOptions
    from simnet.cli import load_inventory_arg, simnet_config_from

    sim = simnet_config_from(args)
    config = under_state_dir(load_config(args.config), sim.state_dir.parent)
    inventory = load_inventory_arg(args)
    options = SimulationOptions(args.inventory, sim.snmp_port, sim.tls_port, sim.tls, sim.clock_speed,
                                sim.state_dir, args.control)
    job = MainJob(inventory, config, options, state_dir=sim.state_dir.parent, status_every=args.status_every)
    log.info("jukimon starting", extra=fields(devices=len(inventory.devices), config=config.source))
    asyncio.run(job.run_until_signal())
    log.info("jukimon stopped")
    return 0
