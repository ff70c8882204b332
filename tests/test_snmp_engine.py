"""SNMP codec and request handling, as pure functions (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.snmp import ber, usm
from simnet.snmp.engine import AgentConfig, AgentIdentity, RequestRejected, handle_request

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)


class StaticView:
    """A fixed MIB for unit tests of the engine's logic."""

    def __init__(self, values: dict[tuple[int, ...], bytes]):
        self.values = dict(sorted(values.items()))
        self.oids = list(self.values)

    def get(self, oid):
        return self.values.get(oid)

    def next(self, oid):
        for candidate in self.oids:
            if candidate > oid:
                return candidate, self.values[candidate]
        return None

    def has_object(self, oid):
        return any(o[:-1] == oid[:-1] for o in self.oids)


VIEW = StaticView({SYS_UPTIME: ber.timeticks(4242), SYS_NAME: ber.encode_octets("muni-01-001-cs1"),
                   **{(1, 3, 6, 1, 2, 1, 2, 2, 1, 10, i): ber.counter32(i * 1000) for i in range(1, 6)}})
CONFIG = AgentConfig(frozenset({b"public"}), usm.KeyCache({}))
IDENTITY = AgentIdentity(b"\x80\x00\x1f\x88\x04test")


def v2c_request(pdu_tag: int, oids: list[tuple[int, ...]], community: bytes = b"public",
                request_id: int = 77, f2: int = 0, f3: int = 0) -> bytes:
    varbinds = b"".join(ber.sequence(ber.encode_oid(o), ber.NULL_VALUE) for o in oids)
    pdu = ber.tlv(pdu_tag, ber.encode_integer(request_id) + ber.encode_integer(f2) + ber.encode_integer(f3)
                  + ber.tlv(ber.SEQUENCE, varbinds))
    return ber.sequence(ber.encode_integer(1), ber.encode_octets(community), pdu)


def decode_response(data: bytes) -> tuple[int, int, list[tuple[tuple[int, ...], int, bytes]]]:
    start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE)
    _, pos = ber.read_integer(data, start, stop)
    _, _, pos = ber.read_octets(data, pos, stop)
    p_start, p_stop = ber.expect(data, pos, stop, ber.RESPONSE)
    request_id, p = ber.read_integer(data, p_start, p_stop)
    error_status, p = ber.read_integer(data, p, p_stop)
    _, p = ber.read_integer(data, p, p_stop)
    vb_start, vb_stop = ber.expect(data, p, p_stop, ber.SEQUENCE)
    varbinds = [(oid, tag, data[s:e]) for oid, tag, s, e in ber.iter_varbinds(data, vb_start, vb_stop)]
    return request_id, error_status, varbinds


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_round_trip(value: int) -> None:
    encoded = ber.encode_integer(value)
    assert ber.read_integer(encoded, 0, len(encoded))[0] == value


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_counter64_round_trip(value: int) -> None:
    encoded = ber.counter64(value)
    tag, start, stop = ber.read_tlv(encoded, 0, len(encoded))
    assert tag == ber.COUNTER64 and ber.decode_unsigned(encoded, start, stop) == value


def test_counter32_wraps_modulo_2_32() -> None:
    encoded = ber.counter32(2**32 + 5)
    _, start, stop = ber.read_tlv(encoded, 0, len(encoded))
    assert ber.decode_unsigned(encoded, start, stop) == 5


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=20))
def test_oid_round_trip(tail: list[int]) -> None:
    oid = (1, 3, *tail)
    encoded = ber.encode_oid(oid)
    start, stop = ber.expect(encoded, 0, len(encoded), ber.OBJECT_IDENTIFIER)
    assert ber.decode_oid(encoded, start, stop) == oid


def test_get_returns_values_and_echoes_request_id() -> None:
    reply = handle_request(v2c_request(ber.GET_REQUEST, [SYS_NAME, SYS_UPTIME]), VIEW, IDENTITY, CONFIG)
    request_id, status, varbinds = decode_response(reply)
    assert (request_id, status) == (77, 0)
    assert varbinds[0][0] == SYS_NAME and varbinds[0][2] == b"muni-01-001-cs1"
    assert varbinds[1][1] == ber.TIMETICKS


def test_get_unknown_instance_and_object() -> None:
    reply = handle_request(v2c_request(ber.GET_REQUEST, [(1, 3, 6, 1, 2, 1, 1, 3, 1), (1, 3, 6, 1, 9, 9, 0)]),
                           VIEW, IDENTITY, CONFIG)
    _, _, varbinds = decode_response(reply)
    assert [tag for _, tag, _ in varbinds] == [ber.NO_SUCH_INSTANCE, ber.NO_SUCH_OBJECT]


def test_getnext_walks_in_order_and_ends_with_end_of_mib_view() -> None:
    oid, seen = (1, 3), []
    for _ in range(20):
        _, _, varbinds = decode_response(handle_request(v2c_request(ber.GET_NEXT_REQUEST, [oid]), VIEW,
                                                        IDENTITY, CONFIG))
        oid, tag, _ = varbinds[0]
        if tag == ber.END_OF_MIB_VIEW:
            break
        seen.append(oid)
    assert seen == VIEW.oids


def test_getbulk_honours_non_repeaters_and_max_repetitions() -> None:
    request = v2c_request(ber.GET_BULK_REQUEST, [SYS_NAME, (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)], f2=1, f3=3)
    _, status, varbinds = decode_response(handle_request(request, VIEW, IDENTITY, CONFIG))
    assert status == 0
    assert varbinds[0][0] == (1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1)  # non-repeater: next after sysName
    assert [v[0][-1] for v in varbinds[1:]] == [1, 2, 3]


def test_set_is_refused_as_not_writable() -> None:
    _, status, _ = decode_response(handle_request(v2c_request(ber.SET_REQUEST, [SYS_NAME]), VIEW, IDENTITY, CONFIG))
    assert status == 17


def test_wrong_community_is_rejected() -> None:
    with pytest.raises(RequestRejected):
        handle_request(v2c_request(ber.GET_REQUEST, [SYS_NAME], community=b"private"), VIEW, IDENTITY, CONFIG)


def test_every_truncation_of_a_request_is_a_clean_error() -> None:
    request = v2c_request(ber.GET_REQUEST, [SYS_NAME, SYS_UPTIME])
    for cut in range(len(request)):
        with pytest.raises((ber.BerError, RequestRejected)):
            handle_request(request[:cut], VIEW, IDENTITY, CONFIG)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_unexpected_errors(data: bytes) -> None:
    try:
        handle_request(data, VIEW, IDENTITY, CONFIG)
    except (ber.BerError, RequestRejected):
        pass


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_mutated_requests_never_escape_as_unexpected_errors(position: int, byte: int) -> None:
    request = bytearray(v2c_request(ber.GET_BULK_REQUEST, [SYS_NAME, SYS_UPTIME], f2=1, f3=5))
    request[position % len(request)] = byte
    try:
        handle_request(bytes(request), VIEW, IDENTITY, CONFIG)
    except (ber.BerError, RequestRejected):
        pass


def test_password_to_key_matches_rfc3414_vector() -> None:
    # RFC 3414 A.3.2: SHA, password "maplesyrup", engine 000000000000000000000002
    master = usm.password_to_key("maplesyrup", "sha1")
    assert master.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    localized = usm.localize_key(master, bytes.fromhex("000000000000000000000002"), "sha1")
    assert localized.hex() == "6695febc9288e36282235fc7151f128497b38f3f"
