"""One collector process of many: polls its share of the inventory and publishes on the bus.

The share follows the live members (``membership.py``) by rendezvous hashing (``assignment.py``).
When the members change, every process recomputes its own share from the same inputs: devices
taken over from a collector that is gone are polled at once (it may have missed their last due
time), devices handed over by a live collector stay in phase on the shared time grid, and devices
that moved away are dropped. Results go out through ``MqttPublisher`` on the usual topic tree —
the monitor cannot tell one collector from many — and to the TSDB when one is given.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from collectors.outputs import MqttPublisher, TsdbWriter
from collectors.service import CollectorService
from collectors.shard.assignment import owner, share
from collectors.shard.membership import Members, Membership
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from monitor.config import Config, InfluxSettings
from monitor.envelope import Event, Sample
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.mqtt_tls import client_context

log = logging.getLogger("collectors.shard")


def default_member_id() -> str:
    """Unique per process on a host, readable in logs: ``<host>-<pid>``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class ShardOptions:
    broker: tuple[str, int]
    member_id: str
    prefix: str = "jukimon"
    snmp_port: int | None = None
    tls_port: int | None = None
    tsdb_url: str | None = None
    spool_dir: Path = Path("state/spool")


class ShardedCollector:
    """A CollectorService polling this member's share, a publisher, a TSDB writer, and the membership."""

    def __init__(self, inventory: Inventory, config: Config, options: ShardOptions) -> None:
        self.inventory, self.config, self.options = inventory, config, options
        self.device_ids = [d.id for d in inventory.polled_devices() if d.address is not None]
        host, port = options.broker
        tls = client_context(config.outputs.mqtt.tls if config.outputs.mqtt else None)  # this collector's certificate
        self.publisher = MqttPublisher(host, port, client_id=f"jukimon-collector-{options.member_id}-data",
                                       topic_prefix=options.prefix, tls=tls)
        self.tsdb: TsdbWriter | None = None
        snmp = config.collectors.snmp
        credentials = Credentials(snmp.version, community=snmp.community, user=snmp.user,
                                  auth_protocol=snmp.auth_protocol, auth_key=snmp.auth_key, priv_key=snmp.priv_key)
        client = SnmpUdpClient(credentials, timeout=config.collectors.timeout, retries=config.collectors.retries)
        self.service = CollectorService(inventory, config.collectors, client, [self._publish],
                                        snmp_port=options.snmp_port, tls_port=options.tls_port)
        self.service.set_assigned(())  # nothing until we know who else is there
        self.members: Members = {}
        self.membership = Membership(host, port, options.member_id, self._on_members, self._on_recheck,
                                     config.collectors.shard, options.prefix, tls=tls)

    async def start(self) -> None:
        await self.publisher.start()
        if self.options.tsdb_url:
            influx = self.config.outputs.influx or InfluxSettings()  # org, bucket and token as configured
            self.tsdb = TsdbWriter(self.options.tsdb_url, token=influx.token, org=influx.org, bucket=influx.bucket,
                                   spool_dir=self.options.spool_dir / "tsdb")
            await self.tsdb.start()
        self.service.start()
        await self.membership.start()

    async def stop(self) -> None:
        await self.membership.stop()  # first: the others take over while we finish
        await self.service.stop()
        if self.tsdb is not None:
            await self.tsdb.stop()
        await self.publisher.stop()

    def _publish(self, records: list[Sample | Event]) -> None:
        """A poll's samples as one message, its events one by one: the topic tree the monitor reads."""
        self.publisher.publish_poll([r for r in records if isinstance(r, Sample)])
        for event in (r for r in records if isinstance(r, Event)):
            self.publisher.publish(event)
        if self.tsdb is not None:
            self.tsdb.write_many(r for r in records if isinstance(r, Sample))

    def _on_members(self, members: Members) -> None:
        before, self.members = self.members, members
        mine = share(self.options.member_id, self.device_ids, members)
        had = self.service.assigned or frozenset()
        orphans = [d for d in mine - had if before and owner(d, before) not in members]
        self.service.set_assigned(mine, poll_now=orphans)
        log.info("share changed", extra=fields(member=self.options.member_id, collectors=len(members),
                                               devices=len(mine), gained=len(mine - had), lost=len(had - mine),
                                               taken_over=len(orphans)))

    def _on_recheck(self, device_id: str) -> None:
        if self.service.assigned is not None and device_id in self.service.assigned:
            self.service.recheck(device_id)


async def run_until_signal(collector: ShardedCollector) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly (goodbye on the bus, queued records sent)."""
    from simnet.service import wait_for_signal

    await collector.start()
    try:
        await wait_for_signal()
    finally:
        await collector.stop()
