"""The monitor's store keeps states, conditions, history, maintenance and checkpoints across a restart.

Every test runs against SQLite (a file under tmp_path) and a real PostgreSQL
server (private, one per session, an empty database per test).
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from monitor.state.model import (Condition, ConditionKind, ConditionStatus, State, StateRecord, SubjectKind,
                                 Transition)
from monitor.store import SCHEMA_VERSION, PrivatePostgres, SchemaTooNewError, Store, StoreError
from monitor.store.schema import schema_version

T0 = 1_700_000_000.0




def otaru_cs(state: State = State.DOWN, since: float = T0, **kw: object) -> StateRecord:
    return StateRecord(SubjectKind.DEVICE, "muni-01-203-cs1", state, since, reason="poll_timeout",
                       details={"last_seen": T0 - 30, "note": "小樽市 CS"}, **kw)  # type: ignore[arg-type]


def root_cause(fingerprint: str = "root_cause:pref-01-fw1", **kw: object) -> Condition:
    return Condition(fingerprint, ConditionKind.ROOT_CAUSE, "pref-01-fw1", "critical", T0,
                     "北海道 FW 停止", suppressed=("muni-01-203-cs1", "muni-01-204-cs1"),
                     details={"children": 2}, **kw)  # type: ignore[arg-type]


def window(id: str, start: float) -> dict[str, object]:
    return {"id": id, "start": start, "end": start + 3600, "subjects": ["muni-01-203-cs1"], "reason": "機器更改"}


async def test_states_round_trip_and_upsert_in_place(url: str) -> None:
    async with await Store.open(url) as store:
        line = StateRecord(SubjectKind.LINK, "line-01-203-a", State.UP, T0)
        await store.save_states([otaru_cs(), line])
        assert await store.load_states() == [otaru_cs(), line]

        await store.save_states([otaru_cs(State.UP, T0 + 60, flapping=True)])
        states = await store.load_states()
    assert len(states) == 2
    assert otaru_cs(State.UP, T0 + 60, flapping=True) in states


async def test_restart_keeps_everything(url: str) -> None:
    """Close and reopen — the monitor's restart: nothing lost, the active root cause still the same condition."""
    cleared = Condition("device_down:muni-01-001-cs1", ConditionKind.DEVICE_DOWN, "muni-01-001-cs1", "major",
                        T0 - 600, "札幌市 CS 応答なし", status=ConditionStatus.CLEARED, cleared=T0 - 300)
    async with await Store.open(url) as store:
        await store.save_states([otaru_cs()])
        await store.save_conditions([root_cause(), cleared])
        await store.append_transitions([Transition(SubjectKind.DEVICE, "muni-01-203-cs1", State.UP, State.DOWN, T0)])
        await store.save_maintenance("mw-1", window("mw-1", T0), T0, T0 + 3600)
        await store.put_checkpoint("hysteresis", {"muni-01-203-cs1": 3})

    async with await Store.open(url) as store:
        assert await store.load_states() == [otaru_cs()]
        assert await store.load_conditions(active_only=False) == [cleared, root_cause()]
        assert await store.transitions() == [
            Transition(SubjectKind.DEVICE, "muni-01-203-cs1", State.UP, State.DOWN, T0)]
        assert await store.load_maintenance() == [window("mw-1", T0)]
        assert await store.get_checkpoint("hysteresis") == {"muni-01-203-cs1": 3}


async def test_conditions_active_only_and_clearing_in_place(url: str) -> None:
    async with await Store.open(url) as store:
        redundancy = Condition("redundancy_lost:muni-01-203", ConditionKind.REDUNDANCY_LOST, "muni-01-203",
                               "warning", T0 + 10, "二重化喪失", in_maintenance=True)
        await store.save_conditions([root_cause(), redundancy])
        assert await store.load_conditions() == [root_cause(), redundancy]

        await store.save_conditions([root_cause(status=ConditionStatus.CLEARED, cleared=T0 + 120)])
        assert await store.load_conditions() == [redundancy]
        everything = await store.load_conditions(active_only=False)
    assert everything == [root_cause(status=ConditionStatus.CLEARED, cleared=T0 + 120), redundancy]


