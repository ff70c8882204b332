"""The simulated devices talking to each other: the seeds' flows on real sockets over loopback.

Each exchange is a TCP connection from the sending device's own 127.x address to the
receiving device's TLS service, mutually authenticated with the simulation CA (both
ends present their device certificate), carrying opaque application data:

* change notification (変更通知): CS → its prefecture unit, then the unit → a national
  database server;
* CS ↔ CS notice (転出・転入通知) between any two towns;
* agency immediate query (即時提供): agency server → provision subsystem;
* bulk provision (一括提供): provision subsystem → agency, in the batch window (19–22 JST);
* file delivery (ファイル配信): business subsystem → CS and prefecture units, 06:00–06:30 JST.

Online kinds follow ``simnet.traffic.utilisation`` on the simulation's clock; arrivals are
Poisson, thinned to the load of the moment, and capped in real time (``max_per_second``) so
a fast clock does not turn the simulation into a load generator. The rate is per CS
(``per_cs_hour``), so a small inventory is as busy per host as the national one (whose
2,960 CSs make about 3 exchanges a second at full load) and no pair of hosts looks like
a brute force. A device that is down,
isolated or cut off neither sends nor is sent to (the sender would not get through).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import ssl
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from monitor.configerror import ConfigError
from monitor.inventory import Device, Inventory, Role, Subsystem
from monitor.japan_time import JST
from monitor.logs import fields
from simnet.clock import SimClock
from simnet.traffic import utilisation

if TYPE_CHECKING:
    from simnet.network import SimNetwork

log = logging.getLogger("simnet.chatter")


@dataclass(frozen=True)
class ChatterConfig:
    per_cs_hour: float = 3.6  # exchanges per CS and simulated hour at full load (nationally ≈ 3 a second)
    max_per_second: float = 4.0  # real-time ceiling, whatever the clock speed (≈ 0.07 of a core)
    max_open: int = 16  # exchanges in flight; more are skipped (counted), not queued
    timeout: float = 5.0  # real seconds for connect, handshake, banner and data
    bulk_bytes: int = 400_000  # one bulk provision or file delivery (the real ones are larger: kept light)
    seed: int | None = None

    def check(self, key: str) -> None:
        for name in ("per_cs_hour", "max_per_second", "max_open", "timeout", "bulk_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{key}.{name}: must be positive")


@dataclass(frozen=True, slots=True)
class Exchange:
    kind: str
    client: Device
    server: Device
    size: int  # application bytes the client sends
    then: "Exchange | None" = None  # the next hop once this one is through (a forwarded notification)


def _hour_jst(t: float) -> float:
    local = dt.datetime.fromtimestamp(t, JST)
    return local.hour + local.minute / 60


def _window(t: float, begin: float, end: float) -> float:
    return 1.0 if begin <= _hour_jst(t) < end else 0.0


class Roster:
    """Who talks to whom, from the inventory: the devices of each kind of exchange."""

    def __init__(self, inventory: Inventory, present: Callable[[Device], bool] = lambda d: True):
        devices = [d for d in inventory.devices.values() if d.address and d.role.serves_tls and present(d)]
        self.cs = [d for d in devices if d.role is Role.CS]
        self.units = {d.prefecture: d for d in devices if d.role is Role.PREFECTURE_UNIT}
        self.agencies = [d for d in devices if d.role is Role.AGENCY_SERVER]
        national = [d for d in devices if d.role is Role.NATIONAL_SERVER]
        self.database = [d for d in national if d.subsystem is Subsystem.DATABASE]
        self.provision = [d for d in national if d.subsystem is Subsystem.PROVISION]
        self.business = [d for d in national if d.subsystem is Subsystem.BUSINESS]
        self.notifying = [d for d in self.cs if d.prefecture in self.units]
        self.delivered = [*self.cs, *self.units.values()]  # file delivery targets

    def weights(self, t: float) -> dict[str, float]:
        """Relative share of each kind at simulated time ``t`` (0 where a side is missing)."""
        online = utilisation(t, 0.0, 1.0)
        return {
            "change_notification": 0.6 * online if self.notifying else 0.0,
            "cs_notice": 0.1 * online if len(self.cs) > 1 else 0.0,
            "immediate_query": 0.2 * online if self.agencies and self.provision else 0.0,
            "bulk_provision": 0.3 * _window(t, 19.0, 22.0) if self.agencies and self.provision else 0.0,
            "file_delivery": 0.5 * _window(t, 6.0, 6.5) if self.business and self.cs else 0.0,
        }

    def pick(self, kind: str, rng: random.Random, bulk: int) -> Exchange:
        if kind == "change_notification":
            cs = rng.choice(self.notifying)
            unit = self.units[cs.prefecture]
            size = rng.randrange(600, 4000)
            forward = Exchange("notification_forward", unit, rng.choice(self.database), size) if self.database else None
            return Exchange(kind, cs, unit, size, forward)
        if kind == "cs_notice":
            a, b = rng.sample(self.cs, 2)
            return Exchange(kind, a, b, rng.randrange(500, 2000))
        if kind == "immediate_query":
            return Exchange(kind, rng.choice(self.agencies), rng.choice(self.provision), 400)
        if kind == "bulk_provision":
            return Exchange(kind, rng.choice(self.provision), rng.choice(self.agencies), bulk)
        return Exchange(kind, rng.choice(self.business), rng.choice(self.delivered), bulk // 2)


PEAK_WEIGHT = 1.0  # the largest sum of Roster.weights (online 0.9 or batch + online, capped)


class Chatter:
    """``await start()``; ``await stop()``. ``stats`` counts exchanges by kind and outcome."""

    def __init__(self, network: SimNetwork, config: ChatterConfig | None = None):
        self.network = network
        self.config = config or ChatterConfig()
        self.clock: SimClock = network.clock
        self.roster = Roster(network.inventory, lambda d: d.id in network.devices)
        self.rng = random.Random(self.config.seed)
        self.per_second = self.config.per_cs_hour * len(self.roster.cs) / 3600  # simulated seconds, full load
        self.stats: Counter[str] = Counter()
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._open: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.network.tls_pool is None:
            raise RuntimeError("chatter needs the simulation's TLS services (not --no-tls)")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="simnet-chatter")
        log.info("device chatter started", extra=fields(per_second=round(self.per_second, 3),
                                                        max_per_second=self.config.max_per_second))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._open) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._open.clear()
        log.info("device chatter stopped", extra=fields(**self.stats))

    def rate(self, t: float) -> float:
        """Exchanges per real second at simulated time ``t``."""
        weight = min(PEAK_WEIGHT, sum(self.roster.weights(t).values()))
        return min(self.config.max_per_second, self.per_second * self.clock.speed * weight)

    async def _run(self) -> None:
        cfg, rng = self.config, self.rng
        ceiling = min(cfg.max_per_second, self.per_second * self.clock.speed * PEAK_WEIGHT)
        if ceiling <= 0:
            return  # no CS: nobody to talk
        while True:  # thinning: candidates at the ceiling rate, each kept with the share of the moment's rate
            await asyncio.sleep(rng.expovariate(ceiling))
            t = self.clock.now()
            if rng.random() * ceiling >= self.rate(t):
                continue
            weights = self.roster.weights(t)
            kind = rng.choices(list(weights), weights=list(weights.values()))[0]
            if len(self._open) >= cfg.max_open:
                self.stats["skipped_busy"] += 1
                continue
            task = asyncio.get_running_loop().create_task(self._carry(self.roster.pick(kind, rng, cfg.bulk_bytes)))
            self._open.add(task)
            task.add_done_callback(self._open.discard)

    async def _carry(self, exchange: Exchange | None) -> None:
        while exchange is not None:
            if not await self._exchange(exchange):
                return
            exchange = exchange.then

    async def _exchange(self, ex: Exchange) -> bool:
        devices = self.network.devices
        if not (devices[ex.client.id].answering and devices[ex.server.id].answering):
            self.stats["unreachable"] += 1
            return False
        try:
            await asyncio.wait_for(self._talk(ex), self.config.timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            self.stats[f"{ex.kind}_failed"] += 1
            log.debug("exchange failed", extra=fields(kind=ex.kind, client=ex.client.id, server=ex.server.id,
                                                      error=type(exc).__name__))
            return False
        self.stats[ex.kind] += 1
        self.stats["bytes"] += ex.size
        return True

    async def _talk(self, ex: Exchange) -> None:
        """Connect from the client's address, handshake both ways, read the banner, send, close."""
        context = await self._context(ex.client)
        pool = self.network.tls_pool
        assert pool is not None
        reader, writer = await asyncio.open_connection(ex.server.address, pool.port, ssl=context,
                                                       local_addr=(ex.client.address, 0))
        try:
            await reader.readuntil(b"\r\n")  # the service's READY line: it has accepted us
            writer.write(self.rng.randbytes(ex.size))
            await writer.drain()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass  # the server may drop first: the data is already out

    async def _context(self, device: Device) -> ssl.SSLContext:
        ctx = self._contexts.get(device.id)
        if ctx is None:
            pool = self.network.tls_pool
            assert pool is not None
            ctx = await pool.client_context_for(device)
            self._contexts[device.id] = ctx
            while len(self._contexts) > 256:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(device.id)
        return ctx

