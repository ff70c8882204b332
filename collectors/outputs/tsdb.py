"""TSDB writer: Samples → InfluxDB line protocol → InfluxDB v2 write API, with an on-disk spool.

Any server that speaks ``POST /api/v2/write`` works (InfluxDB 2.x/3.x, VictoriaMetrics). Design:

* ``write(sample)`` is synchronous and cheap: it converts the sample to one line-protocol line at
  once (so a bad sample is rejected, with its reason logged, at the call site) and appends it to
  an in-memory buffer. It never blocks on the network.
* One background task cuts the buffer into batches (``batch_size`` lines or ``flush_interval``
  seconds, whichever first) and POSTs them with influxdb-client's SYNCHRONOUS ``WriteApi`` run in
  a worker thread (``asyncio.to_thread``) — the event loop never waits for HTTP.
* A failed POST (connection refused, timeout, 5xx, 429, auth) puts the batch in the ``Spool``
  (fsynced segment files). While the spool is non-empty every new batch goes behind it, and the
  task retries the *oldest* segment with exponential backoff; when the server answers again the
  spool drains oldest first before new data is sent directly again. So the server receives
  batches in production order. A non-empty spool left by a previous (killed) process is resumed.
* A batch the server rejects as malformed (400, 413, 422) is not retried: retrying would block
  the spool forever and InfluxDB has already stored its valid lines. It is logged and counted as
  ``lost``.

Timestamps are written with nanosecond precision (the line-protocol default), quantised to the
microsecond so float noise of ``ts * 1e9`` does not leak into stored times. (VictoriaMetrics keeps
milliseconds.) Re-sending a batch after a timeout that the server actually stored is harmless in
InfluxDB (same series + time overwrites); on VictoriaMetrics run with ``-dedup.minScrapeInterval=1ms``
to get the same idempotence.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable

from collectors.outputs.worker import finish_or_cancel
from monitor.envelope import Sample
from monitor.logs import fields as log_fields

from .spool import Spool
from monitor.waiting import wait_event

log = logging.getLogger("collectors.outputs.tsdb")

# --- line protocol --------------------------------------------------------------------------------

_MEASUREMENT_SPECIAL = re.compile(r"[,\s\\]")
_KEY_SPECIAL = re.compile(r"[,=\s\\]")
_ESC_MEASUREMENT = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_ESC_KEY = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_ESC_STRING = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_STRING = 64 * 1024  # InfluxDB's limit for a string field value
_RESERVED_KEYS = frozenset({"time"})


class RejectedSample(ValueError):
    """A sample that cannot become a line-protocol point (the message is the reason)."""


def _escape_measurement(name: str) -> str:
    return name.translate(_ESC_MEASUREMENT) if _MEASUREMENT_SPECIAL.search(name) else name


def _escape_key(text: str) -> str:
    """Tag key, tag value or field key: escape ``,`` ``=`` space and ``\\`` (and the other whitespace)."""
    return text.translate(_ESC_KEY) if _KEY_SPECIAL.search(text) else text


def _field_value(value: object) -> str:
    """One field value in line-protocol syntax; raise RejectedSample with the reason if it has none."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise RejectedSample("integer outside int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RejectedSample("non-finite float")
        return repr(value)
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise RejectedSample("string field longer than 64 KiB")
        return '"' + value.translate(_ESC_STRING) + '"'
    raise RejectedSample(f"field of type {type(value).__name__}")


_PREFIX_CACHE: dict[tuple[Any, ...], str] = {}  # (measurement, origin, extra tags) -> escaped "m,k=v,..."
_FIELD_KEY_CACHE: dict[str, str] = {}
_CACHE_MAX = 200_000  # about one entry per series; cleared (not LRU) when exceeded