async def test_transitions_newest_first_filtered_limited_and_pruned(url: str) -> None:
    flaps = [Transition(SubjectKind.DEVICE, "muni-01-203-cs1", old, new, T0 + i, reason=f"poll_{i}")
             for i, (old, new) in enumerate([(State.UP, State.DOWN), (State.DOWN, State.UP)] * 3)]
    other = Transition(SubjectKind.LINK, "line-47-201-a", State.UP, State.DOWN, T0 + 2.5)
    same_second = Transition(SubjectKind.LINK, "line-47-201-a", State.DOWN, State.UP, T0 + 2.5)
    async with await Store.open(url) as store:
        await store.append_transitions([*flaps, other, same_second])

        assert await store.transitions(limit=3) == [flaps[5], flaps[4], flaps[3]]
        assert await store.transitions("line-47-201-a") == [same_second, other]  # equal times: insertion order
        assert await store.transitions("muni-01-203-cs1", since=T0 + 4) == [flaps[5], flaps[4]]
        assert await store.transitions("no-such-device") == []

        assert await store.prune_transitions(before=T0 + 3) == 5
        assert await store.transitions() == [flaps[5], flaps[4], flaps[3]]


async def test_maintenance_windows_replace_and_delete(url: str) -> None:
    async with await Store.open(url) as store:
        await store.save_maintenance("mw-2", window("mw-2", T0 + 7200), T0 + 7200, T0 + 10800)
        await store.save_maintenance("mw-1", window("mw-1", T0), T0, T0 + 3600)
        assert await store.load_maintenance() == [window("mw-1", T0), window("mw-2", T0 + 7200)]

        moved = window("mw-1", T0 + 86400)
        await store.save_maintenance("mw-1", moved, T0 + 86400, T0 + 90000)
        assert await store.load_maintenance() == [window("mw-2", T0 + 7200), moved]

        assert await store.delete_maintenance("mw-2") is True
        assert await store.delete_maintenance("mw-2") is False
        assert await store.load_maintenance() == [moved]


async def test_checkpoints_round_trip_and_replace(url: str) -> None:
    uptimes = {"muni-01-203-cs1": 123456, "pref-01-fw1": 99}
    async with await Store.open(url) as store:
        assert await store.get_checkpoint("sysuptime") is None
        await store.put_checkpoint("sysuptime", uptimes)
        await store.put_checkpoint("counters", [1, 2.5, "三", None, {"nested": True}])
        assert await store.get_checkpoint("sysuptime") == uptimes
        await store.put_checkpoint("sysuptime", {"muni-01-203-cs1": 7})
        assert await store.get_checkpoint("sysuptime") == {"muni-01-203-cs1": 7}
        assert await store.get_checkpoint("counters") == [1, 2.5, "三", None, {"nested": True}]


async def test_bulk_save_of_ten_thousand_states(url: str) -> None:
    records = [StateRecord(SubjectKind.DEVICE, f"dev-{i:05d}", State.UP, T0 + i) for i in range(10_000)]
    async with await Store.open(url) as store:
        await store.save_states(records)
        await store.save_states(r for r in records[:5000])  # any iterable; the second save replaces
        await store.save_states([])
        assert await store.load_states() == records


async def test_newer_schema_is_refused_with_a_clear_error(url: str) -> None:
    await (await Store.open(url)).close()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    await engine.dispose()

    with pytest.raises(SchemaTooNewError, match=f"schema version {SCHEMA_VERSION + 1}, newer than .*{SCHEMA_VERSION}"):
        await Store.open(url)


async def test_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError, match="only sqlite"):
        await Store.open("mysql+aiomysql://jukimon:pw@127.0.0.1/jukimon")


async def test_password_never_logged(postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-Pa55"
    plain = make_url(postgres.create_database("test_password")).set(password=secret)
    caplog.set_level(logging.DEBUG)
    async with await Store.open(plain.render_as_string(hide_password=False)) as store:
        await store.put_checkpoint("k", 1)
        assert secret not in store.url
    logged = caplog.text + "".join(str(getattr(r, "fields", "")) for r in caplog.records)
    assert "postgres:***@127.0.0.1" in logged
    assert secret not in logged
