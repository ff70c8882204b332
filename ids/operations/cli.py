"""``jukimon opsids replay FILE.jsonl``: run the operation-pattern detectors over an audit file."""

from __future__ import annotations

import argparse
from pathlib import Path
from monitor.argtypes import host_port


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("opsids", help="operation-pattern IDS: suspicious operator behaviour")
    commands = parser.add_subparsers(dest="opsids_command", metavar="SUBCOMMAND", required=True)
    replay = commands.add_parser("replay", help="print one JSON alert per line for a file of audit records")
    replay.add_argument("file", type=Path, help="audit records, one JSON object per line (docs/audit-records.md)")
    replay.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    replay.add_argument("--mqtt", metavar="HOST:PORT", type=host_port,
                        help="also publish every alert onto this MQTT broker (event_type alert, QoS 1)")
    replay.add_argument("--config", type=Path,
                        help="jukimon YAML config: publish onto its outputs.mqtt broker, with its TLS client "
                             "certificate when outputs.mqtt.tls is set (--mqtt overrides the host and port)")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from ids.operations.replay import OperationsIds, replay
    from simnet.cli import load_inventory_arg

    ids = OperationsIds(load_inventory_arg(args))
    alerts = replay(args.file, ids)
    if args.mqtt is None and args.config is None:
        for alert in alerts:
            print(alert.to_json())
        return 0
    import asyncio

    from ids.operations.bus import publish_alerts
    from monitor.config import MqttSettings, load_config

    mqtt = load_config(args.config).outputs.mqtt or MqttSettings()
    host, port = args.mqtt or (mqtt.host, mqtt.port)
    asyncio.run(publish_alerts(alerts, ids.directory, host, port, tls=mqtt.tls,
                               topic_prefix=mqtt.topic_prefix, on_each=lambda a: print(a.to_json())))
    return 0
