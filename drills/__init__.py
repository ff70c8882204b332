"""Incident-response drills (訓練): scripted scenarios run against the simulated network, scored, reported.

A scenario (YAML, ``docs/drills.md``) scripts faults, report-cascade steps (初報・第2報・終報),
messages and IDS events on a timeline, with the actions expected of people and their
deadlines. The runner plays it on an accelerated drill clock — live (faults into the
simulation, behind a safety interlock) or tabletop — with simulated participants for
rehearsals; everything lands on one timeline, which scoring turns into metrics and the
after-action report (HTML, PDF, JSON). Others import from here::

    from drills import find_scenario, DrillClock, DrillRunner, SimulatedParticipants, score, write_report
"""

from drills.clock import DrillAborted, DrillClock
from drills.faults import ControlFaults, DrillRefused, InProcessFaults, check_simulated
from drills.loader import ScenarioError, builtin_scenarios, find_scenario, load_scenario, parse_scenario
from drills.participants import SimulatedParticipants
from drills.report import ReportFiles, write_report
from drills.runner import DrillResult, DrillRunner, Status
from drills.scenario import Mode, Scenario
from drills.scoring import Metrics, score
from drills.timeline import Entry, EntryKind, Timeline

__all__ = [
    "ControlFaults", "DrillAborted", "DrillClock", "DrillRefused", "DrillResult", "DrillRunner", "Entry", "EntryKind",
    "InProcessFaults", "Metrics", "Mode", "ReportFiles", "Scenario", "ScenarioError", "SimulatedParticipants",
    "Status", "Timeline", "builtin_scenarios", "check_simulated", "find_scenario", "load_scenario",
    "parse_scenario", "score", "write_report",
]
