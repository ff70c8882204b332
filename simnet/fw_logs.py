"""Simulated firewall traffic logs: every answering firewall of the simulation sends syslog.

Each firewall (municipal, prefecture, aggregation-centre and national FW) is given
one vendor of the real fleet's mix — Cisco ASA, FortiGate, Juniper SRX, Palo Alto,
Linux netfilter — deterministically from its id, and logs allowed connections
between the endpoints that really talk across it (CS → prefecture unit on 443,
the national monitor polling SNMP on 161, file delivery from the operations
servers, …) and denied ones from odd sources (unregistered hosts, private ranges,
forbidden ports). Messages leave from the firewall's own address, so a collector
identifies the sender exactly as it would in production; a firewall that does not
answer (powered off, isolated, cut off) sends nothing.

The fleet's total rate is bounded (default ~90 msg/s for ~1,800 firewalls) so the
simulation stays a background load, not a benchmark.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from monitor.inventory.model import Device, Role, Subsystem
from monitor.logs import fields
from simnet.limits import ensure_fd_limit
from simnet.network import SimNetwork

log = logging.getLogger("simnet.fw_logs")

VENDORS = ("cisco_asa", "fortigate", "juniper_srx", "paloalto", "netfilter")
FIREWALL_ROLES = frozenset({Role.FW, Role.PREFECTURE_FW, Role.AGGREGATION_FW, Role.NATIONAL_FW})
DEFAULT_RATE_PER_FW = 3.0  # messages per minute per firewall
DEFAULT_MAX_TOTAL_RATE = 150.0  # messages per second for the whole fleet
DENY_SHARE = 0.15
_JST = 9 * 3600
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MUNICIPAL_MIX = ("fortigate",) * 3 + ("cisco_asa",) * 3 + ("juniper_srx",) * 2 + ("paloalto", "netfilter")
_FORBIDDEN = (("tcp", 22), ("tcp", 23), ("tcp", 135), ("tcp", 139), ("tcp", 445), ("tcp", 3389), ("tcp", 1433),
              ("tcp", 5900), ("tcp", 8080), ("tcp", 21), ("udp", 137), ("udp", 1900), ("udp", 53), ("icmp", 0))


def default_vendor(device: Device) -> tuple[str, int]:
    """(vendor, format variant) of a firewall: the centres run big-iron, municipalities a mix."""
    crc = zlib.crc32(device.id.encode())
    variant = (crc >> 16) & 1
    if device.role is Role.NATIONAL_FW:
        return "paloalto", variant
    if device.role is Role.AGGREGATION_FW:
        return "juniper_srx", 0
    if device.role is Role.PREFECTURE_FW:
        return ("juniper_srx", "fortigate", "paloalto", "cisco_asa")[crc % 4], variant
    return _MUNICIPAL_MIX[crc % len(_MUNICIPAL_MIX)], variant


@dataclass(frozen=True, slots=True)
class Flow:
    """One connection a firewall decides on."""

    action: str  # allow | deny
    proto: str  # tcp | udp | icmp
    src: str
    sport: int
    dst: str
    dport: int
    rule: str
    rule_id: int
    src_inside: bool
    dst_inside: bool
    session: int


@dataclass(frozen=True, slots=True)
class _Service:
    rule: str
    proto: str
    port: int
    sources: tuple[str, ...]
    dests: tuple[str, ...]
    weight: float


class _Firewall:
    """Per-firewall state: vendor, what it sees, counters, its socket."""

    def __init__(self, device: Device, vendor: str, variant: int, services: list[_Service],
                 inside: tuple[str, ...], lan_prefix: str):
        self.device = device
        self.address: str = device.address or ""
        self.vendor = vendor
        self.variant = variant
        self.services = [s for s in services if s.sources and s.dests]
        self.weights = [s.weight for s in self.services]
        self.inside = frozenset(inside) | {self.address}
        self.inside_hosts = tuple(inside) or (self.address,)
        self.lan_prefix = lan_prefix
        self.session = zlib.crc32(device.id.encode()) % 900_000 + 100_000
        self.udp: socket.socket | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.retry_at = 0.0


class FirewallLogSource:
    """Sends the simulated firewalls' traffic logs to a collector at ``target``.

    ``rate_per_fw`` is messages per minute per firewall; the fleet total is capped at
    ``max_total_rate`` messages per second. ``vendors`` overrides the default mix, keyed
    by device id, site id or role value (most specific first). ``transport`` "tcp"
    uses RFC 6587 octet-counting, one connection per firewall.
    """

    def __init__(self, network: SimNetwork, target: tuple[str, int], *, transport: str = "udp",
                 rate_per_fw: float = DEFAULT_RATE_PER_FW, max_total_rate: float = DEFAULT_MAX_TOTAL_RATE,
                 vendors: Mapping[str, str] | None = None, seed: int = 0):
        if transport not in ("udp", "tcp"):
            raise ValueError("transport is 'udp' or 'tcp'")
        for vendor in (vendors or {}).values():
            if vendor not in VENDORS:
                raise ValueError(f"unknown firewall vendor {vendor!r} (one of {', '.join(VENDORS)})")
        self.network = network
        self.target = target
        self.transport = transport
        self.rng = random.Random(seed)
        self.stats: Counter[str] = Counter()
        self._firewalls = _plan(network, vendors or {})
        self._by_id = {fw.device.id: fw for fw in self._firewalls}
        self.total_rate = min(len(self._firewalls) * max(0.0, rate_per_fw) / 60.0, max_total_rate)
        self._task: asyncio.Task[None] | None = None

    @property
    def firewalls(self) -> list[str]:
        return [fw.device.id for fw in self._firewalls]

    def vendor_of(self, device_id: str) -> str:
        return self._by_id[device_id].vendor

    async def start(self) -> None:
        if self._task is not None:
            return
        ensure_fd_limit(len(self._firewalls))  # one socket (UDP) or connection (TCP) per firewall
        self._task = asyncio.create_task(self._run(), name="fw-logs")
        log.info("firewall logs started", extra=fields(firewalls=len(self._firewalls), transport=self.transport,
                                                       target=f"{self.target[0]}:{self.target[1]}",
                                                       rate=round(self.total_rate, 1)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for fw in self._firewalls:
            self._disconnect(fw)
            if fw.udp is not None:
                fw.udp.close()
                fw.udp = None

    async def _run(self) -> None:
        if not self._firewalls:
            return
        loop = asyncio.get_running_loop()
        last, credit = loop.time(), 0.0
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            credit = min(credit + (now - last) * self.total_rate, max(1.0, self.total_rate))
            last = now
            due = int(credit)
            credit -= due
            for _ in range(due):
                fw = self._firewalls[self.rng.randrange(len(self._firewalls))]
                try:
                    await self._emit(fw)
                except Exception:  # a bug in one message must not silence the whole fleet
                    self.stats["errors"] += 1
                    if self.stats["errors"] == 1:
                        log.exception("firewall log generation failed", extra=fields(device=fw.device.id))

    async def _emit(self, fw: _Firewall) -> None:
        sim = self.network.devices.get(fw.device.id)
        if sim is None or not sim.answering:
            self.stats["silent"] += 1
            self._disconnect(fw)  # a dead or cut-off firewall's session is gone too
            return
        line = format_line(fw.vendor, fw.variant, self._flow(fw), self.network.clock.now(), fw.device.id)
        try:
            if self.transport == "udp":
                self._send_udp(fw, line)
            elif not await self._send_tcp(fw, line):
                return
        except OSError as exc:
            self.stats["send_errors"] += 1
            if self.stats["send_errors"] == 1:
                log.warning("firewall log send failed", extra=fields(device=fw.device.id, error=str(exc)))
            self._disconnect(fw)
            return
        self.stats["sent"] += 1

    def _send_udp(self, fw: _Firewall, line: bytes) -> None:
        if fw.udp is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((fw.address, 0))  # from the firewall's own address: the collector sees the true sender
            except OSError:
                sock.close()
                raise
            fw.udp = sock
        fw.udp.sendto(line, self.target)

    async def _send_tcp(self, fw: _Firewall, line: bytes) -> bool:
        if fw.writer is not None and fw.writer.is_closing():
            self._disconnect(fw)
        if fw.writer is None:
            if time.monotonic() < fw.retry_at:
                self.stats["not_connected"] += 1
                return False
            try:
                _, fw.writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.target, local_addr=(fw.address, 0)), 2.0)
                self.stats["connects"] += 1
            except (OSError, asyncio.TimeoutError):
                fw.retry_at = time.monotonic() + 5.0
                self.stats["connect_errors"] += 1
                return False
        if fw.writer.transport.get_write_buffer_size() > 256 * 1024:
            self.stats["dropped"] += 1  # collector not reading: do not queue without bound
            return False
        fw.writer.write(b"%d " % len(line) + line)
        return True

    def _disconnect(self, fw: _Firewall) -> None:
        if fw.writer is not None:
            fw.writer.close()
            fw.writer = None

    def _flow(self, fw: _Firewall) -> Flow:
        rng = self.rng
        fw.session += 1
        if rng.random() >= DENY_SHARE and fw.services:
            index = rng.choices(range(len(fw.services)), fw.weights)[0]
            svc = fw.services[index]
            src, dst = rng.choice(svc.sources), rng.choice(svc.dests)
            sport = 0 if svc.proto == "icmp" else rng.randint(32768, 60999)
            return Flow("allow", svc.proto, src, sport, dst, svc.port, svc.rule, index + 1,
                        src in fw.inside, dst in fw.inside, fw.session)
        proto, port = rng.choice(_FORBIDDEN)
        if rng.random() < 0.3 and fw.services:  # a known host trying a port it has no business with
            svc = rng.choice(fw.services)
            src, dst = rng.choice(svc.sources), rng.choice(svc.dests)
        else:
            src, dst = _odd_source(rng, fw.lan_prefix), rng.choice(fw.inside_hosts)
        sport = 0 if proto == "icmp" else rng.randint(1024, 65535)
        return Flow("deny", proto, src, sport, dst, port, "default-deny", 0, src in fw.inside, dst in fw.inside,
                    fw.session)


def _odd_source(rng: random.Random, lan_prefix: str) -> str:
    """An address nobody registered: a stray host on the site LAN, or a private range that should not be here."""
    kind = rng.random()
    if kind < 0.4:
        return f"{lan_prefix}.{rng.randint(100, 250)}"
    if kind < 0.7:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind < 0.9:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


# --- who talks across which firewall ------------------------------------------------

def _plan(network: SimNetwork, vendors: Mapping[str, str]) -> list[_Firewall]:
    inv = network.inventory
    sims = network.devices
    by_site: dict[str, list[Device]] = {}
    for sim in sims.values():
        by_site.setdefault(sim.device.site, []).append(sim.device)

    def addresses(devices: list[Device], *roles: Role) -> tuple[str, ...]:
        return tuple(d.address for d in devices if d.role in roles and d.address)

    all_devices = [s.device for s in sims.values()]
    nms = addresses(all_devices, Role.NETWORK_MONITOR)
    national = [d for d in all_devices if d.role is Role.NATIONAL_SERVER]
    ops = tuple(d.address for d in national if d.subsystem is Subsystem.OPERATIONS and d.address)
    core_servers = tuple(d.address for d in national if d.subsystem in (Subsystem.DATABASE, Subsystem.BUSINESS,
                                                                          Subsystem.SEARCH) and d.address)
    provision = tuple(d.address for d in national if d.subsystem is Subsystem.PROVISION and d.address)
    units = {d.prefecture: d.address for d in all_devices if d.role is Role.PREFECTURE_UNIT and d.address}
    agencies = addresses(all_devices, Role.AGENCY_SERVER)
    agency_routers = tuple(d.address for d in all_devices if d.role is Role.ROUTER and d.address
                           and inv.sites[d.site].tier == "agency")
    cs_by_pref: dict[str | None, list[str]] = {}
    for d in all_devices:
        if d.role in (Role.CS, Role.CS_RECOVERY) and d.address:
            cs_by_pref.setdefault(d.prefecture, []).append(d.address)

    firewalls: list[_Firewall] = []
    for sim in sims.values():
        device = sim.device
        if device.role not in FIREWALL_ROLES or not device.address:
            continue
        local = by_site.get(device.site, [])
        pu = (units[device.prefecture],) if device.prefecture in units else ()
        lan_prefix = device.address.rsplit(".", 1)[0]
        if device.role is Role.FW:
            inside = addresses(local, Role.CS, Role.CS_RECOVERY)
            peers = tuple(a for a in cs_by_pref.get(device.prefecture, []) if a not in inside)
            services = [_Service("cs-to-pu", "tcp", 443, inside, pu, 5), _Service("pu-to-cs", "tcp", 443, pu, inside, 2),
                        _Service("cs-to-cs", "tcp", 443, inside, peers, 2),
                        _Service("nms-snmp", "udp", 161, nms, inside + (device.address,), 2),
                        _Service("cs-trap", "udp", 162, inside, nms, 0.5),
                        _Service("file-delivery", "tcp", 443, ops, inside, 1),
                        _Service("ntp", "udp", 123, inside, ops, 0.5), _Service("nms-ping", "icmp", 0, nms, inside, 0.5)]
        elif device.role is Role.PREFECTURE_FW:
            network_gear = addresses(local, Role.PREFECTURE_CORE, Role.ROUTER)
            cs = tuple(cs_by_pref.get(device.prefecture, []))
            inside = cs + network_gear
            services = [_Service("cs-to-pu", "tcp", 443, cs, pu, 5), _Service("pu-to-cs", "tcp", 443, pu, cs, 2),
                        _Service("nms-snmp", "udp", 161, nms, network_gear + (device.address,), 2),
                        _Service("nms-ping", "icmp", 0, nms, network_gear, 0.5)]
        elif device.role is Role.AGGREGATION_FW:
            inside = addresses(local, Role.PREFECTURE_UNIT)
            services = [_Service("pu-to-national", "tcp", 443, inside, core_servers, 5),
                        _Service("file-delivery", "tcp", 443, ops, inside, 2),
                        _Service("nms-snmp", "udp", 161, nms, inside + (device.address,), 2)]
        else:  # national FW
            inside = tuple(d.address for d in local if d.address and d.id != device.id)
            services = [_Service("agency-provision", "tcp", 443, agencies, provision, 4),
                        _Service("pu-to-national", "tcp", 443, tuple(units.values()), core_servers, 3),
                        _Service("bulk-provision", "tcp", 443, provision, agencies, 1),
                        _Service("nms-snmp", "udp", 161, nms, agency_routers + (device.address,), 1)]
        override = next((vendors[k] for k in (device.id, device.site, device.role.value) if k in vendors), None)
        vendor, variant = default_vendor(device)
        if override is not None:
            vendor = override
        firewalls.append(_Firewall(device, vendor, variant, services, inside, lan_prefix))
    return firewalls


# --- the five formats ------------------------------------------------------------------

def _bsd_time(ts: float, *, year: bool = False) -> str:
    t = time.gmtime(ts + _JST)
    if year:
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _iso_time(ts: float, *, utc: bool = False) -> str:
    t = time.gmtime(ts if utc else ts + _JST)
    ms = int(ts * 1000) % 1000
    zone = "Z" if utc else "+09:00"
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{ms:03d}{zone}")


def _slash_time(ts: float) -> str:
    t = time.gmtime(ts + _JST)
    return f"{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}
_SRX_SERVICES = {("tcp", 443): "junos-https", ("udp", 161): "junos-snmp-get", ("udp", 162): "junos-snmp-trap",
                 ("udp", 123): "junos-ntp", ("tcp", 22): "junos-ssh", ("tcp", 23): "junos-telnet",
                 ("icmp", 0): "junos-icmp-all"}


def format_line(vendor: str, variant: int, flow: Flow, ts: float, hostname: str) -> bytes:
    """One syslog message, as the vendor's firewall would send it (no framing)."""
    return _FORMATTERS[vendor](variant, flow, ts, hostname).encode()


