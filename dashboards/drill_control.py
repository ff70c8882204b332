"""The console's drill controller (訓練統制): one drill at a time, run as a task on the console's event loop.

Two ways to run a drill, because the drill clock and the cascade's clock must agree:

- **real participants** (実参加者): the running report cascade (``ctx.extra["cascade"]``) sends the reports to
  the real recipients, who confirm by mail link or phone; the drill clock is real time (speed 1) — the
  cascade stamps deliveries and receipts with real time — and the state engine's conditions reach the timeline.
- **simulated participants** (模擬参加者, a rehearsal): ``drills.session.run_session`` with its own cascade,
  store and mail sink in the drill's report directory, at any speed — nobody real gets mail, and an
  accelerated clock cannot disturb the running cascade's deadlines.

Live faults go to the simulation through its control channel (``ctx.extra["simnet_control"]``); without
one only tabletop drills are offered. Abort (and the normal end) clear every injected fault — the
runner does it. Every drill's report (HTML, metrics and timeline JSON) lands in its own directory
under the reports directory (``ctx.extra["drill_reports"]``, or a temporary one). A drill's directory gets
its ``run.json`` when it starts, so a drill the monitor did not live to finish (killed, power cut) is still
listed afterwards, as interrupted, rather than forgotten.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alerting.cascade import Cascade, Counts, Report
from drills import (ControlFaults, DrillClock, DrillResult, DrillRunner, EntryKind, Metrics, Mode, Scenario, Status,
                    builtin_scenarios, load_scenario, score, write_report)
from drills.scoring import ExpectationResult
from drills.session import SessionOptions, run_session
from drills.timeline import Entry
from monitor.japan_time import JST
from monitor.logs import fields

if TYPE_CHECKING:
    from dashboards.context import ConsoleContext
    from monitor.inventory.model import Inventory
    from monitor.state.engine import StateEngine

log = logging.getLogger("dashboards.drill_control")

REPORT_FILES = {"report.html": "text/html; charset=utf-8", "report.pdf": "application/pdf",
                "metrics.json": "application/json", "timeline.json": "application/json"}
RUN_ID = re.compile(r"^\d{8}-\d{6}-[A-Za-z0-9_.-]{1,80}$")
MAX_SPEED = 10_000.0  # beyond this "as fast as possible" (inf) says it better


class DrillRequestError(ValueError):
    """A drill that cannot be started as asked; the message is a catalogue key."""


class DrillBusy(DrillRequestError):
    """Another drill is running: only one at a time."""


@dataclass(frozen=True)
class DrillRequest:
    scenario: str
    tabletop: bool
    simulated: bool  # simulated participants (a rehearsal) or real ones
    speed: float = 1.0
    seed: int = 0

    @property
    def fastest(self) -> bool:
        """As fast as possible (speed inf): the drill clock jumps from step to step."""
        return math.isinf(self.speed)


@dataclass
class DrillRun:
    """One drill started from the console: its runner while it runs, its metrics and report once it ends."""

    id: str  # also its report directory's name
    request: DrillRequest
    scenario: Scenario
    directory: Path
    started_by: str
    shared_cascade: bool  # the running cascade (its reports have /cascade pages) or the rehearsal's own
    runner: DrillRunner | None = None
    metrics: Metrics | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    @property
    def status(self) -> str:
        """preparing (cascade and mail sink starting), running, paused, closing (the runner has stopped, the
        report is being written), then aborted, finished or failed."""
        if self.error is not None:
            return "failed"
        if self.runner is None:
            return "aborted" if self.done else "preparing"
        status = self.runner.status
        if status is Status.READY:
            return "preparing"
        if status in (Status.ABORTED, Status.FINISHED) and not self.done:
            return "closing"
        return status.value


@dataclass(frozen=True)
class ExpectationView:
    result: ExpectationResult
    state: str  # met, missed, pending


@dataclass(frozen=True)
class ReportView:
    report: Report
    counts: Counts


@dataclass(frozen=True)
class Progress:
    """What the drill page shows of a drill so far."""

    elapsed: float
    duration: float
    entries: list[Entry]  # the timeline without the receipts (those are the cascade's counts)
    expectations: list[ExpectationView]
    reports: list[ReportView]
    confirmations: int

    @property
    def share(self) -> float:
        return min(1.0, self.elapsed / self.duration) if self.duration > 0 else 1.0


class DrillControl:
    def __init__(self, inventory: Inventory, reports: Path, *, cascade: Cascade | None = None,
                 engine: StateEngine | None = None, control: tuple[str, int] | None = None,
                 scenarios: dict[str, Path] | None = None, pdf: bool = True) -> None:
        self.inventory = inventory
        self.reports = reports
        self.cascade = cascade
        self.engine = engine
        self.control = control
        self.pdf = pdf  # print the report of a drill with real participants to PDF (headless Chromium)
        self._files = {**builtin_scenarios(), **(scenarios or {})}
        self._scenarios: dict[str, Scenario] | None = None
        self.current: DrillRun | None = None

    @classmethod
    def from_context(cls, ctx: ConsoleContext, *, pdf: bool = True) -> DrillControl:
        """From what the main job put in ``ctx.extra``: cascade, simnet_control, drill_reports (and, for
        site-specific scenario files, drill_scenarios: name → path)."""
        extra = ctx.extra
        cascade = extra.get("cascade")
        control = extra.get("simnet_control")
        reports = extra.get("drill_reports")
        scenarios = extra.get("drill_scenarios")
        return cls(ctx.inventory, Path(reports) if reports else Path(tempfile.mkdtemp(prefix="jukimon-drills-")),
                   cascade=cascade if isinstance(cascade, Cascade) else None, engine=ctx.engine,
                   control=tuple(control) if control else None,  # type: ignore[arg-type]
                   scenarios=dict(scenarios) if isinstance(scenarios, dict) else None, pdf=pdf)

    # --- what may be run ----------------------------------------------------------------------------------------

    def scenarios(self) -> dict[str, Scenario]:
        """Loaded once: the files are part of the installation (or the site's configuration)."""
        if self._scenarios is None:
            self._scenarios = {name: load_scenario(path) for name, path in self._files.items()}
        return self._scenarios

    @property
    def live_possible(self) -> bool:
        return self.control is not None

    @property
    def real_possible(self) -> bool:
        return self.cascade is not None

    # --- control ------------------------------------------------------------------------------------------------

    def start(self, request: DrillRequest, by: str) -> DrillRun:
        """Check the request and start the drill as a task; raises ``DrillRequestError`` (a catalogue key)."""
        if self.current is not None and not self.current.done:
            raise DrillBusy("drills.error.busy")
        scenario = self.scenarios().get(request.scenario)
        if scenario is None:
            raise DrillRequestError("drills.error.scenario")
        if not request.tabletop and (scenario.mode is not Mode.LIVE or not self.live_possible):
            raise DrillRequestError("drills.error.no_live")
        if not request.speed > 0 or (request.speed > MAX_SPEED and not request.fastest):
            raise DrillRequestError("drills.error.speed")
        if not request.simulated and (not self.real_possible or request.speed != 1.0):
            raise DrillRequestError("drills.error.real_needs_cascade" if not self.real_possible
                                    else "drills.error.real_speed")
        run_id = _run_id(scenario.name)
        run = DrillRun(run_id, request, scenario, self.reports / run_id, by, shared_cascade=not request.simulated)
        _write_started(run)
        run.task = asyncio.get_running_loop().create_task(self._run(run), name=f"drill {run.id}")
        self.current = run
        log.info("drill started from the console", extra=fields(drill=run.id, by=by, tabletop=request.tabletop,
                                                               simulated=request.simulated, speed=request.speed))
        return run

    def pause(self) -> DrillRunner | None:
        runner = self._runner()
        if runner is not None:
            runner.pause()
        return runner

    def resume(self) -> DrillRunner | None:
        runner = self._runner()
        if runner is not None:
            runner.resume()
        return runner

    def abort(self) -> DrillRun | None:
        """Stop the running drill now; the runner clears its faults before the task ends."""
        run = self.current
        if run is None or run.done:
            return None
        if run.runner is not None:
            run.runner.abort()
        elif run.task is not None:  # still preparing: nothing injected yet
            run.task.cancel()
        return run

    def record_action(self, action: str, by: str) -> bool:
        """An operator's action (an expected action done by a real participant); False if no drill runs."""
        runner = self._runner()
        if runner is None or runner.status not in (Status.RUNNING, Status.PAUSED):
            return False
        runner.record_action(action, by)
        return True

    async def close(self) -> None:
        """Abort a running drill and wait for its clean-up (the console is stopping)."""
        run = self.abort()
        if run is not None and run.task is not None:
            await asyncio.gather(run.task, return_exceptions=True)

    def _runner(self) -> DrillRunner | None:
        run = self.current
        return run.runner if run is not None and not run.done else None

    # --- running ------------------------------------------------------------------------------------------------

    async def _run(self, run: DrillRun) -> None:
        try:
            if run.request.simulated:
                await self._rehearse(run)
            else:
                await self._run_with_cascade(run)
        except asyncio.CancelledError:
            log.info("drill cancelled while preparing", extra=fields(drill=run.id))
        except Exception as exc:  # noqa: BLE001 — a refused or broken drill is shown on its page, not lost
            run.error = str(exc) or type(exc).__name__
            log.warning("drill failed", extra=fields(drill=run.id, error=run.error[:300]))
        if run.metrics is None:  # ended here without a report (refused, failed, cancelled): not cut short by a kill
            (run.directory / "run.json").unlink(missing_ok=True)

    async def _rehearse(self, run: DrillRun) -> None:
        request = run.request
        # No PDF: the session writes its report on this event loop, and printing takes Chromium seconds.
        options = SessionOptions(run.directory, speed=request.speed, seed=request.seed, tabletop=request.tabletop,
                                 control=self.control, pdf=False)

        def attach(runner: DrillRunner) -> None:
            run.runner = runner

        session = await run_session(run.scenario, self.inventory, options, time.time(), attach)
        run.metrics = session.metrics

    async def _run_with_cascade(self, run: DrillRun) -> None:
        assert self.cascade is not None
        tabletop = run.request.tabletop
        faults = ControlFaults(self.inventory, *self.control) if self.control and not tabletop else None
        run.runner = runner = DrillRunner(run.scenario, self.cascade, DrillClock(time.time()), self.inventory,
                                          faults=faults, engine=self.engine, tabletop=tabletop)
        result = await runner.run()
        run.metrics = metrics = score(result, self.cascade.tracker.directory)
        await asyncio.to_thread(write_report, metrics, result.timeline, run.directory, pdf=self.pdf)  # PDF: seconds

    # --- what the page shows ------------------------------------------------------------------------------------

    def progress(self, run: DrillRun) -> Progress | None:
        """The drill so far, scored as if it ended now (expectations not yet due are pending, not missed)."""
        runner = run.runner
        if runner is None:
            return None
        now = runner.clock()
        result = DrillResult(runner.scenario, runner.incident, runner.started, now, runner.status, runner.timeline,
                             dict(runner.reports))
        tracker = runner.cascade.tracker
        metrics = run.metrics or score(result, tracker.directory)
        over = run.done or runner.status in (Status.ABORTED, Status.FINISHED)
        return Progress(
            elapsed=runner.elapsed, duration=runner.scenario.duration,
            entries=[e for e in runner.timeline.sorted() if e.kind is not EntryKind.CONFIRM],
            expectations=[ExpectationView(x, _state(x, now, over)) for x in metrics.expectations],
            reports=[ReportView(report, tracker.counts(report.id)) for report in runner.reports.values()],
            confirmations=runner.confirmations)

    def past(self) -> list[dict[str, Any]]:
        """Earlier drills' metrics (newest first), from the report directories; a drill that started but never
        wrote its metrics (the monitor stopped during it) as ``interrupted``."""
        found = []
        current = self.current.id if self.current is not None and not self.current.done else None
        for directory in sorted((p for p in self.reports.glob("*") if RUN_ID.match(p.name)), reverse=True):
            metrics, started = directory / "metrics.json", directory / "run.json"
            path = metrics if metrics.exists() else started
            if directory.name == current or not path.exists():
                continue
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:  # one damaged report must not take the page down
                log.warning("drill metrics unreadable", extra=fields(path=str(path), error=str(exc)[:200]))
                continue
            found.append({"run": directory.name, **entry} if path is metrics
                         else {"run": directory.name, **entry, "status": "interrupted", "interrupted": True})
        return found

    def report_file(self, run_id: str, name: str) -> Path | None:
        """A report file of a drill, or None: only the known file names inside a drill's own directory."""
        if name not in REPORT_FILES or not RUN_ID.match(run_id):
            return None
        path = self.reports / run_id / name
        return path if path.is_file() else None


def _state(x: ExpectationResult, now: float, over: bool) -> str:
    if x.met:
        return "met"
    if over or (x.deadline is not None and now > x.deadline):
        return "missed"
    return "pending"


def _write_started(run: DrillRun) -> None:
    """The drill's ``run.json``: what ``past()`` shows of it if no metrics ever follow."""
    run.directory.mkdir(parents=True, exist_ok=True)
    (run.directory / "run.json").write_text(json.dumps({
        "title": run.scenario.title, "scenario": run.scenario.name, "started": time.time(),
        "started_by": run.started_by, "tabletop": run.request.tabletop, "simulated": run.request.simulated},
        ensure_ascii=False), encoding="utf-8")


def _run_id(scenario: str) -> str:
    stamp = dt.datetime.now(JST).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', scenario)[:80]}"
