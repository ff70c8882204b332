"""The IDS flow table: orientation, counters, TCP close and reuse, idle and active timeouts."""

from __future__ import annotations

import dataclasses

import pytest

from ids.traffic.config import IdsConfig
from ids.traffic.decode import decode
from ids.traffic.flows import FlowTable, FlowTimeouts
from ids.traffic.pcapio import LINKTYPE_ETHERNET
from monitor.configerror import ConfigError
from simnet.traffic_gen import tcp, udp

C, S = "127.11.1.4", "127.1.1.11"


def _feed(table: FlowTable, ts: float, frame: bytes):
    return table.update(decode(ts, LINKTYPE_ETHERNET, frame))


def test_both_directions_count_into_one_flow_oriented_by_the_client():
    table = FlowTable()
    flow, new, forward = _feed(table, 1.0, tcp(C, 40000, S, 443, 0x02))
    assert new and forward
    same, new, forward = _feed(table, 1.1, tcp(S, 443, C, 40000, 0x12))
    assert same is flow and not new and not forward
    _feed(table, 1.2, tcp(C, 40000, S, 443, 0x18, payload=b"x" * 100))
    assert flow.key == (6, C, 40000, S, 443)
    assert (flow.pkts_ts, flow.pkts_tc) == (2, 1)
    assert flow.bytes_ts == 40 + 140 and flow.bytes_tc == 40
    assert flow.flags_ts == 0x1A and flow.flags_tc == 0x12
    assert (flow.start, flow.last) == (1.0, 1.2)


def test_syn_after_close_starts_a_new_flow_and_ends_the_old():
    ended = []
    table = FlowTable(on_end=ended.append)
    first, _, _ = _feed(table, 1.0, tcp(C, 40000, S, 443, 0x02))
    _feed(table, 1.1, tcp(C, 40000, S, 443, 0x14))
    second, new, _ = _feed(table, 2.0, tcp(C, 40000, S, 443, 0x02))
    assert new and second is not first and second.id == first.id + 1
    assert ended == [first]


def test_idle_timeout_per_protocol_and_active_timeout():
    ended = []
    table = FlowTable(FlowTimeouts(tcp_idle=100, udp_idle=10, active=1000, sweep_every=1), on_end=ended.append)
    udp_flow, _, _ = _feed(table, 0.0, udp(C, 5000, S, 514, b"x"))
    tcp_flow, _, _ = _feed(table, 0.0, tcp(C, 40000, S, 443, 0x02))
    _feed(table, 50.0, tcp(C, 40000, S, 443, 0x10))
    assert ended == [udp_flow]  # UDP idle for 50 s > 10; TCP still alive
    for t in range(100, 1100, 50):
        _feed(table, float(t), tcp(C, 40000, S, 443, 0x10))
    assert tcp_flow in ended  # cut by the active timeout although never idle
    table.flush()
    assert not table.flows and table.ended == len(ended)


def test_config_check_names_the_bad_key():
    IdsConfig().check("ids")
    with pytest.raises(ConfigError, match=r"ids\.scan_ports"):
        IdsConfig(scan_ports=0).check("ids")
    with pytest.raises(ConfigError, match=r"ids\.flows\.tcp_idle"):
        IdsConfig(flows=dataclasses.replace(FlowTimeouts(), tcp_idle=-1)).check("ids")
    with pytest.raises(ConfigError, match=r"ids\.beacon_jitter"):
        IdsConfig(beacon_jitter=1.5).check("ids")
