"""``jukimon poll``: poll one device once and print what the collectors would record;
``jukimon collector run``: one sharded collector process (collectors/shard/)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from collectors.snmp.client import Credentials, SnmpAuthError, SnmpError, SnmpTimeout
from collectors.snmp.probe import learn_tables, poll_device
from collectors.snmp.udp_client import SnmpUdpClient
from monitor.argtypes import host_port

SYSTEM = {"descr": (1, 3, 6, 1, 2, 1, 1, 1, 0), "name": (1, 3, 6, 1, 2, 1, 1, 5, 0),
          "location": (1, 3, 6, 1, 2, 1, 1, 6, 0)}
OPER = {1: "up", 2: "down", 3: "testing", 5: "dormant", 7: "lowerLayerDown"}


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    poll = sub.add_parser("poll", help="poll one device once over SNMP and print what would be recorded",
                          description="An operator's quick check: system, interfaces, CPU and storage of one "
                                      "device. SNMPv2c with --community (default public), or SNMPv3 authPriv "
                                      "(SHA/AES) with --v3-user.")
    poll.add_argument("target", metavar="ADDRESS[:PORT]", help="device address, port 161 unless given")
    poll.add_argument("--community", default="public", help="SNMPv2c community (default public)")
    poll.add_argument("--v3-user", help="SNMPv3 user: switches to v3 authPriv")
    poll.add_argument("--auth-key", help="SNMPv3 authentication passphrase")
    poll.add_argument("--auth-protocol", default="SHA", help="SHA (default), SHA-256, SHA-512 ...")
    poll.add_argument("--priv-key", help="SNMPv3 privacy passphrase (AES)")
    poll.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt (default 2)")
    poll.add_argument("--json", action="store_true", help="print JSON")
    poll.set_defaults(handler=_poll)

    collector = sub.add_parser("collector", help="sharded collector processes sharing the inventory over MQTT")
    actions = collector.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="poll this process's share of the inventory until SIGTERM/SIGINT",
                             description="Start as many as needed, on one host or many, against the same broker: "
                                         "each announces itself on <prefix>/collectors/<id>/alive, polls the devices "
                                         "rendezvous hashing gives it, and publishes on the usual topic tree. Kill one "
                                         "and the others take its devices over; start one and it takes a share.")
    run.add_argument("--broker", type=host_port, metavar="HOST:PORT",
                     help="MQTT broker (default: outputs.mqtt of --config, else 127.0.0.1:1883)")
    run.add_argument("--id", dest="member_id", help="collector id, unique among collectors (default HOST-PID)")
    run.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    run.add_argument("--config", type=Path, help="jukimon YAML config (collectors, collectors.shard, outputs)")
    run.add_argument("--snmp-port", type=int, help="UDP port of every agent (default collectors.snmp.port)")
    run.add_argument("--tls-port", type=int, help="TCP port of the TLS checks (default collectors.tls_port)")
    run.add_argument("--tsdb", metavar="URL", help="also write samples to this InfluxDB v2 / VictoriaMetrics URL")
    run.set_defaults(handler=_run_collector)


def _credentials(args: argparse.Namespace) -> Credentials:
    if args.v3_user:
        if not args.auth_key or not args.priv_key:
            raise SystemExit("jukimon poll: --v3-user needs --auth-key and --priv-key")
        return Credentials("3", user=args.v3_user, auth_protocol=args.auth_protocol, auth_key=args.auth_key,
                           priv_key=args.priv_key)
    return Credentials("2c", community=args.community)


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


async def poll_once(address: str, port: int, credentials: Credentials, timeout: float) -> dict[str, Any]:
    client = SnmpUdpClient(credentials, timeout=timeout, retries=1)
    try:
        system = dict(await client.get(address, port, list(SYSTEM.values())))
        names = await learn_tables(client, address, port)
        raw = await poll_device(client, address, port, names)
    finally:
        await client.close()
    interfaces = []
    for index, row in sorted(raw.interfaces.items()):
        name, alias = names.interfaces.get(index, ("", ""))
        interfaces.append({"index": index, "name": name, "alias": alias,
                           "oper_status": OPER.get(row.get("oper_status"), row.get("oper_status")),
                           **{k: row.get(k) for k in ("speed_mbps", "in_octets", "out_octets", "in_errors",
                                                      "out_errors", "in_discards", "out_discards")}})
    storages = []
    for index, row in sorted(raw.storages.items()):
        size, used, units = row.get("size"), row.get("used"), row.get("units")
        if isinstance(size, int) and isinstance(used, int) and isinstance(units, int) and size:
            storages.append({"index": index, "descr": names.storages.get(index, ""), "size_bytes": size * units,
                             "used_bytes": used * units, "used_pct": round(100 * used / size, 1)})
    return {"address": address, "port": port, "polled_at": time.time(), "rtt_ms": round(raw.rtt_ms, 2),
            "system": {k: _text(system.get(oid)) for k, oid in SYSTEM.items()},
            "uptime_s": raw.uptime_ticks / 100, "interfaces": interfaces,
            "cpu_pct": raw.processors, "storage": storages}


def render(result: dict[str, Any]) -> str:
    s = result["system"]
    up = result["uptime_s"]
    lines = [f"{s['name']}  ({result['address']}:{result['port']}, answered in {result['rtt_ms']} ms)",
             f"  {s['descr']}",
             f"  location: {s['location']}   uptime: {int(up // 86400)}d {int(up % 86400 // 3600)}h "
             f"{int(up % 3600 // 60)}m",
             "  interfaces:",
             f"    {'#':>3} {'name':<10} {'status':<7} {'Mbps':>6} {'in octets':>16} {'out octets':>16} "
             f"{'in err':>7} {'out err':>7}  line"]
    for i in result["interfaces"]:
        lines.append(f"    {i['index']:>3} {i['name']:<10} {str(i['oper_status']):<7} {i['speed_mbps'] or '':>6} "
                     f"{i['in_octets'] or 0:>16} {i['out_octets'] or 0:>16} {i['in_errors'] or 0:>7} "
                     f"{i['out_errors'] or 0:>7}  {i['alias']}")
    cpus = result["cpu_pct"]
    lines.append(f"  cpu: {', '.join(f'{c}%' for c in cpus) if cpus else 'n/a'}")
    for st in result["storage"]:
        lines.append(f"  storage {st['descr']:<16} {st['used_pct']:>5}% of {st['size_bytes'] / 2**30:.1f} GiB")
    return "\n".join(lines)


def _poll(args: argparse.Namespace) -> int:
    host, _, port_text = args.target.rpartition(":") if ":" in args.target else (args.target, "", "161")
    if not port_text.isdigit():
        raise SystemExit(f"jukimon poll: bad port in {args.target!r}")
    try:
        result = asyncio.run(poll_once(host, int(port_text), _credentials(args), args.timeout))
    except SnmpTimeout:
        print(f"{args.target}: no answer (timeout {args.timeout} s, 1 retry)")
        return 2
    except SnmpAuthError as exc:
        print(f"{args.target}: refused: {exc}")
        return 3
    except SnmpError as exc:
        print(f"{args.target}: {exc}")
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else render(result))
    return 0


def _run_collector(args: argparse.Namespace) -> int:
    from collectors.shard import ShardedCollector, ShardOptions, default_member_id, run_until_signal
    from monitor.config import MqttSettings, load_config
    from monitor.inventory import default_inventory, load_inventory

    config = load_config(args.config)
    mqtt = config.outputs.mqtt or MqttSettings()
    options = ShardOptions(broker=args.broker or (mqtt.host, mqtt.port),
                           member_id=args.member_id or default_member_id(), prefix=mqtt.topic_prefix,
                           snmp_port=args.snmp_port, tls_port=args.tls_port, tsdb_url=args.tsdb,
                           spool_dir=config.outputs.spool_dir)
    inventory = load_inventory(args.inventory) if args.inventory else default_inventory()
    print(f"collector {options.member_id}: {sum(1 for _ in inventory.polled_devices())} devices in the inventory, "
          f"broker {options.broker[0]}:{options.broker[1]}", flush=True)
    asyncio.run(run_until_signal(ShardedCollector(inventory, config, options)))
    return 0
