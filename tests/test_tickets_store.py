"""Call-centre tickets and knowledge base on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): keeping, searching, workflow."""

from __future__ import annotations

import logging
import uuid
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from alerting.service import AlertingService
from dashboards.tickets import (Category, HitKind, TicketConflict, TicketDraft, TicketEvent, TicketStatus,
                                TicketStore, TicketWorkflow, WorkflowError)
from monitor.inventory.model import Inventory
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind
from monitor.store import PrivatePostgres, Store
from tests.ticket_samples import (CS_UNREACHABLE, LINE_DOWN, OTARU_ANSWER, OTARU_LINES, VEIN, seed_knowledge,
                                  seed_past_ticket)

T0 = 1_760_000_000.0




class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        self.now += 1
        return self.now


class Audit:
    """Stands in for ``partial(dashboards.audit.audit, request)``."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, action: str, target: str = "", result: str = "ok", **detail: Any) -> None:
        self.entries.append((action, target, detail))


class Outbox:
    async def enqueue(self, notification: object) -> None:
        pass


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    async with await Store.open(url) as opened:
        yield opened


@pytest.fixture
async def tickets(store: Store) -> TicketStore:
    return await TicketStore.open(store)


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def flow(tickets: TicketStore, audit: Audit, small_inventory: Inventory) -> TicketWorkflow:
    return TicketWorkflow(tickets, audit, small_inventory, clock=Clock())


# --- keeping ------------------------------------------------------------------------------------------------------


async def test_tickets_events_and_answers_survive_a_restart(url: str, small_inventory: Inventory) -> None:
    async with await Store.open(url) as store:
        flow = TicketWorkflow(await TicketStore.open(store), Audit(), small_inventory, clock=Clock())
        past = await seed_past_ticket(flow)
        await seed_knowledge(flow)
    async with await Store.open(url) as store:
        again = await TicketStore.open(store)  # opening twice creates nothing twice
        kept = await again.ticket(past.id)
        assert kept is not None and kept.status is TicketStatus.DONE and kept.answer == OTARU_ANSWER
        assert [e.action for e in await again.events(past.id)] == ["opened", "answered", "status"]
        assert [h.id for h in await again.similar_tickets("回線断")] == [past.id]
        assert len(await again.kb_entries()) == 5


async def test_a_stale_copy_cannot_overwrite_a_newer_save(tickets: TicketStore, flow: TicketWorkflow) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    await tickets.update(ticket, [TicketEvent(ticket.id, 0, T0, "alice", "commented", "一次切り分け中")])
    with pytest.raises(TicketConflict):
        await tickets.update(ticket, [TicketEvent(ticket.id, 0, T0, "bob", "commented", "古い画面から")])
    assert [e.text for e in await tickets.events(ticket.id)][1:] == ["一次切り分け中"]


async def test_lists_by_status_and_caller_newest_change_first(tickets: TicketStore, flow: TicketWorkflow) -> None:
    otaru = await flow.open(OTARU_LINES, "alice")
    naha = await flow.open(TicketDraft("muni-47-001", Category.TERMINAL, "端末が起動しない", "業務端末02が起動しない"), "bob")
    await flow.move(otaru.id, TicketStatus.INVESTIGATING, "alice")
    assert [t.id for t in await tickets.tickets()] == [otaru.id, naha.id]
    assert [t.id for t in await tickets.tickets(statuses=[TicketStatus.RECEIVED])] == [naha.id]
    assert [t.id for t in await tickets.tickets(site="muni-01-002")] == [otaru.id]


# --- searching ----------------------------------------------------------------------------------------------------


async def test_a_fault_worded_differently_finds_the_past_answer(tickets: TicketStore, flow: TicketWorkflow) -> None:
    """"回線が切れた" shares only the two-kanji word 回線 with "回線断": found by that word, not by a trigram."""
    await seed_knowledge(flow)
    past = await seed_past_ticket(flow)
    answers = await tickets.similar_answers("回線が切れた")
    assert answers[0].title == LINE_DOWN.title and answers[0].matched == ("回線",)
    found = await tickets.similar_tickets("回線が切れた")
    assert [(h.kind, h.id, h.status) for h in found] == [(HitKind.TICKET, past.id, TicketStatus.DONE)]
    assert found[0].answer == OTARU_ANSWER


async def test_more_and_longer_shared_terms_rank_higher(tickets: TicketStore, flow: TicketWorkflow) -> None:
    await seed_knowledge(flow)
    titles = [h.title for h in await tickets.similar_answers("業務端末からCSに接続できない")]
    assert titles[0] == CS_UNREACHABLE.title  # the exact phrase, and every term
    assert set(titles[1:]) <= {VEIN.title, LINE_DOWN.title, "共通運用時間帯の外で業務ができない",
                               "ファイル配信（プログラム・設定）が届かない"}
    best = await tickets.similar_answers("静脈認証装置が反応しない")
    assert best[0].title == VEIN.title and "静脈認証装置" in best[0].matched


async def test_words_in_many_answers_weigh_less_than_rare_ones(tickets: TicketStore, flow: TicketWorkflow) -> None:
    """住基 and ネット are in several answers, 回線 in one: by length alone the hours answer (住基 + ネット) would tie."""
    await seed_knowledge(flow)
    found = await tickets.similar_answers("回線が切れた。朝から住基ネットにつながらない")
    assert found[0].title == LINE_DOWN.title and found[0].matched == ("ネット", "回線")
    assert found[1].title == "共通運用時間帯の外で業務ができない" and found[1].score < found[0].score


async def test_what_character_matching_cannot_find(tickets: TicketStore, flow: TicketWorkflow) -> None:
    """A synonym with no character in common is not found: つながらない ≠ 接続できない, 切れた ≠ 断."""
    await seed_knowledge(flow)
    assert await tickets.similar_answers("つながらない") == []
    assert LINE_DOWN.title not in [h.title for h in await tickets.similar_answers("切れた")]


async def test_short_queries_scan_with_like_regardless_of_width_and_case(tickets: TicketStore,
                                                                         flow: TicketWorkflow) -> None:
    await seed_knowledge(flow)
    assert CS_UNREACHABLE.title in [h.title for h in await tickets.similar_answers("ｃｓ")]  # full-width, lower case
    assert [h.title for h in await tickets.similar_answers("静脈")] == [VEIN.title]
    assert VEIN.title in [h.title for h in await tickets.similar_answers("緑")]  # one character: still searched


async def test_search_syntax_in_the_query_is_taken_literally(tickets: TicketStore, flow: TicketWorkflow) -> None:
    await seed_knowledge(flow)
    for query in ("%", "_", "%%%", '"', "*", "\\"):  # wildcards and syntax that, unescaped, match or break
        assert await tickets.similar_answers(query) == [], query
    words = [h.title for h in await tickets.similar_answers("静脈 回線")]
    assert [h.title for h in await tickets.similar_answers('静脈" OR "回線')] == words  # the words, not an OR


async def test_the_index_follows_every_edit(tickets: TicketStore, flow: TicketWorkflow) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    await flow.answer(ticket.id, "ルータ交換で復旧", "alice")
    assert [h.id for h in await tickets.similar_tickets("ルータ交換")] == [ticket.id]
    await flow.answer(ticket.id, "局内設備の故障で復旧", "alice")  # the answer corrected
    assert await tickets.similar_tickets("ルータ交換") == []
    assert [h.id for h in await tickets.similar_tickets("局内設備")] == [ticket.id]
    entry = await flow.save_kb("仮題", "質問", "回答", Category.OTHER, "alice")
    await flow.save_kb("証明書の更新", "質問", "回答", Category.CS, "alice", entry_id=entry.id)
    assert await tickets.similar_answers("仮題") == []
    assert [h.id for h in await tickets.similar_answers("証明書")] == [entry.id]


async def test_the_ticket_being_viewed_is_not_its_own_similar_ticket(tickets: TicketStore,
                                                                     flow: TicketWorkflow) -> None:
    first = await seed_past_ticket(flow)
    second = await flow.open(TicketDraft("muni-01-003", Category.NETWORK, "回線断", "函館市でも回線断"), "bob")
    assert [h.id for h in await tickets.similar_tickets("回線断", exclude=second.id)] == [first.id]


# --- workflow -----------------------------------------------------------------------------------------------------


async def test_a_call_answered_closed_and_reopened(flow: TicketWorkflow, tickets: TicketStore, audit: Audit) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    assert ticket.status is TicketStatus.RECEIVED and ticket.opened_by == "alice"
    ticket = await flow.move(ticket.id, TicketStatus.INVESTIGATING, "alice", "通信事業者へ確認中")
    ticket = await flow.answer(ticket.id, OTARU_ANSWER, "alice")
    ticket = await flow.move(ticket.id, TicketStatus.DONE, "alice")
    ticket = await flow.move(ticket.id, TicketStatus.INVESTIGATING, "bob", "再度回線断との連絡")
    history = await tickets.events(ticket.id)
    assert [(e.seq, e.actor, e.action) for e in history] == [
        (0, "alice", "opened"), (1, "alice", "status"), (2, "alice", "answered"), (3, "alice", "status"),
        (4, "bob", "status")]
    assert history[1].text == "通信事業者へ確認中" and history[4].data == {"old": "done", "new": "investigating"}
    assert [(action, target) for action, target, _ in audit.entries] == [
        ("ticket.open", f"ticket:{ticket.id}"), *[(a, f"ticket:{ticket.id}") for a in (
            "ticket.status", "ticket.answered", "ticket.status", "ticket.status")]]


@pytest.mark.parametrize(("path", "to"), [
    ((), TicketStatus.DONE),  # 受付 → 完了: never answered
    ((TicketStatus.INVESTIGATING,), TicketStatus.RECEIVED),  # no way back to 受付
    ((TicketStatus.INVESTIGATING,), TicketStatus.DONE),
])
async def test_forbidden_transitions_change_nothing(flow: TicketWorkflow, tickets: TicketStore,
                                                    path: tuple[TicketStatus, ...], to: TicketStatus) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    for step in path:
        ticket = await flow.move(ticket.id, step, "alice")
    with pytest.raises(WorkflowError) as refused:
        await flow.move(ticket.id, to, "alice")
    assert refused.value.key == "tickets.error.transition"
    assert (await tickets.ticket(ticket.id)) == ticket


async def test_answered_only_with_an_answer(flow: TicketWorkflow) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    with pytest.raises(WorkflowError, match="answer_required"):
        await flow.move(ticket.id, TicketStatus.ANSWERED, "alice")
    with pytest.raises(WorkflowError, match="required"):
        await flow.answer(ticket.id, "   ", "alice")
    answered = await flow.answer(ticket.id, "電話で回答済み", "alice")  # 受付 → 回答済 directly
    assert answered.status is TicketStatus.ANSWERED


@pytest.mark.parametrize(("draft", "key"), [
    (TicketDraft("muni-99-999", Category.NETWORK, "件名", "内容"), "tickets.error.caller"),
    (TicketDraft("national", Category.NETWORK, "件名", "内容"), "tickets.error.caller"),  # not a caller organisation
    (TicketDraft("muni-01-002", "printer", "件名", "内容"), "tickets.error.category"),  # type: ignore[arg-type]
    (TicketDraft("muni-01-002", Category.CS, " ", "内容"), "tickets.error.required"),
    (TicketDraft("muni-01-002", Category.CS, "件名", "あ" * 4001), "tickets.error.too_long"),
])
async def test_intake_refuses_what_cannot_be_a_ticket(flow: TicketWorkflow, tickets: TicketStore, audit: Audit,
                                                      draft: TicketDraft, key: str) -> None:
    with pytest.raises(WorkflowError) as refused:
        await flow.open(draft, "alice")
    assert refused.value.key == key
    assert await tickets.tickets() == [] and audit.entries == []


async def test_a_prefecture_can_call_too(flow: TicketWorkflow) -> None:
    ticket = await flow.open(TicketDraft("pref-47", Category.OPERATIONS, "運用時間延長", "年度末の時間延長を申請したい"), "bob")
    assert ticket.site == "pref-47"


async def test_linking_an_alarm_tells_the_noc(tickets: TicketStore, audit: Audit, small_inventory: Inventory) -> None:
    alerting = AlertingService(small_inventory, None, Outbox())
    fingerprint = "site_unreachable:muni-01-002"
    alerting.on_changes(Changes(raised=[Condition(fingerprint, ConditionKind.SITE_UNREACHABLE, "muni-01-002",
                                                  "critical", T0, "小樽市 全回線断")]))
    flow = TicketWorkflow(tickets, audit, small_inventory, alerting=alerting, clock=Clock())
    ticket = await flow.open(OTARU_LINES, "alice")
    with pytest.raises(WorkflowError, match="unknown_alarm"):
        await flow.link_alarm(ticket.id, "device_down:nowhere", "alice")
    ticket = await flow.link_alarm(ticket.id, fingerprint, "alice")
    assert ticket.alarms == (fingerprint,)
    assert [t.id for t in await tickets.tickets_for_alarm(fingerprint)] == [ticket.id]
    note = alerting.alarm(fingerprint).timeline[-1]  # type: ignore[union-attr]
    assert (note.action, note.actor) == ("commented", "alice") and f"問合せ #{ticket.id} (小樽市)" in note.text
    with pytest.raises(WorkflowError, match="already_linked"):
        await flow.link_alarm(ticket.id, fingerprint, "alice")
    ticket = await flow.unlink_alarm(ticket.id, fingerprint, "alice")
    assert ticket.alarms == () and await tickets.tickets_for_alarm(fingerprint) == []
    assert (await tickets.ticket(ticket.id)).alarms == ()  # type: ignore[union-attr]
    assert [a for a, _, _ in audit.entries] == ["ticket.open", "ticket.linked", "ticket.unlinked"]


async def test_an_answer_kept_in_the_knowledge_base(flow: TicketWorkflow, tickets: TicketStore, audit: Audit) -> None:
    ticket = await flow.open(OTARU_LINES, "alice")
    with pytest.raises(WorkflowError, match="answer_required"):
        await flow.answer_to_kb(ticket.id, "alice")
    await flow.answer(ticket.id, OTARU_ANSWER, "alice")
    entry = await flow.answer_to_kb(ticket.id, "alice")
    assert (entry.source_ticket, entry.answer, entry.category) == (ticket.id, OTARU_ANSWER, Category.NETWORK)
    edited = await flow.save_kb(entry.title, entry.question, "改訂した回答", entry.category, "bob", entry_id=entry.id)
    assert (edited.id, edited.created, edited.source_ticket) == (entry.id, entry.created, ticket.id)
    assert [h.answer for h in await tickets.similar_answers("転出証明書")] == ["改訂した回答"]
    assert audit.entries[-1] == ("kb.save", f"kb:{entry.id}", {"created": False, "source_ticket": ticket.id})


# --- PostgreSQL: what pg_trgm needs to index Japanese -------------------------------------------------------------


async def test_postgres_says_when_its_locale_cannot_index_japanese(postgres: PrivatePostgres, small_inventory: Inventory,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Under LC_CTYPE C (initdb --no-locale) pg_trgm sees no Japanese trigrams; under C.UTF-8 it does. Same answers."""
    utf8 = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(postgres.url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {utf8} TEMPLATE template0 ENCODING 'UTF8' "
                                "LC_CTYPE 'C.UTF-8' LC_COLLATE 'C.UTF-8'"))
    await admin.dispose()
    found = {}
    for name, url in (("C", postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")),
                      ("C.UTF-8", postgres.database_url(utf8))):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dashboards.tickets.search"):
            async with await Store.open(url) as store:
                tickets = await TicketStore.open(store)
                await seed_knowledge(TicketWorkflow(tickets, Audit(), small_inventory, clock=Clock()))
                found[name] = [h.title for h in await tickets.similar_answers("回線断が発生")]
        warned = [r for r in caplog.records if "cannot index Japanese" in r.getMessage()]
        assert bool(warned) is (name == "C"), name
    assert found["C"] == found["C.UTF-8"] == [LINE_DOWN.title]
