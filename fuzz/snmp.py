"""SNMP: traps into the collectors' trap listener, and replies as the polling client decodes them.

Messages are built with the project's own encoder (monitor/snmp) from random
varbinds of every value type, then mutated. v3 messages are mutated *before*
they are authenticated and encrypted with the fleet's keys, so that the digest
matches and the cases reach the decryption and the PDU decoding behind it.
"""

from __future__ import annotations

from functools import lru_cache

from hypothesis import strategies as st

from collectors.snmp.client import Credentials
from collectors.snmp.traps import KNOWN_TRAPS, SNMP_TRAP_OID_0, SYS_UPTIME_0, TrapListener
from fuzz.core import Accepted, Outcome, Rejected, Target
from fuzz.mutate import mutated_bytes, seeds_and_mutants
from fuzz.targets_common import small_inventory
from monitor.envelope import Event
from monitor.snmp import ber, message, usm
from monitor.snmp.ber import BerError

CREDENTIALS = Credentials("3", community="public", user="jukimon", auth_key="jukimon-auth-key",
                          priv_key="jukimon-priv-key")
SENDER = ("127.0.0.1", 50162)

_oids = st.one_of(
    st.sampled_from([*KNOWN_TRAPS, SYS_UPTIME_0, SNMP_TRAP_OID_0, (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 3)]),
    st.lists(st.integers(0, 2**32), max_size=18).map(lambda arcs: (1, 3, *arcs)),
    st.tuples(st.integers(0, 1), st.integers(0, 39)), st.tuples(st.just(2), st.integers(0, 2**40)))
_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(ber.encode_integer),
    st.binary(max_size=64).map(ber.encode_octets),
    _oids.map(ber.encode_oid),
    st.integers(0, 2**32 - 1).map(ber.counter32),
    st.integers(0, 2**64 - 1).map(ber.counter64),
    st.integers(0, 2**32 - 1).map(ber.gauge32),
    st.integers(0, 2**32 - 1).map(ber.timeticks),
    st.binary(min_size=4, max_size=4).map(lambda b: ber.tlv(ber.IP_ADDRESS, b)),
    st.sampled_from([ber.NULL_VALUE, b"\x80\x00", b"\x81\x00", b"\x82\x00", b"\x44\x01\x00", b"\x9f\x00"]),
)


@st.composite
def _pdu(draw: st.DrawFn, tags: tuple[int, ...]) -> bytes:
    """A PDU with sysUpTime and snmpTrapOID first (as a trap has them), then random varbinds."""
    varbinds = [message.varbind(SYS_UPTIME_0, ber.timeticks(draw(st.integers(0, 2**32 - 1)))),
                message.varbind(SNMP_TRAP_OID_0, ber.encode_oid(draw(_oids)))]
    varbinds += [message.varbind(draw(_oids), draw(_values)) for _ in range(draw(st.integers(0, 6)))]
    if draw(st.booleans()):
        draw(st.randoms()).shuffle(varbinds)
    return message.encode_pdu(draw(st.sampled_from(tags)), draw(st.integers(-(2**31), 2**31 - 1)),
                              draw(st.integers(0, 5)), draw(st.integers(0, 5)), b"".join(varbinds))


def _v2c(tags: tuple[int, ...]) -> st.SearchStrategy[bytes]:
    community = st.sampled_from([b"public", b"public", b"private", b""])
    valid = st.builds(message.encode_v2c, community, _pdu(tags))
    return mutated_bytes(valid)


@lru_cache(maxsize=1)
def _key_cache() -> usm.KeyCache:
    auth = usm.AUTH_PROTOCOLS[CREDENTIALS.auth_protocol]
    user = usm.UsmUser(CREDENTIALS.user, auth, CREDENTIALS.auth_key, CREDENTIALS.priv_key)
    return usm.KeyCache({CREDENTIALS.user.encode(): user})


class _AnyClockKeys:
    """The fleet's keys for the encoder, encrypting even with boots/time outside 32 bits (the IV takes
    them modulo 2**32), so that a receiver meets such values in an authenticated, encrypted message."""

    def __init__(self, keys: usm.LocalizedKeys):
        self.user, self.digest, self._keys = keys.user, keys.digest, keys

    def encrypt(self, plaintext: bytes, boots: int, time: int, salt: bytes) -> bytes:
        return self._keys.encrypt(plaintext, boots % 2**32, time % 2**32, salt)


