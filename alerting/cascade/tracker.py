"""Receipt tracking (受信確認の管理): for every report and organisation, sent, delivered, confirmed, reminded.

The tracker owns the cascade's state in memory and writes every change through the
``CascadeStore`` before it answers (so a confirmation shown to a person is saved,
and an accepted message is never sent again after a restart). It decides nothing
about transport: the sender asks it what to send (``pending``, ``due_reminders``)
and tells it what happened (``record_sent``, ``record_reminded``).

Counts are computed from the deliveries themselves each time they are asked for,
so they are exact by construction. A report's *targets* are every organisation it
is for, including municipalities whose prefecture has not forwarded it yet; those
count as missing until they confirm.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Callable, Iterable

from alerting.cascade.model import (NATIONAL, CascadeSettings, Channel, Delivery, Directory, Forwarding, Incident,
                                    Organisation, OrgTier, Report)
from alerting.cascade.store import CascadeStore, Forward
from monitor.logs import fields as log_fields

log = logging.getLogger("alerting.cascade.tracker")

SYSTEM_ACTOR = "jukimon"


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"  # recorded now
    ALREADY = "already"  # confirmed before: the first confirmation stands


@dataclass(frozen=True, slots=True)
class Confirmation:
    outcome: ConfirmOutcome
    delivery: Delivery
    report: Report
    incident: Incident
    org: Organisation | None  # None only if the directory no longer lists it

    @property
    def at(self) -> float:
        return self.delivery.confirmed_at or 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    targets: int  # organisations the report is for
    planned: int  # deliveries created (the rest wait for their prefecture to forward)
    sent: int
    delivered: int  # accepted by SMTP
    failed: int  # not delivered, last attempt failed
    confirmed: int
    missing: int  # targets not confirmed
    overdue: int  # delivered, not confirmed, past the confirmation deadline
    reminded: int  # organisations reminded at least once
    reminders: int  # reminder messages sent in all
    awaiting_forward: int  # prefectures that forward themselves and have not yet


@dataclass(frozen=True, slots=True)
class PrefectureProgress:
    id: str
    code: str
    name: str
    forwarding: str  # Forwarding value
    forwarded_by: str | None
    forwarded_at: float | None
    targets: int  # the prefecture and its municipalities
    delivered: int
    confirmed: int


@dataclass(frozen=True, slots=True)
class Missing:
    id: str
    name: str
    tier: str
    prefecture: str | None
    status: str  # not_forwarded | not_sent | failed | unconfirmed | overdue
    reminders: int


@dataclass(frozen=True, slots=True)
class Progress:
    """A report's live progress for the console: counts, per prefecture, and who is missing."""

    report: str
    label: str
    incident: str
    title: str
    drill: bool
    at: float
    counts: Counts
    prefectures: list[PrefectureProgress]
    missing: list[Missing]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Tracker:
    """The cascade's state: incidents, reports, deliveries, forwards.

    Planning (``add_report``, ``forward``) must not run concurrently with itself: ``Cascade`` serialises it.
    """

    def __init__(self, store: CascadeStore, directory: Directory, *, confirm_within: float = 1800.0,
                 reminder_interval: float = 900.0, max_reminders: int = 3,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.directory = directory
        self.confirm_within = confirm_within
        self.reminder_interval = reminder_interval
        self.max_reminders = max_reminders
        self.clock = clock
        self.incidents: dict[str, Incident] = {}
        self.reports: dict[str, Report] = {}
        self._deliveries: dict[str, dict[str, Delivery]] = {}  # report id → org id → delivery
        self._forwards: dict[tuple[str, str], Forward] = {}  # (report, prefecture org id) → forward

    @classmethod
    async def open(cls, store: CascadeStore, directory: Directory, settings: CascadeSettings,
                   clock: Callable[[], float] = time.time) -> Tracker:
        """A tracker with everything the store holds (after a restart: exactly where it stopped)."""
        tracker = cls(store, directory, confirm_within=settings.confirm_within,
                      reminder_interval=settings.reminder_interval, max_reminders=settings.max_reminders,
                      clock=clock)
        await tracker.load()
        return tracker

    async def load(self) -> None:
        snapshot = await self.store.load()
        self.incidents = {i.id: i for i in snapshot.incidents}
        self.reports = {r.id: r for r in sorted(snapshot.reports, key=lambda r: (r.incident, r.sequence))}
        self._deliveries = {r: {} for r in self.reports}
        for delivery in snapshot.deliveries:
            self._deliveries.setdefault(delivery.report, {})[delivery.org] = delivery
        self._forwards = {(f.report, f.prefecture): f for f in snapshot.forwards}
        log.info("cascade state loaded", extra=log_fields(incidents=len(self.incidents), reports=len(self.reports),
                                                          deliveries=len(snapshot.deliveries)))

    # --- issuing ------------------------------------------------------------------------------

    async def open_incident(self, incident: Incident) -> Incident:
        """Record an incident (again: no change); returns the one on record."""
        known = self.incidents.get(incident.id)
        if known is not None:
            return known
        await self.store.save_incident(incident)
        self.incidents[incident.id] = incident
        return incident

    async def add_report(self, report: Report) -> list[Delivery]:
        """Plan a report's deliveries: prefectures in scope (and agencies), plus the municipalities of
        prefectures Jukimon forwards for. Issuing the same report again plans nothing new."""
        if report.incident not in self.incidents:
            raise ValueError(f"report {report.id}: unknown incident {report.incident}")
        known = self.reports.get(report.id)
        if known is not None:
            if known != report:
                raise ValueError(f"report {report.id} was already issued with other content")
            return []
        finished = [r.id for r in self.reports.values() if r.incident == report.incident and r.final]
        if finished:
            raise ValueError(f"incident {report.incident} is closed by its final report {finished[0]}")
        now = self.clock()
        planned: list[Delivery] = []
        forwarded: list[Forward] = []
        for pref in self.directory.prefectures(report.scope):
            planned.append(Delivery(report.id, pref.id, NATIONAL, planned_at=now))
            if self.directory.forwarding_of(pref) is Forwarding.SYSTEM:
                forwarded.append(Forward(report.id, pref.id, SYSTEM_ACTOR, True, now))
                planned.extend(Delivery(report.id, m.id, pref.id, on_behalf=True, planned_at=now)
                               for m in self.directory.municipalities(pref))
        if not report.scope:
            planned.extend(Delivery(report.id, a.id, NATIONAL, planned_at=now) for a in self.directory.agencies())
        await self.store.save_report(report, planned, forwarded)
        self.reports[report.id] = report
        self._deliveries[report.id] = {d.org: d for d in planned}
        self._forwards.update({(f.report, f.prefecture): f for f in forwarded})
        log.info("cascade report planned", extra=log_fields(
            report=report.id, label=report.label, deliveries=len(planned), forwarded_by_system=len(forwarded)))
        return planned

    async def forward(self, report_id: str, prefecture_id: str, by: str) -> list[Delivery]:
        """The prefecture forwards the report to its municipalities (once; again plans nothing)."""
        report = self.reports.get(report_id)
        pref = self.directory.organisations.get(prefecture_id)
        if report is None or pref is None or pref.tier is not OrgTier.PREFECTURE:
            raise ValueError(f"no report {report_id} or no prefecture {prefecture_id}")
        if prefecture_id not in self._deliveries[report_id]:
            raise ValueError(f"report {report_id} was not sent to {prefecture_id}")
        if (report_id, prefecture_id) in self._forwards:
            return []
        now = self.clock()
        planned = [Delivery(report_id, m.id, pref.id, planned_at=now) for m in self.directory.municipalities(pref)]
        forward = Forward(report_id, prefecture_id, by, False, now)
        await self.store.save_forward(forward, planned)
        self._forwards[(report_id, prefecture_id)] = forward
        self._deliveries[report_id].update({d.org: d for d in planned})
        log.info("cascade report forwarded", extra=log_fields(report=report_id, prefecture=prefecture_id, by=by,
                                                              deliveries=len(planned)))
        return planned

    # --- what to send, and what happened ------------------------------------------------------

    def pending(self, report_id: str | None = None) -> list[Delivery]:
        """Deliveries not yet accepted by SMTP (new, failed, or interrupted by a restart)."""
        return [d for d in self._iter(report_id) if d.delivered_at is None]

    def due_reminders(self) -> list[Delivery]:
        """Delivered, unconfirmed, past the deadline, and not reminded within the reminder interval."""
        now = self.clock()
        return [d for d in self._iter(None)
                if d.delivered_at is not None and d.confirmed_at is None and d.reminders < self.max_reminders
                and now >= self.deadline(d)
                and (d.reminded_at is None or now >= d.reminded_at + self.reminder_interval)]

    def deadline(self, delivery: Delivery) -> float:
        """When a receipt is due: ``confirm_within`` after the message reached the recipient's server."""
        return (delivery.delivered_at or delivery.sent_at or delivery.planned_at) + self.confirm_within

    async def record_sent(self, results: Iterable[tuple[Delivery, str | None]]) -> None:
        """SMTP outcomes of first sends: ``None`` = accepted, else the error text."""
        now = self.clock()
        changed = []
        for delivery, error in results:
            delivery.sent_at = delivery.sent_at or now
            delivery.attempts += 1
            if error is None:
                delivery.delivered_at, delivery.error = now, ""
            else:
                delivery.error = error
            changed.append(delivery)
        await self.store.save_deliveries(changed)

    async def record_reminded(self, results: Iterable[tuple[Delivery, str | None]]) -> None:
        now = self.clock()
        changed = []
        for delivery, error in results:
            if error is None:
                delivery.reminders += 1
                delivery.reminded_at = now
                changed.append(delivery)
            else:  # the delivery stays due: the next round tries again
                log.warning("cascade reminder not delivered", extra=log_fields(
                    report=delivery.report, org=delivery.org, error=error))
        await self.store.save_deliveries(changed)

    async def confirm(self, report_id: str, org_id: str, via: Channel, by: str) -> Confirmation | None:
        """Record a receipt (the first one stands); None if the report was not sent to this organisation."""
        delivery = self._deliveries.get(report_id, {}).get(org_id)
        if delivery is None:
            return None
        report = self.reports[report_id]
        outcome = ConfirmOutcome.ALREADY
        if delivery.confirmed_at is None:
            outcome = ConfirmOutcome.CONFIRMED
            delivery.confirmed_at, delivery.confirmed_via, delivery.confirmed_by = self.clock(), via.value, by
            await self.store.save_deliveries([delivery])
        return Confirmation(outcome, delivery, report, self.incidents[report.incident],
                            self.directory.organisations.get(org_id))

    # --- reading ------------------------------------------------------------------------------

    def delivery(self, report_id: str, org_id: str) -> Delivery | None:
        return self._deliveries.get(report_id, {}).get(org_id)

    def deliveries(self, report_id: str) -> list[Delivery]:
        return list(self._deliveries.get(report_id, {}).values())

    def forward_of(self, report_id: str, prefecture_id: str) -> Forward | None:
        return self._forwards.get((report_id, prefecture_id))

    def overdue(self, report_id: str) -> list[Delivery]:
        now = self.clock()
        return [d for d in self._iter(report_id) if self._overdue(d, now)]

    def counts(self, report_id: str) -> Counts:
        report = self.reports[report_id]
        now = self.clock()
        ds = self.deliveries(report_id)
        targets = len(self.directory.targets(report))
        confirmed = sum(d.confirmed_at is not None for d in ds)
        return Counts(
            targets=targets, planned=len(ds),
            sent=sum(d.sent_at is not None for d in ds),
            delivered=sum(d.delivered_at is not None for d in ds),
            failed=sum(d.delivered_at is None and bool(d.error) for d in ds),
            confirmed=confirmed, missing=targets - confirmed,
            overdue=sum(self._overdue(d, now) for d in ds),
            reminded=sum(d.reminders > 0 for d in ds), reminders=sum(d.reminders for d in ds),
            awaiting_forward=sum((report_id, p.id) not in self._forwards
                                 for p in self.directory.prefectures(report.scope)))

    def progress(self, report_id: str) -> Progress:
        report = self.reports[report_id]
        incident = self.incidents[report.incident]
        planned = self._deliveries[report_id]
        prefectures = []
        for pref in self.directory.prefectures(report.scope):
            members = [pref, *self.directory.municipalities(pref)]
            ds = [planned[o.id] for o in members if o.id in planned]
            forward = self._forwards.get((report_id, pref.id))
            prefectures.append(PrefectureProgress(
                pref.id, pref.prefecture or "", pref.name, self.directory.forwarding_of(pref).value,
                forward.by if forward else None, forward.at if forward else None, len(members),
                sum(d.delivered_at is not None for d in ds), sum(d.confirmed_at is not None for d in ds)))
        now = self.clock()
        missing = [Missing(o.id, o.name, o.tier.value, o.prefecture, self._status(planned.get(o.id), now),
                           planned[o.id].reminders if o.id in planned else 0)
                   for o in self.directory.targets(report)
                   if o.id not in planned or planned[o.id].confirmed_at is None]
        return Progress(report_id, report.label, incident.id, incident.title, incident.drill, now,
                        self.counts(report_id), prefectures, missing)

    def _iter(self, report_id: str | None) -> Iterable[Delivery]:
        if report_id is not None:
            return self._deliveries.get(report_id, {}).values()
        return (d for ds in self._deliveries.values() for d in ds.values())

    def _overdue(self, d: Delivery, now: float) -> bool:
        return d.delivered_at is not None and d.confirmed_at is None and now >= self.deadline(d)

    def _status(self, d: Delivery | None, now: float) -> str:
        if d is None:
            return "not_forwarded"
        if d.delivered_at is None:
            return "failed" if d.error else "not_sent"
        return "overdue" if self._overdue(d, now) else "unconfirmed"
