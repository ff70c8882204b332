"""The call centre's records (コールセンター): tickets from callers, their history, and the knowledge base of answers.

A ticket (問合せ) is one call from a municipality or prefecture: who called
(the caller's site in the inventory), what about (category), what they said,
and — once known — the answer. It moves through four statuses (受付 → 調査中 →
回答済 → 完了; ``dashboards.tickets.workflow`` owns the rules) and may be linked to
the alarms that explain it, by fingerprint. Every change is a ``TicketEvent``.

A knowledge-base entry (ナレッジ) is a question and its answer kept for the next
caller with the same problem; it may come from a ticket.

Times are epoch seconds. Nothing here holds a resident's identity: callers are
organisations, and the free text is the staff's own description of the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TicketStatus(StrEnum):
    RECEIVED = "received"  # 受付
    INVESTIGATING = "investigating"  # 調査中
    ANSWERED = "answered"  # 回答済
    DONE = "done"  # 完了


OPEN_STATUSES = frozenset({TicketStatus.RECEIVED, TicketStatus.INVESTIGATING, TicketStatus.ANSWERED})


class Category(StrEnum):
    """What the call is about, in the words the call centre sorts by."""

    NETWORK = "network"  # 通信・回線 (CS unreachable, leased line, FW)
    CS = "cs"  # コミュニケーションサーバ
    TERMINAL = "terminal"  # 業務端末
    AUTHENTICATION = "authentication"  # 操作者認証 (IC card, vein biometrics)
    FILE_DELIVERY = "file_delivery"  # ファイル配信 (programs, settings)
    OPERATIONS = "operations"  # 運用 (operating window, start-up / shut-down, batch)
    SECURITY = "security"  # セキュリティ (virus, suspicious access)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What the call-centre operator types in at intake."""

    site: str  # caller organisation: a municipality or prefecture site id of the inventory
    category: Category
    title: str
    description: str
    caller: str = ""  # contact person or section at the caller, as they gave it (optional)
    alarms: tuple[str, ...] = ()  # fingerprints of alarms already known to explain the call


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    site: str
    category: Category
    title: str
    description: str
    status: TicketStatus
    created: float
    updated: float
    opened_by: str
    caller: str = ""
    answer: str = ""
    alarms: tuple[str, ...] = ()  # linked alarm fingerprints, in the order they were linked
    version: int = 0  # bumped by every save: two operators cannot overwrite each other's change

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One thing that happened to a ticket, for its history (and the audit trail, separately)."""

    ticket: int
    seq: int
    at: float
    actor: str
    action: str  # opened, status, answered, commented, linked, unlinked
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KbEntry:
    """A question and its answer, kept to answer the next caller (0 as id: not saved yet)."""

    id: int
    title: str
    question: str
    answer: str
    category: Category
    author: str
    created: float
    updated: float
    source_ticket: int | None = None  # the ticket this answer was first given on


class HitKind(StrEnum):
    TICKET = "ticket"
    KB = "kb"


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A past ticket or knowledge-base entry similar to the text searched for."""

    kind: HitKind
    id: int
    title: str
    text: str  # the ticket's description or the entry's question
    answer: str
    score: float  # higher is closer: each term found counts its length times its rarity
    matched: tuple[str, ...]  # the terms found, to highlight why it came up
    status: TicketStatus | None = None  # tickets only
    site: str | None = None  # tickets only
