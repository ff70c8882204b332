"""Simulated participants (模擬参加者): when each one confirms a report or performs an action — or never.

For rehearsals and tests. Each role's delay distribution and no-show rate come from
the scenario's ``participants``; the random draws are seeded, so a drill run twice
with the same seed gives the same timeline.
"""

from __future__ import annotations

import random

from drills.scenario import Participant, Role, Scenario


class SimulatedParticipants:
    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        self.roles: dict[Role, Participant] = {p.role: p for p in scenario.participants}
        self.rng = random.Random(seed)

    def delay(self, role: Role) -> float | None:
        """Seconds until a participant of this role acts; None if they never do (or the role is not simulated)."""
        participant = self.roles.get(role)
        if participant is None or self.rng.random() < participant.no_show:
            return None
        return max(0.0, participant.delay.sample(self.rng))

    def name(self, role: Role) -> str:
        participant = self.roles.get(role)
        return f"{participant.name if participant else role.value}（模擬）"