def _asa(variant: int, f: Flow, ts: float, host: str) -> str:
    # variant 1: "logging timestamp rfc5424" (ISO time, UTC); else the classic "Mmm dd yyyy hh:mm:ss"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if variant else _bsd_time(ts, year=True)
    head = f"{stamp} {host} : "
    out_if, in_if = "outside", "inside"
    s_if = in_if if f.src_inside else out_if
    d_if = in_if if f.dst_inside else out_if
    if f.action == "allow":
        if f.proto == "icmp":
            return (f"<166>{head}%ASA-6-302020: Built inbound ICMP connection for faddr {f.src}/{f.session % 65536} "
                    f"gaddr {f.dst}/0 laddr {f.dst}/0 type 8 code 0")
        code = "302013" if f.proto == "tcp" else "302015"
        if s_if == in_if and d_if == out_if:  # outbound: the ASA names the outside end first
            ends = f"for {d_if}:{f.dst}/{f.dport} ({f.dst}/{f.dport}) to {s_if}:{f.src}/{f.sport} ({f.src}/{f.sport})"
            direction = "outbound"
        else:
            ends = f"for {s_if}:{f.src}/{f.sport} ({f.src}/{f.sport}) to {d_if}:{f.dst}/{f.dport} ({f.dst}/{f.dport})"
            direction = "inbound"
        return f"<166>{head}%ASA-6-{code}: Built {direction} {f.proto.upper()} connection {f.session} {ends}"
    acl = f"{s_if}_access_in"
    if variant:  # access-list logging (106100)
        sport, dport = (8, 0) if f.proto == "icmp" else (f.sport, f.dport)
        return (f"<166>{head}%ASA-6-106100: access-list {acl} denied {f.proto} {s_if}/{f.src}({sport}) -> "
                f"{d_if}/{f.dst}({dport}) hit-cnt 1 first hit [0x{f.session:08x}, 0x0]")
    if f.proto == "icmp":
        return (f"<164>{head}%ASA-4-106023: Deny icmp src {s_if}:{f.src} dst {d_if}:{f.dst} (type 8, code 0) "
                f'by access-group "{acl}" [0x0, 0x0]')
    return (f"<164>{head}%ASA-4-106023: Deny {f.proto} src {s_if}:{f.src}/{f.sport} dst {d_if}:{f.dst}/{f.dport} "
            f'by access-group "{acl}" [0x0, 0x0]')


