"""``jukimon drill``: check a scenario file, list the built-in scenarios, run a drill and write its report.

    jukimon drill validate FILE            # exit 0, or 1 with every problem as FILE:LINE: key: what was expected
    jukimon drill list                     # built-in scenarios
    jukimon drill run FILE|NAME [--participants simulated] [--speed N] [--report DIR]
                     [--tabletop] [--control HOST:PORT] [--smtp HOST:PORT] [--inventory FILE] [--seed N]
                     [--compare PREVIOUS-DIR] [--no-pdf]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from monitor.argtypes import host_port

if TYPE_CHECKING:  # imported when a command runs, so that `jukimon --help` stays fast
    from drills.runner import DrillRunner
    from drills.scenario import Scenario


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("drill", help="incident-response drills: validate, list, run with an after-action report")
    commands = parser.add_subparsers(dest="drill_command", metavar="SUBCOMMAND", required=True)
    validate = commands.add_parser("validate", help="check a scenario file (every problem with its line)")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=_validate)
    listing = commands.add_parser("list", help="the built-in scenarios")
    listing.set_defaults(handler=_list)
    run = commands.add_parser("run", help="run a drill (file or built-in name) and write the report")
    run.add_argument("scenario", metavar="FILE|NAME")
    run.add_argument("--participants", choices=["simulated"], default="simulated",
                     help="who confirms reports and acts (simulated: seeded delays and no-shows from the scenario)")
    run.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    run.add_argument("--report", type=Path, default=None, metavar="DIR",
                     help="where the report (HTML, PDF, metrics JSON), the store and the mails go "
                          "(default: state/drills/<scenario>)")
    run.add_argument("--tabletop", action="store_true", help="no faults, even for a live scenario")
    run.add_argument("--control", type=host_port, default=None, metavar="HOST:PORT",
                     help="the simulation's control channel (default 127.0.0.1:16100) for live faults")
    run.add_argument("--smtp", type=host_port, default=None, metavar="HOST:PORT",
                     help="SMTP relay for the reports (default: an embedded mail sink under DIR/mail)")
    run.add_argument("--inventory", type=Path, help="inventory YAML (default: the generated full-scale network)")
    run.add_argument("--seed", type=int, default=0, help="seed of the simulated participants")
    run.add_argument("--no-pdf", action="store_true", help="HTML and JSON only")
    run.add_argument("--compare", type=Path, metavar="PREVIOUS",
                     help="an earlier run's report directory (or its metrics.json): adds a comparison to the report")
    run.set_defaults(handler=_run)




def _scenario(read: Callable[[], Scenario]) -> Scenario | None:
    """The scenario, or None after printing every problem of its file."""
    from drills.loader import ScenarioError

    try:
        return read()
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    from drills.loader import load_scenario

    scenario = _scenario(lambda: load_scenario(args.file))
    if scenario is None:
        return 1
    print(f"{args.file}: OK: {scenario.title} ({scenario.mode.value}, {len(scenario.timeline)} injects, "
          f"{len(scenario.expectations)} expected actions)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from drills.loader import builtin_scenarios, load_scenario

    for name, path in builtin_scenarios().items():
        scenario = load_scenario(path)
        print(f"{name:<28} {scenario.mode.value:<9} {scenario.duration / 60:>4.0f}分  {scenario.title}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from drills.faults import DrillRefused
    from drills.loader import find_scenario
    from drills.session import SessionOptions, run_session
    from simnet.cli import load_inventory_arg
    from simnet.control import DEFAULT_CONTROL

    scenario = _scenario(lambda: find_scenario(args.scenario))
    if scenario is None:
        return 1
    options = SessionOptions(args.report or Path("state/drills") / scenario.name, speed=args.speed, seed=args.seed,
                             tabletop=args.tabletop, control=args.control or DEFAULT_CONTROL, smtp=args.smtp,
                             pdf=not args.no_pdf, previous=args.compare)
    progress = _ProgressBar()
    try:
        session = asyncio.run(run_session(scenario, load_inventory_arg(args), options, time.time(), progress.attach))
    except (DrillRefused, ConnectionError) as exc:
        print(f"drill refused: {exc}", file=sys.stderr)
        return 2
    progress.done()
    m, files = session.metrics, session.files
    print(f"{scenario.title}: {session.result.status.value}, score {m.score:g}/{m.max_score:g} "
          f"({m.percent:.1f}%, {'pass' if m.passed else 'fail'}); deadlines missed: "
          f"{', '.join(m.deadlines_missed) or 'none'}")
    print(f"report: {files.html}" + (f", {files.pdf}" if files.pdf else " (no PDF)")
          + f", {files.json}")
    return 0


class _ProgressBar:
    """One line on stderr, redrawn at most five times a second; Ctrl-C aborts the drill (faults are cleared)."""

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self._last = 0.0
        self._runner: DrillRunner | None = None

    def attach(self, runner: DrillRunner) -> None:
        self._runner = runner
        runner.on_step = self.draw
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.abort)

    def draw(self, runner: DrillRunner, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        share = min(1.0, runner.elapsed / max(runner.scenario.duration, 1.0))
        filled = int(share * self.width)
        sys.stderr.write(f"\r[{'#' * filled}{'-' * (self.width - filled)}] {share:4.0%} "
                         f"{runner.elapsed / 60:5.1f}/{runner.scenario.duration / 60:.0f}分 "
                         f"受信確認 {runner.confirmations} {runner.status.value:<8}")
        sys.stderr.flush()

    def done(self) -> None:
        if self._runner is not None:
            self.draw(self._runner, force=True)
            sys.stderr.write("\n")
