"""Short-term, in-memory history of every numeric series, for the console's graphs.

The console graphs the last hours to a day of a device (traffic per line, CPU, storage, poll
RTT) the moment an operator opens it, for any of ~8,800 devices, without a TSDB round trip, and
keeps working when the TSDB is down. So: fixed-size ring buffers per (device, series key), sized
from the retention at creation, so memory is bounded and known in advance.

Why two tiers: one ring of 24 h at the 10 s poll resolution is 8,640 slots; as (ts, value)
doubles that is 138 KB a series, 14.6 GB for 8,800 devices × 12 series — too much for a console.
So the newest ``raw_seconds`` (1 h) keep poll resolution and the full retention is kept as
``coarse_resolution`` (1 min) means: 1 h × 10 s + 24 h × 1 min as float32 = 7,200 B a series,
≈ 0.8 GB at full scale (``bytes_per_series()``; tests/test_history.py measures the real figure).
``keep_max=True`` adds a per-minute maximum (+5,760 B a series) so that spikes older than the
raw hour stay visible.

Storage is slot-addressed: a sample at time ``ts`` lands in slot ``ts // resolution`` (mod the
capacity), so timestamps are implied (returned as slot starts), gaps are NaN, a later sample in
the same slot replaces the earlier one, and ``since`` is an index computation. Values are
float32 (~7 significant digits: graph-grade, not accounting-grade — the TSDB has the exact values).
A sample older than the coarse bucket being filled only updates the raw tier.
"""

from __future__ import annotations

import math
from array import array
from typing import Collection, Iterable, Mapping, Sequence

from monitor.envelope import Sample

NAN = float("nan")
Point = tuple[float, float]


class _Ring:
    """A slot-addressed ring of float32 values: slot ``n`` holds time ``[n*res, (n+1)*res)``."""

    __slots__ = ("values", "head")

    def __init__(self, capacity: int) -> None:
        self.values = array("f", [NAN]) * capacity
        self.head = -1  # absolute slot number of the newest slot written; -1: empty

    def put(self, slot: int, value: float) -> bool:
        values, capacity = self.values, len(self.values)
        if slot > self.head:
            if self.head >= 0:  # blank the slots skipped over (a gap), at most a whole turn
                for n in range(self.head + 1, min(slot, self.head + capacity + 1)):
                    values[n % capacity] = NAN
            self.head = slot
        elif slot <= self.head - capacity:
            return False  # older than the ring
        values[slot % capacity] = value
        return True

    def points(self, first_slot: int, last_slot: int, resolution: float) -> list[Point]:
        """Non-empty slots in ``[first_slot, last_slot]`` (clipped to what the ring holds), oldest first."""
        capacity = len(self.values)
        first_slot = max(first_slot, self.head - capacity + 1)
        last_slot = min(last_slot, self.head)
        values = self.values
        out = []
        for n in range(first_slot, last_slot + 1):
            value = values[n % capacity]
            if value == value:  # not NaN
                out.append((n * resolution, value))
        return out


class _Series:
    __slots__ = ("raw", "coarse", "coarse_max", "bucket", "bucket_sum", "bucket_count", "bucket_max", "last")

    def __init__(self, raw_capacity: int, coarse_capacity: int, keep_max: bool) -> None:
        self.raw = _Ring(raw_capacity)
        self.coarse = _Ring(coarse_capacity) if coarse_capacity else None
        self.coarse_max = _Ring(coarse_capacity) if coarse_capacity and keep_max else None
        self.bucket = -1  # the coarse bucket being accumulated
        self.bucket_sum = 0.0
        self.bucket_count = 0
        self.bucket_max = -math.inf
        self.last: Point | None = None


