"""The ticket workflow (問合せ対応の流れ): what may change on a ticket, and the record every change leaves.

Statuses go 受付 → 調査中 → 回答済 → 完了, with the turns a call centre really
takes: a question answered on the phone goes from 受付 straight to 回答済; a
caller who calls back because it is not fixed sends 回答済 (or 完了) back to
調査中. Only a ticket with an answer can be 回答済.

Every change is saved with an event on the ticket's history and written to the
console's audit trail (``ticket.*`` / ``kb.save`` actions). Linking a ticket to
an alarm also comments on the alarm, so the NOC sees that the call centre has a
caller about it.

Errors are ``WorkflowError`` with a message-catalogue key and values, so the
page can say what is wrong in the operator's language.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Protocol

from dashboards.tickets.model import Category, KbEntry, Ticket, TicketDraft, TicketEvent, TicketStatus
from dashboards.tickets.store import TicketConflict, TicketStore
from monitor.inventory.model import Inventory, Tier

if TYPE_CHECKING:
    from alerting.service import AlertingService

CALLER_TIERS = frozenset({Tier.MUNICIPALITY, Tier.PREFECTURE})

ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.RECEIVED: frozenset({TicketStatus.INVESTIGATING, TicketStatus.ANSWERED}),
    TicketStatus.INVESTIGATING: frozenset({TicketStatus.ANSWERED}),
    TicketStatus.ANSWERED: frozenset({TicketStatus.DONE, TicketStatus.INVESTIGATING}),
    TicketStatus.DONE: frozenset({TicketStatus.INVESTIGATING}),
}

# Longest accepted texts: a call is described in a few lines, not pasted logs.
LIMITS = {"title": 200, "description": 4000, "caller_contact": 100, "answer": 8000, "comment": 2000, "question": 4000}


class WorkflowError(ValueError):
    """A change that cannot be made; ``key`` names the message (``tickets.error.*``), ``values`` fill it."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(f"{key} {values}" if values else key)
        self.key = key
        self.values = values


class Auditor(Protocol):
    """``partial(dashboards.audit.audit, request)``: records the request's user doing ``action`` on ``target``."""

    async def __call__(self, action: str, target: str = "", result: str = "ok", **detail: Any) -> Any: ...