def _series_prefix(sample: Sample) -> str:
    """``measurement,tag=value,...`` escaped, tags sorted (InfluxDB's preferred order).

    Cached per series: the ~8,800 devices repeat the same tag sets every poll, and escaping and
    sorting them is most of the cost of a line (cache: ~320k lines/s; without: ~90k).
    """
    try:
        key: tuple[Any, ...] | None = (sample.measurement, sample.origin, tuple(sample.tags.items()))
        cached = _PREFIX_CACHE.get(key)  # type: ignore[arg-type]
    except TypeError:  # unhashable tag values: build without the cache
        key, cached = None, None
    if cached is not None:
        return cached
    measurement = sample.measurement
    if not isinstance(measurement, str) or not measurement:
        raise RejectedSample("empty measurement")
    if measurement[0] == "#":
        raise RejectedSample("measurement starts with '#' (a comment line)")
    parts = [_escape_measurement(measurement)]
    for tag, value in sorted((str(k), v if isinstance(v, str) else str(v)) for k, v in sample.all_tags().items()
                             if v is not None):
        if tag and value and tag not in _RESERVED_KEYS:  # line protocol cannot carry empty keys or values
            parts.append(f"{_escape_key(tag)}={_escape_key(value)}")
    prefix = ",".join(parts)
    if key is not None:
        if len(_PREFIX_CACHE) >= _CACHE_MAX:
            _PREFIX_CACHE.clear()
        _PREFIX_CACHE[key] = prefix
    return prefix


def _field_key(key: object) -> str | None:
    if not isinstance(key, str) or not key or key in _RESERVED_KEYS:
        return None
    escaped = _escape_key(key)
    if len(_FIELD_KEY_CACHE) < 10_000:
        _FIELD_KEY_CACHE[key] = escaped
    return escaped


def to_line(sample: Sample, problems: list[str] | None = None) -> str:
    """One line-protocol line for ``sample`` (no newline).

    Empty tag keys/values are omitted (line protocol cannot carry them). Bad fields (NaN/inf,
    empty key, out-of-range int, unsupported type) are dropped and their reasons appended to
    ``problems``; if no field is left, or the measurement or the timestamp is unusable, the whole
    sample is rejected with ``RejectedSample``.
    """
    ts = sample.ts
    if type(ts) is not float and (not isinstance(ts, (int, float)) or isinstance(ts, bool)):
        raise RejectedSample("timestamp is not a number")
    if ts - ts != 0:  # NaN or ±inf (inf - inf is NaN)
        raise RejectedSample("timestamp is not finite")
    prefix = _series_prefix(sample)
    field_parts = []
    field_keys = _FIELD_KEY_CACHE
    for key, value in sample.fields.items():
        escaped = field_keys.get(key) if type(key) is str else None
        if escaped is None:
            escaped = _field_key(key)
        if escaped is None:
            if problems is not None:
                problems.append(f"unusable field key {key!r}")
            continue
        kind = type(value)
        if kind is float and value - value == 0:  # the common case: a finite float
            field_parts.append(f"{escaped}={value!r}")
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            field_parts.append(f"{escaped}={value}i")
        else:
            try:
                field_parts.append(f"{escaped}={_field_value(value)}")
            except RejectedSample as exc:
                if problems is not None:
                    problems.append(f"field {key}: {exc}")
    if not field_parts:
        raise RejectedSample("no usable field" if sample.fields else "no fields")
    return f"{prefix} {','.join(field_parts)} {round(ts * 1_000_000) * 1000}"


# --- writer ---------------------------------------------------------------------------------------

_PERMANENT_STATUS = frozenset({400, 413, 422})  # the batch itself is bad: retrying cannot help
_OK, _DROP, _RETRY = "ok", "drop", "retry"


class _PermanentError(Exception):
    pass


