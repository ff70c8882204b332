"""One collector process of many: polls its share of the inventory and publishes on the bus.

The share follows the live members (``membership.py``) by rendezvous hashing (``assignment.py``).
When the members change, every process recomputes its own share from the same inputs: devices
taken over from a collector that is gone are polled at once (it may have missed their last due
time), devices handed over by a live collector stay in phase on the shared time grid, and devices
that moved away are dropped. Results go out through ``MqttPublisher`` on the usual topic tree —
the monitor cannot tell one collector from many — and to the TSDB when one is given.

The membership runs on its own thread and event loop. A poller loaded to the point of lagging
by seconds must not look dead to the others (they would take its devices, the moves would load
everybody more, and members would flap), nor read its own backlog of heartbeats too late and
expire live members. What the heartbeat vouches for is checked apart: a watchdog tick on the
polling loop; when it is older than the expiry time the heartbeat is withheld, and the others take over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

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
T = TypeVar("T")


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
        # Only an explicit collectors.source_address: the inventory's network monitor (the main job's default)
        # is one host's address, and a collector process may run on any host.
        source = config.collectors.source_address or None
        client = SnmpUdpClient(credentials, timeout=config.collectors.timeout, retries=config.collectors.retries,
                               source=source)
        self.service = CollectorService(inventory, config.collectors, client, [self._publish],
                                        snmp_port=options.snmp_port, tls_port=options.tls_port, source=source)
        self.service.set_assigned(())  # nothing until we know who else is there
        self.members: Members = {}
        shard = config.collectors.shard
        self._stall_limit = shard.expire_after * shard.heartbeat
        self._tick_at = time.monotonic()  # the polling loop's last sign of life, read by the membership thread
        self._watchdog: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._membership_loop: BackgroundLoop | None = None
        self.membership = Membership(host, port, options.member_id, self._from_membership(self._on_members),
                                     self._from_membership(self._on_recheck), shard, options.prefix, tls=tls,
                                     healthy=lambda: time.monotonic() - self._tick_at < self._stall_limit)

    async def start(self) -> None:
        await self.publisher.start()
        if self.options.tsdb_url:
            influx = self.config.outputs.influx or InfluxSettings()  # org, bucket and token as configured
            self.tsdb = TsdbWriter(self.options.tsdb_url, token=influx.token, org=influx.org, bucket=influx.bucket,
                                   spool_dir=self.options.spool_dir / "tsdb")
            await self.tsdb.start()
        self._loop = asyncio.get_running_loop()
        self._tick_at = time.monotonic()
        self.service.start()
        self._watchdog = self._loop.create_task(self._tick(), name="shard-watchdog")
        self._membership_loop = BackgroundLoop("membership")
        await self._membership_loop.run(self.membership.start())

    async def stop(self) -> None:
        if self._membership_loop is not None:  # first: the others take over while we finish
            await self._membership_loop.run(self.membership.stop())
            self._membership_loop.close()
            self._membership_loop = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        await self.service.stop()
        if self.tsdb is not None:
            await self.tsdb.stop()
        await self.publisher.stop()

    def _publish(self, records: list[Sample | Event]) -> None:
        """To the bus (the topic tree the monitor reads) and, when configured, the TSDB."""
        self.publisher.publish_records(records)
        if self.tsdb is not None:
            self.tsdb.write_many(r for r in records if isinstance(r, Sample))

    async def _tick(self) -> None:
        while True:
            self._tick_at = time.monotonic()
            await asyncio.sleep(0.5)

    def _from_membership(self, callback: Callable[[T], None]) -> Callable[[T], None]:
        """The membership thread's callbacks run on the polling loop, where the service lives, in order."""
        def call(value: T) -> None:
            assert self._loop is not None  # set in start(), before the membership can call
            self._loop.call_soon_threadsafe(callback, value)
        return call

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


class BackgroundLoop:
    """An event loop on its own daemon thread, for work that must not wait behind a busy main loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine there and wait for it from the calling loop."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    def close(self, timeout: float = 5.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()
