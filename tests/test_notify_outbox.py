"""The outbox delivers every notification exactly once: through duplicates, receiver outages and monitor restarts.

Time is a simulated clock: a retry happens when the test moves the clock past
its backoff. The restart and duplicate tests run on SQLite and on a real
PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest

from alerting.model import Notification
from alerting.notify import (DeliveryError, DurableOutbox, EmailReceiver, MailSink, OutboxEntry, OutboxStatus,
                             Receiver, RejectedError)
from monitor.store import PrivatePostgres, Store

T0 = 1_796_171_415.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A receiver that records what it gets; ``down`` makes it fail, ``refuse`` rejects given ids for good."""

    def __init__(self) -> None:
        self.got: list[Notification] = []
        self.down = False
        self.refuse: set[str] = set()

    async def deliver(self, n: Notification) -> None:
        if self.down:
            raise DeliveryError("connection refused")
        if n.id in self.refuse:
            raise RejectedError("550 no such recipient")
        self.got.append(n)

    def ids(self) -> list[str]:
        return [n.id for n in self.got]


def note(sequence: int, receiver: str = "noc", drill: bool = False) -> Notification:
    return Notification(f"device_down:muni-01-203-cs1|{receiver}|0|{sequence}", receiver,
                        "device_down:muni-01-203-cs1", ("device_down:muni-01-203-cs1",),
                        f"[障害発生] 小樽市 CS 応答なし #{sequence}", "本文", T0 + sequence, drill=drill)


async def statuses(outbox: DurableOutbox) -> dict[str, OutboxStatus]:
    return {e.notification.id: e.status for e in await outbox.entries()}


async def attempted(outbox: DurableOutbox, n: Notification, attempts: int = 1) -> OutboxEntry:
    """The entry of ``n`` once it has been tried ``attempts`` times."""
    deadline = time.monotonic() + 10
    while True:
        entry = next((e for e in await outbox.entries() if e.notification.id == n.id), None)
        if entry is not None and entry.attempts >= attempts:
            return entry
        assert time.monotonic() < deadline, f"attempt {attempts} of {n.id} never happened"
        await asyncio.sleep(0.01)


async def wait_statuses(outbox: DurableOutbox, expected: dict[str, OutboxStatus]) -> None:
    deadline = time.monotonic() + 10
    while await statuses(outbox) != expected:
        assert time.monotonic() < deadline, f"outbox never reached {expected}: {await statuses(outbox)}"
        await asyncio.sleep(0.01)



@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/jukimon.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    server: PrivatePostgres = request.getfixturevalue("postgres")
    return server.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url) as opened:
        yield opened


def outbox_for(store: Store, receivers: dict[str, Receiver], clock: Clock) -> DurableOutbox:
    return DurableOutbox(store, receivers, clock, backoff_initial=2.0, backoff_max=30.0, tick=0.01)


async def test_enqueued_twice_delivered_once(url: str) -> None:
    noc = Recorder()
    async with await Store.open(url) as store, outbox_for(store, {"noc": noc}, Clock()) as outbox:
        await outbox.enqueue(note(1))
        await outbox.enqueue(note(1))
        await wait_statuses(outbox, {note(1).id: OutboxStatus.SENT})
        await outbox.enqueue(note(1))  # again after it was sent: still nothing new
        await outbox.enqueue(note(2))
        await wait_statuses(outbox, {note(1).id: OutboxStatus.SENT, note(2).id: OutboxStatus.SENT})

    assert noc.ids() == [note(1).id, note(2).id]


async def test_a_restart_delivers_the_pending_once_and_never_the_sent_again(url: str) -> None:
    """The monitor dies with one notification sent and two stuck; the new process replays its alarms."""
    clock = Clock()
    before = Recorder()
    async with await Store.open(url) as store, outbox_for(store, {"noc": before}, clock) as outbox:
        await outbox.enqueue(note(1))
        await wait_statuses(outbox, {note(1).id: OutboxStatus.SENT})
        before.down = True
        await outbox.enqueue(note(2))
        await outbox.enqueue(note(3))
        await attempted(outbox, note(2))

    after = Recorder()
    async with await Store.open(url) as store, outbox_for(store, {"noc": after}, clock) as outbox:
        for sequence in (1, 2, 3):  # alerting re-enqueues what it believes it owes
            await outbox.enqueue(note(sequence))
        clock.now += 60  # past the backoff the first process recorded
        await wait_statuses(outbox, {note(s).id: OutboxStatus.SENT for s in (1, 2, 3)})

    assert before.ids() == [note(1).id]
    assert after.ids() == [note(2).id, note(3).id]