class TicketWorkflow:
    """One operator's changes to tickets and the knowledge base (built per request, around the shared store)."""

    def __init__(self, store: TicketStore, audit: Auditor, inventory: Inventory, *,
                 alerting: AlertingService | None = None, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.audit = audit
        self.inventory = inventory
        self.alerting = alerting
        self.clock = clock or time.time

    # --- tickets ------------------------------------------------------------------------------------

    async def open(self, draft: TicketDraft, actor: str) -> Ticket:
        site = self.inventory.sites.get(draft.site)
        if site is None or site.tier not in CALLER_TIERS:
            raise WorkflowError("tickets.error.caller", site=draft.site)
        for fingerprint in draft.alarms:
            self._known_alarm(fingerprint)
        now = self.clock()
        ticket = Ticket(0, site.id, _category(draft.category), _text("title", draft.title),
                        _text("description", draft.description), TicketStatus.RECEIVED, now, now, actor,
                        _text("caller_contact", draft.caller, required=False), alarms=tuple(dict.fromkeys(draft.alarms)))
        saved = await self.store.create(ticket, TicketEvent(0, 0, now, actor, "opened", ticket.title,
                                                            {"site": site.id, "category": ticket.category.value}))
        await self.audit("ticket.open", f"ticket:{saved.id}", site=site.id, category=saved.category.value)
        for fingerprint in saved.alarms:
            await self._note_on_alarm(saved, fingerprint, actor)
        return saved

    async def move(self, ticket_id: int, to: TicketStatus, actor: str, note: str = "") -> Ticket:
        """Change the status (``to`` 回答済 needs an answer already given: use ``answer``)."""
        ticket = await self._ticket(ticket_id)
        try:
            to = TicketStatus(to)
        except ValueError:
            raise WorkflowError("tickets.error.transition", old=ticket.status.value, new=str(to)) from None
        if to not in ALLOWED[ticket.status]:
            raise WorkflowError("tickets.error.transition", old=ticket.status.value, new=to.value)
        if to is TicketStatus.ANSWERED and not ticket.answer:
            raise WorkflowError("tickets.error.answer_required")
        note = _text("comment", note, required=False)
        return await self._save(ticket, replace(ticket, status=to), actor, "status", note,
                                {"old": ticket.status.value, "new": to.value})

    async def answer(self, ticket_id: int, text: str, actor: str) -> Ticket:
        """Give (or correct) the answer; the ticket becomes 回答済."""
        ticket = await self._ticket(ticket_id)
        if ticket.status is not TicketStatus.ANSWERED and TicketStatus.ANSWERED not in ALLOWED[ticket.status]:
            raise WorkflowError("tickets.error.transition", old=ticket.status.value, new=TicketStatus.ANSWERED.value)
        answer = _text("answer", text)
        return await self._save(ticket, replace(ticket, answer=answer, status=TicketStatus.ANSWERED), actor,
                                "answered", answer, {"old": ticket.status.value, "new": TicketStatus.ANSWERED.value})

    async def comment(self, ticket_id: int, text: str, actor: str) -> Ticket:
        ticket = await self._ticket(ticket_id)
        return await self._save(ticket, ticket, actor, "commented", _text("comment", text), {})

    async def link_alarm(self, ticket_id: int, fingerprint: str, actor: str) -> Ticket:
        ticket = await self._ticket(ticket_id)
        self._known_alarm(fingerprint)
        if fingerprint in ticket.alarms:
            raise WorkflowError("tickets.error.already_linked", fingerprint=fingerprint)
        saved = await self._save(ticket, replace(ticket, alarms=(*ticket.alarms, fingerprint)), actor, "linked",
                                 fingerprint, {"fingerprint": fingerprint})
        await self._note_on_alarm(saved, fingerprint, actor)
        return saved

    async def unlink_alarm(self, ticket_id: int, fingerprint: str, actor: str) -> Ticket:
        ticket = await self._ticket(ticket_id)
        if fingerprint not in ticket.alarms:
            raise WorkflowError("tickets.error.not_linked", fingerprint=fingerprint)
        alarms = tuple(fp for fp in ticket.alarms if fp != fingerprint)
        return await self._save(ticket, replace(ticket, alarms=alarms), actor, "unlinked", fingerprint,
                                {"fingerprint": fingerprint})

    # --- knowledge base -----------------------------------------------------------------------------

    async def save_kb(self, title: str, question: str, answer: str, category: Category | str, actor: str, *,
                      entry_id: int = 0, source_ticket: int | None = None) -> KbEntry:
        """Add an entry (``entry_id`` 0) or replace one, keeping its creation time and origin."""
        now = self.clock()
        created = now
        if entry_id:
            old = await self.store.kb_entry(entry_id)
            if old is None:
                raise WorkflowError("tickets.error.kb_not_found", id=entry_id)
            created, source_ticket = old.created, old.source_ticket
        entry = await self.store.save_kb(KbEntry(entry_id, _text("title", title), _text("question", question),
                                                 _text("answer", answer), _category(category), actor, created, now,
                                                 source_ticket))
        await self.audit("kb.save", f"kb:{entry.id}", created=not entry_id, source_ticket=source_ticket)
        return entry

    async def answer_to_kb(self, ticket_id: int, actor: str) -> KbEntry:
        """Keep an answered ticket's question and answer in the knowledge base."""
        ticket = await self._ticket(ticket_id)
        if not ticket.answer:
            raise WorkflowError("tickets.error.answer_required")
        return await self.save_kb(ticket.title, ticket.description, ticket.answer, ticket.category, actor,
                                  source_ticket=ticket.id)

    # --- plumbing -----------------------------------------------------------------------------------

    async def _ticket(self, ticket_id: int) -> Ticket:
        ticket = await self.store.ticket(ticket_id)
        if ticket is None:
            raise WorkflowError("tickets.error.not_found", id=ticket_id)
        return ticket

    async def _save(self, old: Ticket, new: Ticket, actor: str, action: str, text: str,
                    data: dict[str, Any]) -> Ticket:
        now = self.clock()
        try:
            saved = await self.store.update(replace(new, updated=now), [TicketEvent(old.id, 0, now, actor, action,
                                                                                     text, data)])
        except TicketConflict:
            raise WorkflowError("tickets.error.conflict", id=old.id) from None
        await self.audit(f"ticket.{action}", f"ticket:{old.id}", **data)
        return saved

    def _known_alarm(self, fingerprint: str) -> None:
        if self.alerting is not None and self.alerting.alarm(fingerprint) is None:
            raise WorkflowError("tickets.error.unknown_alarm", fingerprint=fingerprint)

    async def _note_on_alarm(self, ticket: Ticket, fingerprint: str, actor: str) -> None:
        if self.alerting is None:
            return
        site = self.inventory.sites[ticket.site]
        await self.alerting.comment(fingerprint, actor, f"問合せ #{ticket.id} ({site.name}) に関連付け: {ticket.title}")


def _text(name: str, value: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise WorkflowError("tickets.error.required", field=name)
    if len(value) > LIMITS[name]:
        raise WorkflowError("tickets.error.too_long", field=name, limit=LIMITS[name])
    return value


def _category(value: Category | str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise WorkflowError("tickets.error.category", category=str(value)) from None