class History:
    """Bounded in-memory history: per (device, series key) a raw ring and a coarse ring."""

    def __init__(self, retention_seconds: float = 86_400, resolution: float = 10.0, *,
                 raw_seconds: float = 3_600, coarse_resolution: float = 60.0, keep_max: bool = False,
                 key_tags: Sequence[str] = ("if_index", "storage", "probe", "index"),
                 max_series: int = 250_000, fields: Mapping[str, Collection[str]] | None = None) -> None:
        if resolution <= 0 or coarse_resolution < resolution or retention_seconds < resolution:
            raise ValueError("need 0 < resolution <= coarse_resolution and resolution <= retention")
        self.retention = float(retention_seconds)
        self.resolution = float(resolution)
        self.coarse_resolution = float(coarse_resolution)
        raw_seconds = min(raw_seconds, retention_seconds)
        self.raw_capacity = max(1, math.ceil(raw_seconds / resolution))
        # A second tier only if the raw ring does not already cover the retention.
        self.coarse_capacity = (math.ceil(retention_seconds / coarse_resolution)
                                if raw_seconds < retention_seconds else 0)
        self.keep_max = keep_max
        self.key_tags = tuple(key_tags)
        self.max_series = max_series
        # measurement → the fields worth keeping (what the console graphs); None keeps every numeric field
        self.fields = {m: frozenset(f) for m, f in fields.items()} if fields is not None else None
        self._devices: dict[str, dict[str, _Series]] = {}
        self._count = 0
        self.refused = 0  # values not stored because max_series was reached

    # -- writing -------------------------------------------------------------------------------

    def series_key(self, sample: Sample, field: str) -> str:
        """``measurement.field`` plus ``:<id>`` from the identity tags present — e.g. ``interface.in_bps:1``.

        Only identity tags (``key_tags``) go into the key; descriptive ones (``if_name``, ``if_alias``)
        may change and must not split a series.
        """
        suffix = "/".join(sample.tags[t] for t in self.key_tags if t in sample.tags)
        return f"{sample.measurement}.{field}:{suffix}" if suffix else f"{sample.measurement}.{field}"

    def add(self, sample: Sample) -> int:
        """Store the numeric fields of a sample (bools as 0/1; strings, NaN and inf skipped); return how many."""
        device = sample.origin.device
        ts = sample.ts
        if not device or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            return 0
        stored = 0
        wanted = self.fields.get(sample.measurement, frozenset()) if self.fields is not None else None
        for name, value in sample.fields.items():
            if wanted is not None and name not in wanted:
                continue
            if isinstance(value, bool):
                value = 1.0 if value else 0.0
            elif not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            if self._put(device, self.series_key(sample, name), ts, float(value)):
                stored += 1
        return stored

    def add_many(self, samples: Iterable[Sample]) -> int:
        return sum(self.add(s) for s in samples)

    def _put(self, device: str, key: str, ts: float, value: float) -> bool:
        per_device = self._devices.get(device)
        if per_device is None:
            per_device = self._devices[device] = {}
        series = per_device.get(key)
        if series is None:
            if self._count >= self.max_series:
                self.refused += 1
                return False
            series = per_device[key] = _Series(self.raw_capacity, self.coarse_capacity, self.keep_max)
            self._count += 1
        if not series.raw.put(int(ts // self.resolution), value) and series.coarse is None:
            return False
        if series.last is None or ts >= series.last[0]:
            series.last = (ts, value)
        if series.coarse is not None:
            bucket = int(ts // self.coarse_resolution)
            if bucket > series.bucket:
                series.bucket, series.bucket_sum, series.bucket_count, series.bucket_max = bucket, 0.0, 0, -math.inf
            if bucket == series.bucket:  # an older bucket is closed: its mean stays as it was
                series.bucket_sum += value
                series.bucket_count += 1
                series.coarse.put(bucket, series.bucket_sum / series.bucket_count)
                if series.coarse_max is not None and value > series.bucket_max:
                    series.bucket_max = value
                    series.coarse_max.put(bucket, value)
        return True

    # -- reading -------------------------------------------------------------------------------

    def devices(self) -> list[str]:
        return sorted(self._devices)

    def keys(self, device: str) -> list[str]:
        return sorted(self._devices.get(device, ()))

    def latest(self, device: str, key: str) -> Point | None:
        """The newest (ts, value) as received (exact ts, not the slot start)."""
        series = self._devices.get(device, {}).get(key)
        return series.last if series else None

    def series(self, device: str, key: str, since: float | None = None, until: float | None = None, *,
               agg: str = "mean") -> list[Point]:
        """(slot start, value) oldest first: coarse buckets before the raw window, raw slots inside it.

        ``agg="max"`` reads the per-bucket maxima for the coarse part (needs ``keep_max=True``).
        """
        series = self._devices.get(device, {}).get(key)
        if series is None or series.raw.head < 0:
            return []
        coarse = series.coarse_max if agg == "max" else series.coarse
        if agg == "max" and coarse is None and series.coarse is not None:
            raise ValueError("agg='max' needs History(keep_max=True)")
        res, raw = self.resolution, series.raw
        raw_first = raw.head - len(raw.values) + 1  # oldest slot the raw ring can hold
        lo_slot = raw_first if since is None else max(raw_first, int(since // res))
        hi_slot = raw.head if until is None else int(until // res)
        out: list[Point] = []
        if coarse is not None:
            # Coarse buckets up to the first bucket boundary inside the raw window, raw slots after it:
            # contiguous coverage, each instant from exactly one tier.
            cres = self.coarse_resolution
            boundary = math.ceil(raw_first * res / cres) * cres
            lo = coarse.head - len(coarse.values) + 1 if since is None else int(since // cres)
            hi = int(boundary // cres) - 1 if until is None else min(int(boundary // cres) - 1, int(until // cres))
            out.extend(coarse.points(lo, hi, cres))
            lo_slot = max(lo_slot, math.ceil(boundary / res))
        out.extend(raw.points(lo_slot, hi_slot, res))
        return out

    def forget(self, device: str) -> None:
        """Drop a device's series (removed from the inventory)."""
        self._count -= len(self._devices.pop(device, {}))

    def prune(self, now: float) -> int:
        """Drop series with nothing newer than the retention; return how many (memory follows the fleet)."""
        dropped = 0
        for device in list(self._devices):
            per_device = self._devices[device]
            for key in [k for k, s in per_device.items() if s.last is None or s.last[0] < now - self.retention]:
                del per_device[key]
                dropped += 1
            if not per_device:
                del self._devices[device]
        self._count -= dropped
        return dropped

    # -- size ----------------------------------------------------------------------------------

    def bytes_per_series(self) -> int:
        """Value storage of one series (float32 slots); Python object overhead comes on top (~0.4 KB)."""
        return 4 * (self.raw_capacity + self.coarse_capacity * (2 if self.keep_max else 1))

    def __len__(self) -> int:
        return self._count

    def stats(self) -> dict[str, int | float]:
        return {"devices": len(self._devices), "series": self._count, "refused": self.refused,
                "bytes_per_series": self.bytes_per_series(), "value_bytes": self._count * self.bytes_per_series()}


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most ``max_points`` points for a graph, keeping each time bucket's minimum and maximum.

    Min/max rather than averaging: an operator looks at a day of traffic to find the spike or the
    drop to zero, and an average flattens exactly those. Buckets are equal *time* spans, so gaps
    stay gaps; in each, the min and max points are emitted in time order (one if they coincide).
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    if len(points) <= max_points:
        return list(points)
    buckets = max_points // 2
    t0, t1 = points[0][0], points[-1][0]
    width = (t1 - t0) / buckets or 1.0
    out: list[Point] = []
    current = -1
    low = high = points[0]
    for point in points:
        index = min(int((point[0] - t0) / width), buckets - 1)
        if index != current:
            if current >= 0:
                out.extend(_ordered(low, high))
            current, low, high = index, point, point
        else:
            if point[1] < low[1]:
                low = point
            if point[1] > high[1]:
                high = point
    out.extend(_ordered(low, high))
    return out


def _ordered(a: Point, b: Point) -> list[Point]:
    if a is b:
        return [a]
    return [a, b] if a[0] <= b[0] else [b, a]