class TsdbWriter:
    """Asynchronous, spooling writer of Samples to an InfluxDB-v2-compatible server."""

    def __init__(self, url: str, *, token: str = "", org: str = "jukimon", bucket: str = "jukimon",
                 spool_dir: Path, batch_size: int = 5000, flush_interval: float = 1.0,
                 max_pending: int | None = None, spool_max_bytes: int = 1 << 30, timeout: float = 10.0,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self._token = token
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending or 20 * batch_size
        self.timeout = timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.spool = Spool(spool_dir, spool_max_bytes)
        self._pending: list[str] = []
        self._pending_since = 0.0
        self._in_flight = 0  # points taken from the buffer and not yet written, spooled or dropped
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._write_api: Any = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._failing = False
        self._spool_full = False
        self._buffer_full = False
        self._backoff = backoff_initial
        self._retry_at = 0.0
        self._logged_reasons: set[tuple[str, str]] = set()
        self._counts = dict(written=0, spooled=0, backfilled=0, failures=0, rejected=0, dropped_fields=0,
                            dropped=0, lost=0, batches=0)
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open (and resume) the spool and start the background sender."""
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        await asyncio.to_thread(self.spool.open)
        if len(self.spool):
            log.info("resuming tsdb spool", extra=log_fields(spool=str(self.spool.directory),
                                                             segments=len(self.spool), bytes=self.spool.bytes))
        self._client = InfluxDBClient(url=self.url, token=self._token, org=self.org,
                                      timeout=int(self.timeout * 1000), retries=False)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="tsdb-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Send (or spool) everything buffered, try to drain the spool within ``timeout``, close.

        Whatever the server did not take stays in the spool for the next start.
        """
        if self._task is None:
            return
        self._stopping = True
        self._stop_deadline = time.monotonic() + timeout
        self._wake.set()
        await finish_or_cancel(self._task, timeout + self.timeout + 5)
        self._task = None
        while self._pending:  # the task died before spooling them: keep them anyway
            batch, count = self._take(self.batch_size)
            await self._spool(batch, count)
            self._in_flight -= count
        if self._client is not None:
            self._write_api.close()
            self._client.close()
            self._client = None
        self.spool.close()

    # -- producer side -------------------------------------------------------------------------

    def write(self, sample: Sample) -> bool:
        """Queue one sample; False if it was rejected or dropped (the reason is logged once per kind)."""
        problems: list[str] = []
        try:
            line = to_line(sample, problems)
        except RejectedSample as exc:
            self._counts["rejected"] += 1
            self._log_bad(sample, str(exc), rejected=True)
            return False
        except Exception as exc:  # a malformed Sample (wrong types) must not kill the producer
            self._counts["rejected"] += 1
            self._log_bad(sample, f"malformed sample: {exc!r}", rejected=True)
            return False
        for problem in problems:
            self._counts["dropped_fields"] += 1
            self._log_bad(sample, problem, rejected=False)
        if len(self._pending) >= self.max_pending:
            self._counts["dropped"] += 1
            if not self._buffer_full:
                self._buffer_full = True
                log.error("tsdb buffer full, dropping samples", extra=log_fields(url=self.url,
                                                                                 max_pending=self.max_pending))
            return False
        if self._buffer_full and len(self._pending) < self.max_pending // 2:
            self._buffer_full = False
            log.info("tsdb buffer accepting again", extra=log_fields(url=self.url))
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(line)
        if len(self._pending) >= self.batch_size:
            self._wake.set()
        return True

    def write_many(self, samples: Iterable[Sample]) -> int:
        return sum(self.write(s) for s in samples)

    def stats(self) -> dict[str, Any]:
        return {**self._counts, "pending": len(self._pending), "in_flight": self._in_flight,
                "spool_segments": len(self.spool),
                "spool_bytes": self.spool.bytes, "failing": self._failing, "last_error": self.last_error}

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is buffered or spooled (for tests and orderly hand-over)."""
        deadline = time.monotonic() + timeout
        while self._pending or self._in_flight or len(self.spool):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.02)
        return True

    def _log_bad(self, sample: Sample, reason: str, *, rejected: bool) -> None:
        key = (str(getattr(sample, "measurement", "?")), reason)
        if key in self._logged_reasons or len(self._logged_reasons) >= 1000:
            return
        self._logged_reasons.add(key)
        origin = getattr(sample, "origin", None)
        log.warning("tsdb sample rejected" if rejected else "tsdb field dropped",
                    extra=log_fields(measurement=key[0], device=getattr(origin, "device", None), reason=reason))

    # -- sender --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wait_for_work()
            now = time.monotonic()
            flush_due = self._stopping or (self._pending and now - self._pending_since >= self.flush_interval)
            while self._pending and (flush_due or len(self._pending) >= self.batch_size):
                batch, count = self._take(self.batch_size)
                # Direct only when nothing older waits; while failing, one probe per backoff period.
                try:
                    if len(self.spool) == 0 and (not self._failing or time.monotonic() >= self._retry_at):
                        if await self._send(batch, count, backfill=False) != _RETRY:
                            continue
                    await self._spool(batch, count)
                finally:
                    self._in_flight -= count
            if len(self.spool) and (self._stopping or time.monotonic() >= self._retry_at):
                await self._backfill_one()
            if self._stopping:
                done = not self._pending and (len(self.spool) == 0 or self._failing
                                              or time.monotonic() >= self._stop_deadline)
                if done:
                    return

    async def _wait_for_work(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        timeout = self.flush_interval
        if self._pending:
            timeout = max(0.0, self._pending_since + self.flush_interval - now)
        if len(self.spool):
            timeout = min(timeout, max(0.0, self._retry_at - now))
        if timeout > 0:
            await wait_event(self._wake, timeout)
        self._wake.clear()

    def _take(self, n: int) -> tuple[bytes, int]:
        lines = self._pending[:n]
        del self._pending[:n]
        self._in_flight += len(lines)
        if self._pending:
            self._pending_since = time.monotonic()
        return "\n".join(lines).encode(), len(lines)

    async def _spool(self, batch: bytes, count: int) -> None:
        """Put a batch behind the spool (fsync in a worker thread); count and log a refusal when full."""
        if await asyncio.to_thread(self.spool.append, batch) is None:
            self._refused(count)
        else:
            self._accepted(count)

    def _refused(self, count: int) -> None:
        self._counts["dropped"] += count
        if not self._spool_full:
            self._spool_full = True
            log.error("tsdb spool full, refusing batches", extra=log_fields(
                spool=str(self.spool.directory), bytes=self.spool.bytes, max_bytes=self.spool.max_bytes))

    def _accepted(self, count: int) -> None:
        self._counts["spooled"] += count
        if self._spool_full:
            self._spool_full = False
            log.info("tsdb spool accepting again", extra=log_fields(spool=str(self.spool.directory)))

    async def _backfill_one(self) -> None:
        item = await asyncio.to_thread(self.spool.oldest)
        if item is None:
            return
        segment, data = item
        count = data.count(b"\n") + 1
        if await self._send(data, count, backfill=True) == _RETRY:
            return
        await asyncio.to_thread(self.spool.remove, segment)
        if len(self.spool) == 0:
            log.info("tsdb spool drained", extra=log_fields(url=self.url, backfilled=self._counts["backfilled"]))

    async def _send(self, data: bytes, count: int, *, backfill: bool) -> str:
        """POST one batch: ``_OK``, ``_DROP`` (server rejected it as malformed) or ``_RETRY`` (keep it)."""
        try:
            await asyncio.to_thread(self._post, data)
        except _PermanentError as exc:
            self._counts["lost"] += count
            log.error("tsdb rejected a batch, not retrying", extra=log_fields(url=self.url, points=count,
                                                                               error=str(exc)[:500]))
            return _DROP
        except asyncio.CancelledError:
            if not backfill:  # forced stop mid-POST: keep the batch (at-least-once), blocking is fine here
                if self.spool.append(data) is None:
                    self._refused(count)
                else:
                    self._accepted(count)
            raise
        except Exception as exc:
            self._counts["failures"] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.backoff_max)
            if not self._failing:
                self._failing = True
                log.warning("tsdb write failing, spooling", extra=log_fields(url=self.url, error=self.last_error))
            return _RETRY
        self._counts["batches"] += 1
        self._counts["backfilled" if backfill else "written"] += count
        self._backoff = self.backoff_initial
        if self._failing:
            self._failing = False
            log.info("tsdb write recovered", extra=log_fields(url=self.url, spooled_segments=len(self.spool)))
        return _OK

    def _post(self, data: bytes) -> None:
        """(worker thread) One synchronous POST /api/v2/write."""
        from influxdb_client.client.write_api import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(bucket=self.bucket, org=self.org, record=data, write_precision=WritePrecision.NS)
        except ApiException as exc:
            if exc.status in _PERMANENT_STATUS:
                raise _PermanentError(f"HTTP {exc.status}: {exc.body!r}") from None
            raise