async def test_a_mail_server_outage_delays_in_order_and_loses_nothing(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    sink = MailSink(tmp_path / "mail")
    await sink.start()
    await sink.stop()  # down from the start, on a port we know
    mail = EmailReceiver("127.0.0.1", sink.port, "jukimon@noc.example.lg.jp", ["noc@example.lg.jp"], timeout=5)
    async with outbox_for(store, {"noc": mail}, clock) as outbox:
        for sequence in (1, 2, 3):
            await outbox.enqueue(note(sequence))
        head = await attempted(outbox, note(1))
        rest = (await outbox.entries())[1:]
        assert head.status is OutboxStatus.PENDING and head.attempts == 1 and "Connection" in head.last_error
        assert [e.attempts for e in rest] == [0, 0]  # the queue waits behind its head

        await sink.start()
        clock.now += 60
        await wait_statuses(outbox, {note(s).id: OutboxStatus.SENT for s in (1, 2, 3)})
    await sink.stop()

    assert [m["Subject"] for m in sink.messages()] == [note(s).subject for s in (1, 2, 3)]


async def test_retries_back_off_exponentially_up_to_the_cap(store: Store) -> None:
    clock = Clock()
    noc = Recorder()
    noc.down = True
    async with outbox_for(store, {"noc": noc}, clock) as outbox:
        await outbox.enqueue(note(1))
        delays = []
        for attempt in range(1, 7):
            entry = await attempted(outbox, note(1), attempt)
            delays.append(entry.next_attempt - clock.now)
            clock.now = entry.next_attempt
        noc.down = False
        await wait_statuses(outbox, {note(1).id: OutboxStatus.SENT})

    assert delays == [2, 4, 8, 16, 30, 30]
    assert noc.ids() == [note(1).id]


async def test_one_receiver_down_does_not_hold_up_another(store: Store) -> None:
    noc, chat = Recorder(), Recorder()
    noc.down = True
    async with outbox_for(store, {"noc": noc, "chat": chat}, Clock()) as outbox:
        await outbox.enqueue(note(1, "noc"))
        await outbox.enqueue(note(2, "chat"))
        await outbox.enqueue(note(3, "chat"))
        await wait_statuses(outbox, {note(1, "noc").id: OutboxStatus.PENDING, note(2, "chat").id: OutboxStatus.SENT,
                                     note(3, "chat").id: OutboxStatus.SENT})

    assert chat.ids() == [note(2, "chat").id, note(3, "chat").id]


async def test_a_refused_notification_is_failed_and_the_queue_moves_on(store: Store) -> None:
    noc = Recorder()
    noc.refuse = {note(1).id}
    async with outbox_for(store, {"noc": noc}, Clock()) as outbox:
        await outbox.enqueue(note(1))
        await outbox.enqueue(note(2))
        await wait_statuses(outbox, {note(1).id: OutboxStatus.FAILED, note(2).id: OutboxStatus.SENT})
        [refused] = await outbox.entries(OutboxStatus.FAILED)

    assert "550" in refused.last_error
    assert noc.ids() == [note(2).id]


async def test_an_unknown_receiver_is_failed_with_its_reason_logged(store: Store,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    async with outbox_for(store, {"noc": Recorder()}, Clock()) as outbox:
        with caplog.at_level(logging.ERROR, "alerting.notify.outbox"):
            await outbox.enqueue(note(1, "pager"))
        [entry] = await outbox.entries()

    assert entry.status is OutboxStatus.FAILED and entry.last_error == "unknown receiver"
    assert any(getattr(r, "fields", {}).get("receiver") == "pager" for r in caplog.records if r.levelno >= logging.ERROR)


async def test_pending_notifications_of_a_receiver_removed_from_the_configuration_fail_at_start(store: Store) -> None:
    pager = Recorder()
    pager.down = True
    async with outbox_for(store, {"noc": Recorder(), "pager": pager}, Clock()) as outbox:
        await outbox.enqueue(note(1, "pager"))
        await attempted(outbox, note(1, "pager"))

    async with outbox_for(store, {"noc": Recorder()}, Clock()) as outbox:
        [entry] = await outbox.entries()
    assert entry.status is OutboxStatus.FAILED and entry.last_error == "unknown receiver"


async def test_a_drill_gets_its_marks_on_delivery_even_if_its_text_lacks_them(store: Store) -> None:
    noc = Recorder()
    async with outbox_for(store, {"noc": noc}, Clock()) as outbox:
        await outbox.enqueue(note(1, drill=True))
        await wait_statuses(outbox, {note(1).id: OutboxStatus.SENT})

    [delivered] = noc.got
    assert delivered.subject.startswith("【訓練】") and delivered.body.startswith("【訓練】")


async def test_enqueue_before_start_is_refused(store: Store) -> None:
    with pytest.raises(RuntimeError, match="start"):
        await outbox_for(store, {"noc": Recorder()}, Clock()).enqueue(note(1))


async def test_the_smtp_password_never_reaches_the_log_or_the_table(store: Store, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    async with MailSink(tmp_path / "mail") as sink:  # offers no AUTH: every login fails
        mail = EmailReceiver("127.0.0.1", sink.port, "jukimon@noc.example.lg.jp", ["noc@example.lg.jp"],
                             user="jukimon", password="s3cret-pw")
        with caplog.at_level(logging.DEBUG, "alerting"):
            async with outbox_for(store, {"noc": mail}, Clock()) as outbox:
                await outbox.enqueue(note(1))
                entry = await attempted(outbox, note(1))

    assert "AUTH" in entry.last_error and "s3cret-pw" not in entry.last_error
    logged = [r for r in caplog.records if r.name.startswith("alerting")]
    assert any(r.getMessage().startswith("receiver failing") for r in logged)
    assert not any("s3cret-pw" in f"{r.getMessage()} {vars(r)}" for r in logged)
