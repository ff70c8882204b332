"""``jukimon pki``: the bus's CA and certificates, and the Mosquitto configuration that uses them."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from monitor.pki import COMPONENTS, DEFAULT_BROKER_HOSTS, ROLE_ACL

    parser = sub.add_parser("pki", help="MQTT over TLS: CA, client certificates per component, broker configuration")
    commands = parser.add_subparsers(dest="pki_command", metavar="SUBCOMMAND", required=True)

    init = commands.add_parser("init", help=f"make a CA, the broker's certificate and one for each of: "
                                            f"{', '.join(COMPONENTS)} (existing files are kept)")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--broker-host", action="append", metavar="NAME",
                      help="a DNS name or address clients use for the broker (repeat; default: "
                           f"{' and '.join(DEFAULT_BROKER_HOSTS)})")
    init.set_defaults(handler=_init)

    issue = commands.add_parser("issue", help="one more client certificate (CN = NAME) with the rights of its roles")
    issue.add_argument("directory", type=Path, metavar="DIR")
    issue.add_argument("name", metavar="NAME", help="component id, the broker's user name (e.g. collector-osaka)")
    issue.add_argument("--role", action="append", required=True, choices=sorted(ROLE_ACL),
                       help="what it may publish and read (repeat for a process that does several jobs)")
    issue.add_argument("--days", type=int, default=None, help="validity in days (default 730)")
    issue.set_defaults(handler=_issue)

    revoke = commands.add_parser("revoke", help="put NAME's certificate on the CRL (a lost or stolen key); restart the "
                                                "broker after rendering its files again")
    revoke.add_argument("directory", type=Path, metavar="DIR")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_revoke)

    conf = commands.add_parser("mosquitto-conf", help="deploy/mosquitto/jukimon.conf with this PKI's paths, and the "
                                                      "ACL for every client certificate in DIR")
    conf.add_argument("directory", type=Path, metavar="DIR")
    conf.add_argument("--out", type=Path, required=True, help="where to write jukimon.conf and jukimon.acl")
    conf.add_argument("--port", type=int, default=8883)
    conf.add_argument("--bind", default=None, help="listen on this address only (default: all)")
    conf.add_argument("--persistence-dir", type=Path, default=None, help="default /var/lib/mosquitto/")
    conf.add_argument("--prefix", default="jukimon", help="topic prefix (outputs.mqtt.topic_prefix)")
    conf.set_defaults(handler=_mosquitto_conf)


def _init(args: argparse.Namespace) -> int:
    from monitor.pki import DEFAULT_BROKER_HOSTS, init

    made = init(args.directory, broker_hosts=args.broker_host or DEFAULT_BROKER_HOSTS)
    for issued in made:
        print(f"{issued.cert}  {', '.join(issued.roles) or '-'}")
    if not made:
        print(f"{args.directory}: everything there already")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from monitor.pki import CERT_DAYS, issue

    if (args.directory / f"{args.name}.crt").exists():
        print(f"jukimon: error: {args.directory / args.name}.crt exists (remove it to re-issue)")
        return 1
    issued = issue(args.directory, args.name, args.role, days=args.days or CERT_DAYS)
    print(f"{issued.cert}  {', '.join(issued.roles)}  (key {issued.key}, mode 0600)")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from monitor.pki import CRL_FILE, revoke

    serial = revoke(args.directory, args.name)
    print(f"{args.name}: serial {serial:x} revoked in {args.directory / CRL_FILE}; render the broker's files again "
          "(jukimon pki mosquitto-conf) and restart it")
    return 0


def _mosquitto_conf(args: argparse.Namespace) -> int:
    from monitor.pki import mosquitto_files

    conf, acl = mosquitto_files(args.directory, args.out, port=args.port, bind=args.bind,
                                persistence_dir=args.persistence_dir, prefix=args.prefix)
    print(f"{conf}\n{acl}\nrun: mosquitto -c {conf}  (the broker must be able to read {args.directory}/broker.key)")
    return 0
