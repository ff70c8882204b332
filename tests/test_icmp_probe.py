"""ICMP echo against a test host in a network namespace of our own."""

from __future__ import annotations

import pytest

from collectors.icmp_probe import check_icmp
from tests import netns

pytestmark = pytest.mark.skipif(not netns.available(), reason="network namespaces need root")


@pytest.fixture
def host():
    created = netns.NamespaceHost.create()
    yield created
    created.destroy()


async def test_answering_host_has_rtt_and_no_loss(host: netns.NamespaceHost) -> None:
    check = await check_icmp(host.address, count=3, interval=0.05, timeout=1.0)
    assert check.received == 3 and check.loss == 0.0
    assert check.rtt_avg_ms is not None and 0 < check.rtt_avg_ms < 50


async def test_cut_link_is_total_loss(host: netns.NamespaceHost) -> None:
    host.link(up=False)
    check = await check_icmp(host.address, count=2, interval=0.05, timeout=0.3)
    assert check.received == 0 and check.loss == 1.0 and check.rtt_avg_ms is None
    host.link(up=True)
    again = await check_icmp(host.address, count=2, interval=0.05, timeout=1.0)
    assert again.received == 2
