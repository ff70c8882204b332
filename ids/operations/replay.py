"""Replay a file of audit records (JSON lines) through ingestion and every detector."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ids.operations.alerts import Alert
from ids.operations.directory import Directory
from ids.operations.engine import Engine
from ids.operations.pseudonym import Pseudonymiser
from ids.operations.records import Ingestor
from ids.operations.settings import OpsIdsSettings
from monitor.inventory import Inventory
from monitor.logs import fields
from monitor.schedule.window import OperatingCalendar

log = logging.getLogger("ids.operations.replay")


@dataclass
class OperationsIds:
    """Ingestion and detection wired together; feed it lines, get alerts."""

    inventory: Inventory
    settings: OpsIdsSettings = field(default_factory=OpsIdsSettings)
    calendar: OperatingCalendar | None = None

    def __post_init__(self) -> None:
        self.ingestor = Ingestor(Pseudonymiser(*self.settings.keys()))
        self.directory = Directory(self.inventory)
        self.engine = Engine(self.directory, self.settings, self.calendar)

    def feed(self, lines: Iterable[str | bytes], source: str = "stream") -> Iterator[Alert]:
        ingest, observe = self.ingestor.ingest_line, self.engine.observe
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            event = ingest(line, f"{source}:{number}")
            if event is not None:
                yield from observe(event)


def replay(path: Path, ids: OperationsIds) -> Iterator[Alert]:
    with path.open("rb") as lines:
        yield from ids.feed(lines, path.name)
    log.info("replay done", extra=fields(file=str(path), accepted=ids.ingestor.accepted,
                                         rejected=sum(ids.ingestor.rejected.values()),
                                         reasons=dict(ids.ingestor.rejected), suppressed=ids.engine.suppressed))