@st.composite
def _v3(draw: st.DrawFn, tags: tuple[int, ...]) -> bytes:
    engine_id = draw(st.sampled_from([b"\x80\x00\x1f\x88\x04jukimon-rt1", b"\x80\x00\x1f\x88\x04jukimon-cs1"]))
    scoped = draw(mutated_bytes(st.just(message.scoped_pdu(engine_id, b"", draw(_pdu(tags)))), 3))
    keys = _key_cache().keys_for(engine_id, CREDENTIALS.user.encode())
    assert keys is not None
    boots = draw(st.sampled_from([0, 1, 7, 2**31 - 1, -1, 2**31, 2**40]))
    engine_time = draw(st.sampled_from([0, 1, 1_000_000, 2**31 - 1, -5, 2**33]))
    data = message.encode_v3(msg_id=draw(st.integers(0, 2**31 - 1)), engine_id=engine_id, boots=boots,
                             engine_time=engine_time, user=draw(st.sampled_from([b"jukimon", b"jukimon", b"other"])),
                             scoped=scoped, keys=_AnyClockKeys(keys) if draw(st.integers(0, 9)) else None,  # type: ignore[arg-type]
                             encrypt=draw(st.integers(0, 4)) > 0, reportable=draw(st.booleans()))
    if draw(st.integers(0, 3)) == 0:  # now and then break the authenticated message itself
        data = draw(mutated_bytes(st.just(data), 2))
    return data


# --- traps -----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def trap_listener() -> tuple[TrapListener, list[Event]]:
    """One listener for the whole run (its rejection counters are the verdict), never started:
    datagrams are handed to it as the event loop would."""
    events: list[Event] = []
    return TrapListener(events.append, small_inventory(), CREDENTIALS), events


def feed_trap(data: bytes) -> Outcome:
    listener, events = trap_listener()
    before = listener.stats.copy()
    listener.datagram_received(data, SENDER)
    changed = listener.stats - before
    events.clear()
    if changed == {"accepted": 1}:
        return Accepted()
    if len(changed) == 1:
        return Rejected(next(iter(changed)))
    raise AssertionError(f"trap listener counted {dict(changed)} for one datagram")


_TRAP_TAGS = (ber.SNMPV2_TRAP, ber.SNMPV2_TRAP, ber.INFORM_REQUEST, ber.RESPONSE)


# --- replies ---------------------------------------------------------------------------------

def decode_reply(data: bytes) -> Outcome:
    """A datagram as the poller reads an answer: the message, the PDU, then every value."""
    try:
        start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE)
        version, p = ber.read_integer(data, start, stop)
        if version == 3:
            header = message.parse_v3_header(data, p, stop)
            keys = _key_cache().keys_for(header.engine_id, header.user)
            if keys is None:
                return Rejected("unknown_user")
            if not header.flags & message.FLAG_AUTH or not message.digest_matches(data, header, keys):
                return Rejected("unauthenticated")
            pdu = message.open_scoped_pdu(data, header, keys)[1]
        else:
            _, _, p = ber.read_octets(data, p, stop)
            pdu = message.parse_pdu(data, p, stop)
        pdu.decoded()
    except BerError:
        return Rejected("malformed")
    except message.UnsupportedSecurityModel:
        return Rejected("security_model")
    return Accepted()


_REPLY_TAGS = (ber.RESPONSE, ber.REPORT)


def targets() -> list[Target]:
    return [
        Target("snmp_trap_v2c", "snmp", st.one_of(_v2c(_TRAP_TAGS), seeds_and_mutants("snmp_trap")), feed_trap,
               "SNMPv2c trap datagrams into TrapListener.datagram_received", corpus="snmp_trap"),
        Target("snmp_trap_v3", "snmp", _v3(_TRAP_TAGS), feed_trap,
               "SNMPv3 authPriv traps (validly signed, mutated inside) into TrapListener.datagram_received",
               corpus="snmp_trap"),
        Target("snmp_reply", "snmp", st.one_of(_v2c(_REPLY_TAGS), _v3(_REPLY_TAGS)), decode_reply,
               "GET/GETBULK answers, v2c and v3, decoded as the poller does (monitor/snmp ber, message, usm)"),
    ]



