"""A drill run from the command line: its own cascade (store, keys, mail sink), the runner, scoring and the report.

For rehearsals and for drills run on their own: everything lands in one directory —
the SQLite store of the cascade, the signing keys (made on first use), the mails the
embedded sink received (unless an SMTP relay is given), and the after-action report.
Live faults go to the simulation behind its control channel.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

from alerting.cascade import CascadeSettings, generate_keypair, generate_link_key, open_cascade
from alerting.notify.mailsink import MailSink
from drills.clock import DrillClock
from drills.compare import load_previous
from drills.faults import ControlFaults
from drills.participants import SimulatedParticipants
from drills.report import ReportFiles, write_report
from drills.runner import DrillResult, DrillRunner
from drills.scenario import Scenario
from drills.scoring import Metrics, score
from monitor.inventory.model import Inventory
from monitor.store import Store


@dataclass(frozen=True)
class SessionOptions:
    directory: Path
    speed: float = 1.0
    seed: int = 0
    tabletop: bool = False
    control: tuple[str, int] | None = None  # the simulation's control channel (live drills)
    smtp: tuple[str, int] | None = None  # an SMTP relay; None = the embedded mail sink under directory/mail
    pdf: bool = True
    previous: Path | None = None  # an earlier run's report directory or metrics.json, for the comparison


@dataclass(frozen=True)
class SessionResult:
    result: DrillResult
    metrics: Metrics
    files: ReportFiles


async def run_session(scenario: Scenario, inventory: Inventory, options: SessionOptions, start: float,
                      on_runner: Callable[[DrillRunner], None] = lambda runner: None) -> SessionResult:
    """Run the scenario from ``start`` (simulated epoch seconds) and write the report; ``on_runner`` gets the
    runner before it starts (for a progress bar, or to abort it on a signal)."""
    directory = options.directory
    directory.mkdir(parents=True, exist_ok=True)
    clock = DrillClock(start, options.speed)
    async with _smtp(options) as (host, port):
        settings = _settings(directory, host, port)
        async with await Store.open(f"sqlite+aiosqlite:///{directory / 'drill.db'}") as store:
            cascade = await open_cascade(store, inventory, settings, clock=clock)
            faults = ControlFaults(inventory, *options.control) if options.control and not options.tabletop else None
            runner = DrillRunner(scenario, cascade, clock, inventory, faults=faults,
                                 participants=SimulatedParticipants(scenario, options.seed), tabletop=options.tabletop)
            on_runner(runner)
            try:
                result = await runner.run()
            finally:
                await cascade.close()
            metrics = score(result, cascade.tracker.directory)
    previous = load_previous(options.previous) if options.previous else None
    return SessionResult(result, metrics, write_report(metrics, result.timeline, directory, pdf=options.pdf,
                                                       previous=previous))


@contextlib.asynccontextmanager
async def _smtp(options: SessionOptions) -> AsyncIterator[tuple[str, int]]:
    if options.smtp is not None:
        yield options.smtp
        return
    async with MailSink(options.directory / "mail") as sink:
        yield sink.host, sink.port


def _settings(directory: Path, host: str, port: int) -> CascadeSettings:
    keys = directory / "keys"
    settings = CascadeSettings(smtp_host=host, smtp_port=port, mqtt=False, private_key=keys / "ed25519.pem",
                               public_key=keys / "ed25519.pub.pem", link_key=keys / "link.key")
    if not settings.private_key.exists():
        generate_keypair(settings.private_key, settings.public_key)
    if not settings.link_key.exists():
        generate_link_key(settings.link_key)
    return settings
