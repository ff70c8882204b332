"""SNMP notifications the simulated devices send: linkDown/linkUp, coldStart/warmStart.

Built with the agents' own codec and sent from the device's own agent socket,
so a trap receiver sees the true source address, as with real equipment.
"""

from __future__ import annotations

import itertools

from monitor.snmp import ber, usm
from monitor.snmp.ber import Oid
from monitor.snmp.message import encode_pdu, encode_v2c, scoped_pdu, varbind
from simnet.snmp.engine import AgentIdentity, encode_from_agent

SYS_UPTIME_0: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
COLD_START: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 1)
WARM_START: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 2)
LINK_DOWN: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
AUTHENTICATION_FAILURE: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 5)
IF_INDEX: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
IF_ADMIN_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
IF_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)

_ids = itertools.count(1)


def notification_varbinds(uptime_ticks: int, trap_oid: Oid, extra: list[tuple[Oid, bytes]]) -> bytes:
    """sysUpTime.0 and snmpTrapOID.0 first, as RFC 3416 requires, then the trap's own objects."""
    parts = [varbind(SYS_UPTIME_0, ber.timeticks(uptime_ticks)),
             varbind(SNMP_TRAP_OID_0, ber.encode_oid(trap_oid))]
    parts += [varbind(oid, value) for oid, value in extra]
    return b"".join(parts)


def link_objects(if_index: int, admin_up: bool, oper_up: bool) -> list[tuple[Oid, bytes]]:
    return [(IF_INDEX + (if_index,), ber.encode_integer(if_index)),
            (IF_ADMIN_STATUS + (if_index,), ber.encode_integer(1 if admin_up else 2)),
            (IF_OPER_STATUS + (if_index,), ber.encode_integer(1 if oper_up else 2))]


def _trap_pdu(varbinds: bytes) -> bytes:
    return encode_pdu(ber.SNMPV2_TRAP, next(_ids) & 0x7FFFFFFF, 0, 0, varbinds)


def encode_trap_v2c(community: bytes, varbinds: bytes) -> bytes:
    return encode_v2c(community, _trap_pdu(varbinds))


def encode_trap_v3(identity: AgentIdentity, keys: usm.LocalizedKeys, varbinds: bytes) -> bytes:
    """authPriv SNMPv3 trap; the sending agent is the authoritative engine (RFC 3414 §1.5.1)."""
    scoped = scoped_pdu(identity.engine_id, b"", _trap_pdu(varbinds))
    return encode_from_agent(identity, next(_ids) & 0x7FFFFFFF, keys.user.name.encode(), scoped, keys, encrypt=True)
