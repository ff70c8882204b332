"""SNMP trap receiver: v2c traps and v3 (USM authPriv) traps from the devices, as envelope events.

For a v3 trap the sending agent is the authoritative engine, so keys are
localised to *its* engine ID, learnt from the message itself (as snmptrapd does
with one createUser per engine; here every engine of the fleet shares the user).
A trap that fails authentication is counted and dropped, never believed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable

from collectors.snmp.client import Credentials
from collectors.udp_socket import DrainingUdpSocket
from monitor.envelope import Event, EventType, Origin, Severity, origin_of
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.snmp import ber, message, usm
from monitor.snmp.ber import BerError, Oid

log = logging.getLogger("collectors.traps")

SYS_UPTIME_0: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
TRAP_RCVBUF = 4 << 20  # a storm of linkDown traps from a whole prefecture at once
_IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
KNOWN_TRAPS: dict[Oid, tuple[str, Severity]] = {
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 1): ("coldStart", Severity.WARNING),
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 2): ("warmStart", Severity.WARNING),
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 3): ("linkDown", Severity.ERROR),
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 4): ("linkUp", Severity.NOTICE),
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 5): ("authenticationFailure", Severity.WARNING),
}


class TrapRejected(Exception):
    """A datagram that is not a trap we accept; ``reason`` is a short code for the counters."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _oid_text(oid: Oid) -> str:
    return ".".join(map(str, oid))


def _jsonable(value: message.Value) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, tuple):
        return _oid_text(value)
    if isinstance(value, message.Missing):
        return value.value
    return value


class TrapDecoder:
    def __init__(self, credentials: Credentials):
        self.community = credentials.community.encode()
        self.keys: usm.KeyCache | None = None
        if credentials.user:
            auth = usm.AUTH_PROTOCOLS[credentials.auth_protocol]
            user = usm.UsmUser(credentials.user, auth, credentials.auth_key, credentials.priv_key or None)
            self.keys = usm.KeyCache({credentials.user.encode(): user})

    def decode(self, data: bytes) -> message.Pdu:
        try:
            start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE)
            version, p = ber.read_integer(data, start, stop)
            if version == 1:
                community, _, p = ber.read_octets(data, p, stop)
                if community != self.community:
                    raise TrapRejected("community")
                pdu = message.parse_pdu(data, p, stop)
            elif version == 3:
                pdu = self._decode_v3(data, p, stop)
            else:
                raise TrapRejected("version")
        except (BerError, message.UnsupportedSecurityModel):
            raise TrapRejected("malformed") from None
        if pdu.tag not in (ber.SNMPV2_TRAP, ber.INFORM_REQUEST):
            raise TrapRejected("not_a_trap")
        return pdu

    def _decode_v3(self, data: bytes, pos: int, stop: int) -> message.Pdu:
        header = message.parse_v3_header(data, pos, stop)
        if self.keys is None or not header.flags & message.FLAG_AUTH:
            raise TrapRejected("unauthenticated")
        keys = self.keys.keys_for(header.engine_id, header.user)
        if keys is None:
            raise TrapRejected("unknown_user")
        if not message.digest_matches(data, header, keys):
            raise TrapRejected("wrong_digest")
        return message.open_scoped_pdu(data, header, keys)[1]


def trap_event(pdu: message.Pdu, sender: str, origin: Origin, received: float) -> Event:
    try:
        varbinds = pdu.decoded()  # the values are decoded only now: a bad one rejects the trap
    except BerError:
        raise TrapRejected("malformed") from None
    values = dict(varbinds)
    trap_oid = values.get(SNMP_TRAP_OID_0)
    if not isinstance(trap_oid, tuple):
        raise TrapRejected("no_trap_oid")
    name, severity = KNOWN_TRAPS.get(trap_oid, (_oid_text(trap_oid), Severity.NOTICE))
    if_index = next((v for oid, v in varbinds if oid[:-1] == _IF_INDEX and isinstance(v, int)), None)
    detail = f" ifIndex {if_index}" if if_index is not None else ""
    uptime = values.get(SYS_UPTIME_0)
    return Event(EventType.TRAP, received, "collector.traps", origin, severity,
                 f"{origin.device or sender} {name}{detail}", src_ip=sender,
                 body={"trap": name, "trap_oid": _oid_text(trap_oid), "if_index": if_index,
                       "uptime_s": uptime / 100 if isinstance(uptime, int) else None,
                       "varbinds": {_oid_text(oid): _jsonable(v) for oid, v in varbinds
                                    if oid not in (SYS_UPTIME_0, SNMP_TRAP_OID_0)}})


class TrapListener:
    """Listens on UDP; every accepted trap becomes an Event passed to ``on_event``, stamped with its arrival."""

    def __init__(self, on_event: Callable[[Event], None], inventory: Inventory, credentials: Credentials):
        self.on_event = on_event
        self.inventory = inventory
        self.decoder = TrapDecoder(credentials)
        self.stats: Counter[str] = Counter()
        self._warned: set[tuple[str, str]] = set()
        self._socket: DrainingUdpSocket | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        # Emptied in batches (a trap storm must not wait one turn of a busy event loop per trap)
        self._socket = DrainingUdpSocket.bind(host, port, self.datagram_received, receive_buffer=TRAP_RCVBUF,
                                              on_error=lambda _exc: self.stats.update(["socket_error"]))
        return self._socket.local_address

    async def stop(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def datagram_received(self, data: bytes, addr: tuple[str, int], arrived: float | None = None) -> None:
        """One datagram; ``arrived``: when the kernel had it (default now)."""
        sender = addr[0]
        try:
            origin = origin_of(self.inventory, self.inventory.device_by_address.get(sender))
            event = trap_event(self.decoder.decode(data), sender, origin, arrived if arrived is not None else time.time())
        except TrapRejected as rejected:
            self.stats[rejected.reason] += 1
            if (sender, rejected.reason) not in self._warned and len(self._warned) < 10_000:
                self._warned.add((sender, rejected.reason))  # once per sender and reason, not per packet
                log.warning("trap rejected", extra=fields(sender=sender, reason=rejected.reason))
            return
        self.stats["accepted"] += 1
        self.on_event(event)
