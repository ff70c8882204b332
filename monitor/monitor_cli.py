"""``jukimon monitor run``: the monitor alone, fed by collector processes through the broker, active or standby.

See ``monitor.monitor_role`` for what runs and ``monitor.lease`` for the failover.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import replace
from pathlib import Path

from monitor.argtypes import host_port
from monitor.logs import fields

log = logging.getLogger("jukimon.monitor")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    monitor = sub.add_parser("monitor", help="the monitor alone (collectors run as their own processes)")
    commands = monitor.add_subparsers(dest="monitor_command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run", help="judge from the broker; notify while holding the lease (active/standby)",
        description="Subscribe to the collectors' results on the broker, judge them, and — while this monitor "
                    "holds the lease in the PostgreSQL store — write the judgement, alert and notify. Start two "
                    "on different hosts with the same --store and --broker: one is active, the other takes over "
                    "within the lease's ttl when the first dies. With a SQLite store it is always active.")
    run.add_argument("--broker", type=host_port, metavar="HOST:PORT",
                     help="the MQTT broker the collectors publish to (default: outputs.mqtt of the configuration)")
    run.add_argument("--store", metavar="URL",
                     help="postgresql+asyncpg://… shared by the monitors (default: store.url of the configuration)")
    run.add_argument("--config", type=Path, help="configuration YAML (default: embedded defaults)")
    run.add_argument("--inventory", type=Path, help="inventory file (default: the generated national inventory)")
    run.add_argument("--console", type=host_port, metavar="HOST:PORT", help="serve the web console there too")
    run.add_argument("--name", help="this monitor's name: lease holder and MQTT client id (default: HOST-PID)")
    run.add_argument("--status-every", type=float, default=60.0, metavar="SECONDS",
                     help="period of the status line (active/standby, records from the bus, devices per state)")
    run.add_argument("--state-dir", type=Path, default=Path("state"),
                     help="keys, console secret, mail sink, spool, the default SQLite store (default: state)")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from monitor.config import MqttSettings, load_config, under_state_dir
    from monitor.monitor_role import MonitorRole, default_name
    from simnet.cli import load_inventory_arg

    config = under_state_dir(load_config(args.config), args.state_dir)
    outputs = config.outputs
    if args.broker is not None:  # the configuration's prefix and TLS files stay
        outputs = replace(outputs, mqtt=replace(outputs.mqtt or MqttSettings(), host=args.broker[0],
                                                port=args.broker[1]))
    if outputs.mqtt is None:
        raise SystemExit("monitor run: name the collectors' broker with --broker HOST:PORT or outputs.mqtt")
    config = replace(config, outputs=outputs)
    if args.store is not None:
        config = replace(config, store=replace(config.store, url=args.store))
    if args.console is not None:
        config = replace(config, console=replace(config.console, host=args.console[0], port=args.console[1]))
    config = config.check()  # the URL and console given here, checked as if from the file
    inventory = load_inventory_arg(args)
    lease = config.lease
    job = MonitorRole(inventory, config, None, state_dir=args.state_dir, status_every=args.status_every,
                      name=args.name or default_name(), lease_name=lease.name, ttl=lease.ttl, margin=lease.margin,
                      with_console=args.console is not None)
    log.info("jukimon monitor starting", extra=fields(devices=len(inventory.devices), config=config.source,
                                                      name=job.name))
    asyncio.run(job.run_until_signal())
    log.info("jukimon monitor stopped")
    return 0
