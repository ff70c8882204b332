"""``jukimon simnet``: run the simulated national network, inject and clear faults."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from simnet.control import DEFAULT_CONTROL, control_request
from simnet.faults import FaultKind
from monitor.argtypes import host_port




def add_simulation_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `simnet run` and `jukimon run`."""
    parser.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    parser.add_argument("--snmp-port", type=int, help="UDP port of every agent (default 161 as root, else 1161)")
    parser.add_argument("--tls-port", type=int, help="TCP port of the TLS services (default 443 as root, else 8443)")
    parser.add_argument("--no-tls", action="store_true", help="do not start the TLS services")
    parser.add_argument("--clock-speed", type=float, default=1.0,
                        help="simulated seconds per real second (default 1)")
    parser.add_argument("--state-dir", type=Path, default=Path("state/simnet"),
                        help="where the simulation CA and certificates are kept (default state/simnet)")
    parser.add_argument("--control", type=host_port, default=DEFAULT_CONTROL, metavar="HOST:PORT",
                        help="fault-control listener (default 127.0.0.1:16100)")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    simnet = sub.add_parser("simnet", help="the simulated national network",
                            description="Run the simulated 住基ネット on loopback and inject faults into it.")
    ssub = simnet.add_subparsers(dest="simnet_command", metavar="ACTION", required=True)

    run = ssub.add_parser("run", help="run the simulated network in the foreground until interrupted")
    add_simulation_options(run)
    run.add_argument("--trap-receiver", type=host_port, action="append", default=[], metavar="HOST:PORT",
                     help="send the devices' SNMP notifications here (repeatable)")
    run.add_argument("--trap-version", choices=("2c", "3"), default="2c",
                     help="notifications as SNMPv2c traps or SNMPv3 authPriv traps (default 2c)")
    run.add_argument("--syslog-target", type=host_port, metavar="HOST:PORT",
                     help="send the firewalls' connection logs (syslog over UDP) here")
    run.add_argument("--audit-target", type=host_port, metavar="HOST:PORT",
                     help="send the business terminals' audit records (TLS syslog, simulation CA) here")
    run.add_argument("--chatter", action="store_true",
                     help="the devices talk to each other over mutual TLS in the seeds' patterns "
                          "(change notifications, notices, provision, file delivery)")
    run.add_argument("--chatter-rate", type=float, default=3.6, metavar="PER_CS_HOUR",
                     help="chatter exchanges per CS and simulated hour at full load (default 3.6: about 3 a second "
                          "nationally; never more than 4 per real second)")
    run.set_defaults(handler=_run)

    fault = ssub.add_parser("fault", help="inject, clear or list faults in a running simulation")
    fsub = fault.add_subparsers(dest="fault_command", metavar="ACTION", required=True)
    kinds = ", ".join(k.value for k in FaultKind)
    inject = fsub.add_parser("inject", help="inject a fault", description=f"Fault kinds: {kinds}. "
                             "TARGET is a device id, a leased-line id (line_cut, link_latency, link_loss) "
                             "or a site id (site_lines_cut).")
    inject.add_argument("kind", metavar="KIND", help="fault kind")
    inject.add_argument("target", metavar="TARGET", help="device, link or site id")
    inject.add_argument("--if-index", type=int, help="interface_down: the ifIndex")
    inject.add_argument("--latency-ms", type=float, help="link_latency: added delay in ms")
    inject.add_argument("--loss", type=float, help="link_loss: fraction of requests lost (0..1)")
    clear = fsub.add_parser("clear", help="clear one fault, or all")
    group = clear.add_mutually_exclusive_group(required=True)
    group.add_argument("fault_id", nargs="?", metavar="FAULT_ID")
    group.add_argument("--all", action="store_true", help="clear every active fault")
    listing = fsub.add_parser("list", help="list active faults")
    status = ssub.add_parser("status", help="device counts, SNMP counters and fault count of a running simulation")
    status.set_defaults(fault_command="status")
    for p in (inject, clear, listing, status):
        p.add_argument("--control", type=host_port, default=DEFAULT_CONTROL, metavar="HOST:PORT",
                       help="the simulation's control address (default 127.0.0.1:16100)")
        p.add_argument("--json", action="store_true", help="print the raw JSON reply")
        p.set_defaults(handler=_fault)


def simnet_config_from(args: argparse.Namespace):
    from simnet.network import SimnetConfig
    from simnet.service import default_ports

    snmp_default, tls_default = default_ports()
    return SimnetConfig(snmp_port=args.snmp_port or snmp_default, tls_port=args.tls_port or tls_default,
                        clock_speed=args.clock_speed, state_dir=args.state_dir, tls=not args.no_tls,
                        trap_receivers=tuple(getattr(args, "trap_receiver", ())),
                        trap_version=getattr(args, "trap_version", "2c"))


def load_inventory_arg(args: argparse.Namespace):
    from monitor.inventory import default_inventory, load_inventory

    return load_inventory(args.inventory) if args.inventory else default_inventory()


def _run(args: argparse.Namespace) -> int:
    from simnet.service import serve_until_signal

    from simnet.chatter import ChatterConfig

    chatter = None
    if args.chatter:
        if args.no_tls:
            raise SystemExit("simnet run: --chatter needs the TLS services (drop --no-tls)")
        chatter = ChatterConfig(per_cs_hour=args.chatter_rate)
        chatter.check("--chatter-rate")
    asyncio.run(serve_until_signal(load_inventory_arg(args), simnet_config_from(args), args.control,
                                   args.syslog_target, args.audit_target, chatter))
    return 0


def _fault(args: argparse.Namespace) -> int:
    request: dict[str, Any]
    if args.fault_command == "inject":
        params = {k: v for k, v in (("if_index", args.if_index), ("latency_ms", args.latency_ms),
                                    ("loss", args.loss)) if v is not None}
        request = {"op": "inject", "kind": args.kind, "target": args.target, "params": params}
    elif args.fault_command == "clear":
        request = {"op": "clear_all"} if args.all else {"op": "clear", "id": args.fault_id}
    elif args.fault_command == "list":
        request = {"op": "list"}
    else:
        request = {"op": "status"}
    reply = asyncio.run(control_request(request, *args.control))
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        print(_describe(reply))
    return 0 if reply.get("ok") else 1


def _describe(reply: dict[str, Any]) -> str:
    if not reply.get("ok"):
        return f"refused: {reply.get('error')}"
    if "fault" in reply:
        f = reply["fault"]
        params = " ".join(f"{k}={v}" for k, v in f["params"].items())
        return f"{f['id']}  {f['kind']:<16} {f['target']} {params}".rstrip()
    if "faults" in reply or "cleared" in reply:
        rows = reply.get("faults", reply.get("cleared", []))
        head = "active faults" if "faults" in reply else "cleared"
        lines = [f"{head}: {len(rows)}"]
        lines += [f"  {f['id']}  {f['kind']:<16} {f['target']}" for f in rows]
        return "\n".join(lines)
    if "tiers" in reply:
        lines = [f"devices: {reply['devices']}   active faults: {reply['active_faults']}"]
        lines += [f"  {t['tier']:<13} {t['devices']:>5}  {t['first']} … {t['last']}" for t in reply["tiers"]]
        lines.append("  snmp: " + ", ".join(f"{k}={v}" for k, v in sorted(reply["snmp"].items())))
        return "\n".join(lines)
    return json.dumps(reply, ensure_ascii=False, indent=2)
