"""Detectors that follow one operator or terminal over time: enumeration, vein-login failures,
two terminals at once, a dormant account waking up."""

from __future__ import annotations

from collections import deque

from ids.operations.alerts import Alert, AlertType
from ids.operations.records import Action, Event
from ids.operations.settings import OpsIdsSettings

_NONE: tuple[Alert, ...] = ()
_DAY = 86_400.0


class Enumeration:
    """A run of look-ups whose resident codes are next to each other or a constant stride apart.

    Works on ``Event.step`` (the code difference computed before pseudonymisation): random
    look-ups are practically never within ``enumeration_max_step`` nor at equal strides.
    """

    def __init__(self, settings: OpsIdsSettings):
        self._max_step = settings.enumeration_max_step
        self._run = settings.enumeration_run
        self._state: dict[str, list] = {}  # operator → [previous step, run length, run start]

    def observe(self, event: Event) -> tuple[Alert, ...]:
        step = event.step
        if step is None or event.action is not Action.LOOKUP:
            return _NONE
        state = self._state.get(event.operator)
        if state is None:
            state = self._state[event.operator] = [None, 0, event.ts]
        patterned = step != 0 and (abs(step) <= self._max_step or step == state[0])
        if not patterned:
            state[:] = [step, 0, event.ts]
            return _NONE
        if state[1] == 0:
            state[2] = event.ts
        state[0] = step
        state[1] += 1
        if state[1] != self._run:
            return _NONE
        return (Alert(AlertType.ENUMERATION, event.organisation, event.operator, state[2], event.ts,
                      f"{self._run} consecutive look-ups of adjacent (|step| <= {self._max_step}) or "
                      f"equally spaced resident codes",
                      {"consecutive": state[1], "last_step": step}, event.terminal),)


class BiometricFailures:
    """A burst of failed vein logins (静脈認証) on one terminal."""

    def __init__(self, settings: OpsIdsSettings):
        self._limit = settings.biometric_failures
        self._window = settings.biometric_window
        self._failures: dict[str, deque[tuple[float, str]]] = {}  # terminal → (ts, operator)

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action is not Action.LOGIN_FAIL:
            return _NONE
        failures = self._failures.setdefault(event.terminal, deque())
        failures.append((event.ts, event.operator))
        while failures[0][0] < event.ts - self._window:
            failures.popleft()
        if len(failures) != self._limit:
            return _NONE
        return (Alert(AlertType.BIOMETRIC_FAILURES, event.organisation, None, failures[0][0], event.ts,
                      f"{self._limit} failed vein logins on one terminal within {self._window:.0f} s",
                      {"failures": len(failures), "operators": sorted({op for _, op in failures})},
                      event.terminal),)


class ConcurrentTerminals:
    """One operator active on two terminals closer in time than a person can move between them."""

    def __init__(self, settings: OpsIdsSettings):
        self._gap = settings.concurrent_seconds
        self._last: dict[str, tuple[str, float]] = {}  # operator → (terminal, ts)

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action is Action.LOGIN_FAIL:
            return _NONE
        last = self._last.get(event.operator)
        self._last[event.operator] = (event.terminal, event.ts)
        if last is None or last[0] == event.terminal or event.ts - last[1] >= self._gap:
            return _NONE
        return (Alert(AlertType.CONCURRENT_TERMINALS, event.organisation, event.operator, last[1], event.ts,
                      f"same operator on two terminals within {self._gap:.0f} s",
                      {"terminals": [last[0], event.terminal], "seconds_apart": round(event.ts - last[1], 1)},
                      event.terminal),)


class DormantAccount:
    """An operator account silent for ``dormant_days`` that is used again."""

    def __init__(self, settings: OpsIdsSettings):
        self._idle = settings.dormant_days * _DAY
        self._last: dict[str, float] = {}

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action is Action.LOGIN_FAIL:
            return _NONE
        last = self._last.get(event.operator)
        self._last[event.operator] = event.ts
        if last is None or event.ts - last < self._idle:
            return _NONE
        return (Alert(AlertType.DORMANT_ACCOUNT, event.organisation, event.operator, last, event.ts,
                      f"account unused for more than {self._idle / _DAY:.0f} days is active again",
                      {"idle_days": round((event.ts - last) / _DAY, 1), "action": event.action.value},
                      event.terminal),)
