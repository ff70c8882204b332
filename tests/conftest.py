"""Shared fixtures: small real-shape inventories and running simulations on loopback."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from monitor.inventory.generate import generate_inventory
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from monitor.store.postgres import PrivatePostgres
from tests.postgres import postgres_server


@pytest.fixture(scope="session")
def full_inventory() -> Inventory:
    return generate_inventory(seed=1)


@pytest.fixture(scope="session")
def small_inventory(full_inventory: Inventory) -> Inventory:
    """National centre, aggregation centre, agencies, Hokkaido and Okinawa with 6 municipalities each."""
    return subset_by_prefecture(full_inventory, ["01", "47"], max_municipalities=6)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL server for the whole run (skips on a dev machine without it, fails in CI)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL: a SQLite file under tmp_path, then an empty database of its own on the private PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/state/jukimon.db"  # state/ does not exist yet: Store.open makes it
    server: PrivatePostgres = request.getfixturevalue("postgres")
    return server.create_database(f"test_{uuid.uuid4().hex[:12]}")