def _fortigate(variant: int, f: Flow, ts: float, host: str) -> str:
    t = time.gmtime(ts + _JST)
    level, pri = ("notice", 189) if f.action == "allow" else ("warning", 188)
    action = ("close", "accept")[f.session % 2] if f.action == "allow" else "deny"
    ports = "" if f.proto == "icmp" else f" srcport={f.sport}"
    dports = "" if f.proto == "icmp" else f" dstport={f.dport}"
    icmp = ' icmpid=0x0001 icmptype=0x08 icmpcode=0x00' if f.proto == "icmp" else ""
    policy = f' policyid={f.rule_id} policytype="policy"' + (f' policyname="{f.rule}"' if f.rule_id else "")
    body = (f'date={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} time={t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} '
            f'devname="{host}" devid="FGT60F{zlib.crc32(host.encode()):010d}" eventtime={int(ts * 1e9)} '
            f'tz="+0900" logid="0000000013" type="traffic" subtype="forward" level="{level}" vd="root" '
            f'srcip={f.src}{ports} srcintf="{"internal" if f.src_inside else "wan1"}" dstip={f.dst}{dports} '
            f'dstintf="{"internal" if f.dst_inside else "wan1"}" sessionid={f.session} proto={_PROTO_NUMBERS[f.proto]}'
            f'{icmp} action="{action}"{policy} service="{f.proto.upper()}/{f.dport}" trandisp="noop" duration=1 '
            f'sentbyte=0 rcvdbyte=0')
    if variant:
        return f"<{pri}>1 {_iso_time(ts)} {host} - - - - {body}"
    return f"<{pri}>{body}"


