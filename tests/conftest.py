"""Shared fixtures: small real-shape inventories and running simulations on loopback."""

from __future__ import annotations

import pytest

from monitor.inventory.generate import generate_inventory
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture


@pytest.fixture(scope="session")
def full_inventory() -> Inventory:
    return generate_inventory(seed=1)


@pytest.fixture(scope="session")
def small_inventory(full_inventory: Inventory) -> Inventory:
    """National centre, aggregation centre, agencies, Hokkaido and Okinawa with 6 municipalities each."""
    return subset_by_prefecture(full_inventory, ["01", "47"], max_municipalities=6)
