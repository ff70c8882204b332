"""EVE JSON from an external Suricata as one more source of traffic alerts.

Suricata writes one JSON event per line (``eve.json``); its ``alert`` events are
signature matches and become Jukimon alerts of type ``signature`` (an alert that already
names a ``jukimon_type`` — e.g. Jukimon's own EVE output — keeps it), with the rule named
in ``jukimon_rule`` and ``jukimon_source: suricata`` in the metadata; everything Suricata
wrote stays. Other event types (flow, dns, stats, …) are skipped; lines that are not an
alert with a timestamp, addresses and a signature are counted as malformed, never raised.

``EveFollower`` follows a file as ``tail -F`` does (new complete lines; from the start again
when the file is truncated or replaced), which is how the main job takes Suricata's
``eve.json`` and the inbox that ``jukimon ids eve-ingest`` appends to.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ids.traffic.eve import AlertType
from monitor.logs import fields

log = logging.getLogger(__name__)

Alert = dict[str, Any]
SOURCE = "suricata"
_TYPES = frozenset(t.value for t in AlertType)


def normalize(record: Any) -> Alert | None:
    """The Jukimon alert for one EVE record, or None if it is not an alert; ValueError if it is a broken one."""
    if not isinstance(record, dict) or record.get("event_type") != "alert":
        return None
    alert = record.get("alert")
    if not isinstance(alert, dict) or not isinstance(alert.get("signature"), str):
        raise ValueError("alert without a signature")
    for key in ("timestamp", "src_ip", "dest_ip"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"alert without {key}")
    try:
        dt.datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise ValueError("timestamp not in EVE form") from None
    metadata = dict(alert.get("metadata") or {})
    given = metadata.get("jukimon_type")
    kind = given[0] if isinstance(given, list) and given and given[0] in _TYPES else AlertType.SIGNATURE.value
    metadata.setdefault("jukimon_rule", [f"Suricata rule sid {alert.get('signature_id', '?')} "
                                         f"rev {alert.get('rev', '?')}: {alert['signature']}"])
    metadata.update(jukimon_type=[kind], jukimon_source=[SOURCE])
    severity = alert.get("severity") if isinstance(alert.get("severity"), int) else 3
    return {**record, "alert": {**alert, "severity": severity, "metadata": metadata},
            "evidence": record.get("evidence") or {"payload_printable": record.get("payload_printable", "")}}


class EveReader:
    """Lines of EVE JSON → Jukimon alerts, with counts of what was taken and what not."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def alerts(self, lines: Iterable[str]) -> Iterator[Alert]:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                alert = normalize(json.loads(line))
            except ValueError as exc:  # json.JSONDecodeError is one
                if not self.counts["malformed"]:
                    log.warning("EVE line skipped", extra=fields(reason=str(exc)[:200]))
                self.counts["malformed"] += 1
                continue
            if alert is None:
                self.counts["other_events"] += 1
                continue
            self.counts["alerts"] += 1
            yield alert


class EveFollower:
    """Follows an EVE file from its current end; each new alert goes to ``on_alert`` (on the event loop)."""

    def __init__(self, path: Path, on_alert: Callable[[Alert], None], every: float = 1.0):
        self.path = Path(path)
        self.on_alert = on_alert
        self.every = every
        self.reader = EveReader()
        self._offset: int | None = None  # None: start at the end of what is there now
        self._inode: int | None = None
        self._partial = b""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.poll()  # place the offset at the current end: what is already there was ingested before
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"eve-follow-{self.path.name}")
        log.info("following EVE file", extra=fields(path=str(self.path)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.poll()

    def poll(self) -> int:
        """Read what was appended since the last call; returns the number of alerts handed on."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._offset is None:
                self._offset = 0  # not there yet: all it will hold is new
            return 0
        if self._offset is None:
            self._offset, self._inode = stat.st_size, stat.st_ino
            return 0
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # rotated or truncated: from the start
            self._offset, self._inode, self._partial = 0, stat.st_ino, b""
        if stat.st_size == self._offset:
            return 0
        with open(self.path, "rb") as stream:
            stream.seek(self._offset)
            data = self._partial + stream.read(stat.st_size - self._offset)
        self._offset = stat.st_size
        complete, _, self._partial = data.rpartition(b"\n")  # a line still being written waits for its end
        handed = 0
        for alert in self.reader.alerts(complete.decode("utf-8", "replace").splitlines()):
            self.on_alert(alert)
            handed += 1
        return handed


def inbox_path(state_dir: Path) -> Path:
    """Where ``jukimon ids eve-ingest`` appends and the main job follows (``<state>/ids/eve-inbox.jsonl``)."""
    return Path(state_dir) / "ids" / "eve-inbox.jsonl"