def _srx(variant: int, f: Flow, ts: float, host: str) -> str:
    event = {"allow": "RT_FLOW_SESSION_CREATE", "deny": "RT_FLOW_SESSION_DENY"}[f.action]
    service = _SRX_SERVICES.get((f.proto, f.dport), "None")
    szone = "trust" if f.src_inside else "untrust"
    dzone = "trust" if f.dst_inside else "untrust"
    proto = _PROTO_NUMBERS[f.proto]
    policy = f.rule
    tup = f"{f.src}/{f.sport}->{f.dst}/{f.dport}"
    if f.action == "allow":
        text = (f"session created {tup} 0x0 {service} {tup} 0x0 N/A N/A N/A N/A {proto} {policy} {szone} {dzone} "
                f"{f.session} N/A(N/A) ge-0/0/0.0 UNKNOWN UNKNOWN UNKNOWN")
    else:
        text = (f"session denied {tup} 0x0 {service} {proto}(0) {policy} {szone} {dzone} UNKNOWN UNKNOWN N/A(N/A) "
                f"ge-0/0/0.0 No policy deny")
    if variant == 0:
        sd = (f'[junos@2636.1.1.1.2.40 source-address="{f.src}" source-port="{f.sport}" destination-address="{f.dst}" '
              f'destination-port="{f.dport}" connection-tag="0" service-name="{service}" protocol-id="{proto}" '
              f'policy-name="{policy}" source-zone-name="{szone}" destination-zone-name="{dzone}" '
              f'session-id-32="{f.session}" username="N/A" roles="N/A" packet-incoming-interface="ge-0/0/0.0"]')
        return f"<14>1 {_iso_time(ts)} {host} RT_FLOW - {event} {sd} {text}"
    return f"<14>{_bsd_time(ts)} {host} RT_FLOW: {event}: {text}"


