"""Fuzzing every parser and entry point with hypothesis (issue 11, hostile input).

One module per target family; each target feeds generated inputs to the real
parser the way the service does and classifies the outcome as accepted,
rejected-with-reason, CRASH or HANG (fuzz/core.py). ``python -m fuzz`` is the
long run; tests/test_fuzz.py the bounded one in CI.
"""

from __future__ import annotations

from fuzz.core import Accepted, Outcome, Rejected, Tally, Target, run_case, run_target


def all_targets() -> dict[str, Target]:
    """Every target by name (imported on demand: the console family builds an app)."""
    from fuzz import bus, console, files, logs, snmp, traffic

    found: dict[str, Target] = {}
    for family in (snmp, logs, traffic, files, bus, console):
        for target in family.targets():
            found[target.name] = target
    return found


__all__ = ["Accepted", "Outcome", "Rejected", "Tally", "Target", "all_targets", "run_case", "run_target"]
