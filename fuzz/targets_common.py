"""What several target families share: a small real-shape inventory."""

from __future__ import annotations

from functools import lru_cache

from monitor.inventory.generate import generate_inventory
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture


@lru_cache(maxsize=1)
def small_inventory() -> Inventory:
    """Okinawa with two municipalities, plus the national centres (as tests/conftest.py builds them)."""
    return subset_by_prefecture(generate_inventory(seed=1), ["47"], max_municipalities=2)
