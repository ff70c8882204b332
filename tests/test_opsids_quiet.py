"""A normal week of the whole network's operators raises no alert (false alarms: 0)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from ids.operations import OperationsIds, OpsIdsSettings
from monitor.inventory import default_inventory
from simnet.audit_stream import AuditStream

WEEK = dt.date(2026, 12, 7)


def test_a_normal_full_scale_week_stays_quiet():
    inventory = default_inventory()
    ids = OperationsIds(inventory, OpsIdsSettings(pseudonym_key_id="t", pseudonym_keys={"t": "test-key-0123456789"}))
    alerts = list(ids.feed(AuditStream(inventory, seed=11).lines(WEEK, 7)))
    # ~1.4 million records from ~12,700 operators at 1,741 municipalities and 8 agencies.
    assert ids.ingestor.accepted > 1_000_000 and not ids.ingestor.rejected
    assert Counter(a.type.value for a in alerts) == {}, [a.as_dict() for a in alerts[:5]]