def _paloalto(variant: int, f: Flow, ts: float, host: str) -> str:
    when = _slash_time(ts)
    szone = "trust" if f.src_inside else "untrust"
    dzone = "trust" if f.dst_inside else "untrust"
    if f.action == "allow":
        subtype, action, rule, reason = "end", "allow", f.rule, "tcp-fin" if f.proto == "tcp" else "aged-out"
    else:
        subtype, rule, reason = "drop", "interzone-default", "policy-deny"
        action = ("deny", "drop", "reset-both")[f.session % 3] if f.proto == "tcp" else "deny"
    app = {"tcp": "ssl", "udp": "snmp", "icmp": "ping"}[f.proto] if f.action == "allow" else "not-applicable"
    fields_ = ["1", when, "012801000001", "TRAFFIC", subtype, "2561", when, f.src, f.dst, "0.0.0.0", "0.0.0.0",
               rule, "", "", app, "vsys1", szone, dzone, "ethernet1/1", "ethernet1/2", "jukimon-fwd", when,
               str(f.session), "1", str(f.sport), str(f.dport), "0", "0", "0x400019", f.proto, action, "1200", "400",
               "800", "8", when, "1", "any", "", str(7_000_000_000 + f.session), "0x0", "127.0.0.0-127.255.255.255",
               "127.0.0.0-127.255.255.255", "", "4", "4", reason, "0", "0", "0", "0", "", host, "from-policy"]
    return f"<14>{_bsd_time(ts)} {host} " + ",".join(fields_)


def _netfilter(variant: int, f: Flow, ts: float, host: str) -> str:
    if variant:
        prefix = "[UFW ALLOW]" if f.action == "allow" else "[UFW BLOCK]"
    else:
        prefix = "JKM-ACCEPT" if f.action == "allow" else "JKM-DROP"
    in_if = "eth1" if f.src_inside else "eth0"
    out_if = ("eth1" if f.dst_inside else "eth0") if f.action == "allow" else ""
    uptime = (ts % 8_000_000) + 0.123456
    proto = f.proto.upper()
    tail = "TYPE=8 CODE=0 ID=1 SEQ=1" if f.proto == "icmp" else f"SPT={f.sport} DPT={f.dport}"
    pri = 6 if f.action == "allow" else 4
    return (f"<{pri}>{_bsd_time(ts)} {host} kernel: [{uptime:.6f}] {prefix} IN={in_if} OUT={out_if} "
            f"SRC={f.src} DST={f.dst} LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID={f.session % 65536} DF PROTO={proto} {tail}")


_FORMATTERS = {"cisco_asa": _asa, "fortigate": _fortigate, "juniper_srx": _srx, "paloalto": _paloalto,
               "netfilter": _netfilter}
