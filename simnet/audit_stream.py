"""Simulated operator audit stream (操作ログ) of the business terminals, with labelled misuse.

Normal work: every municipality has staff in proportion to its business terminals
(業務端末, from the inventory); on business days of the operating calendar each
present operator logs in by vein biometrics (静脈認証, now and then failing once),
looks residents up and updates them under the 事務 their municipality is entitled
to, in a morning and an afternoon session inside the common window. Each agency's
情報提供サーバ makes instant provisions (即時提供) through the day and one batch a
month on its own business day. The national centre and prefectures have no
terminals in the inventory and so produce no records here.

Misuse scenarios (``plan_scenarios``) inject records for each detection type and a
``Label`` with the ground truth. Scenario actors are accounts the normal stream
does not use (``<site>-op9NN``), except bulk look-ups, made by a real staff member on
their own terminal: a scenario then shows only its own kind of misuse.

Everything is deterministic for a seed; records come out in time order, as dicts in
the documented format (docs/audit-records.md) or as JSON lines, or sent over TLS syslog
(``send_tls``) as the CS would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from monitor.japan_time import JST
from ids.operations.purposes import PURPOSES, Scope, purposes_of
from monitor.inventory import Inventory, Role, Tier
from monitor.schedule.window import OperatingCalendar

Record = dict[str, object]
_STAFF_PER_TERMINAL = 1.3
_PRESENT = 0.92  # share of staff at work on a business day (leave, training, sickness)
_UPDATE_SHARE = 0.25  # look-ups followed by an update of the same resident
# Weights of the municipality's 事務 in daily work (M01 住民票の記載等 dominates).
_PURPOSE_WEIGHTS = {"M01": 50, "M02": 15, "M03": 15, "M04": 10, "M05": 10}
# Agencies (agency-01 .. -08): residents in the monthly batch, instant provisions a day (seed 000).
_AGENCY_BATCH = (38_000_000, 10_527, 52_000, 20_000, 30_301, 8_011, 2_000, 12_000)
_AGENCY_DAILY = (400, 60, 40, 30, 80, 25, 20, 20)


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth of one injected scenario."""

    type: str  # an ids.operations AlertType value
    organisation: str
    operator: str | None
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class _Staff:
    site: str
    terminals: tuple[str, ...]
    operators: tuple[str, ...]


@dataclass
class Injection:
    records: list[tuple[float, Record]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


class AuditStream:
    """The operators of a network (or of ``sites`` only) at work, day by day, deterministic for ``seed``."""

    def __init__(self, inventory: Inventory, *, seed: int = 1, calendar: OperatingCalendar | None = None,
                 sites: Iterable[str] | None = None):
        self.calendar = calendar or OperatingCalendar()
        self._seed = seed
        chosen = set(sites) if sites is not None else None
        self._staff: list[_Staff] = []
        for site in inventory.sites_of_tier(Tier.MUNICIPALITY):
            if chosen is not None and site.id not in chosen:
                continue
            terminals = tuple(sorted(d.id for d in inventory.devices_by_site.get(site.id, ())
                                     if d.role is Role.TERMINAL))
            if terminals:
                staff = max(2, round(len(terminals) * _STAFF_PER_TERMINAL))
                self._staff.append(_Staff(site.id, terminals,
                                          tuple(f"{site.id}-op{n:03d}" for n in range(1, staff + 1))))
        self._agencies = sorted(s.id for s in inventory.sites_of_tier(Tier.AGENCY)
                                if chosen is None or s.id in chosen)
        self._municipalities = [s.id for s in inventory.sites_of_tier(Tier.MUNICIPALITY)]
        purposes = purposes_of("", Tier.MUNICIPALITY.value)
        self._purposes = [p.code for p in purposes]
        self._weights = [_PURPOSE_WEIGHTS.get(p.code, 1) for p in purposes]

    # -- the normal stream ------------------------------------------------------------------

    def records(self, start: dt.date, days: int, injection: Injection | None = None) -> Iterator[Record]:
        """Every record of ``days`` days from ``start`` in time order, with injected ones merged in."""
        injected = sorted(injection.records, key=lambda r: r[0]) if injection else []
        position = 0
        for offset in range(days):
            day = start + dt.timedelta(days=offset)
            end = _midnight(day + dt.timedelta(days=1))
            today = self._day(day)
            while position < len(injected) and injected[position][0] < end:
                today.append(injected[position])
                position += 1
            today.sort(key=lambda r: r[0])
            for ts, record in today:
                record["ts"] = _iso(ts)
                yield record

    def lines(self, start: dt.date, days: int, injection: Injection | None = None) -> Iterator[str]:
        dumps = json.dumps
        for record in self.records(start, days, injection):
            yield dumps(record, ensure_ascii=False)

    def _day(self, day: dt.date) -> list[tuple[float, Record]]:
        if not self.calendar.is_business_day(day):
            return []
        rng = random.Random(f"{self._seed}:{day.isoformat()}")
        midnight = _midnight(day)
        out: list[tuple[float, Record]] = []
        for staff in self._staff:
            for n, operator in enumerate(staff.operators):
                if rng.random() < _PRESENT:
                    terminal = staff.terminals[n % len(staff.terminals)]
                    self._working_day(rng, midnight, staff, operator, terminal, out)
        for agency in self._agencies:
            self._agency_day(rng, day, midnight, agency, out)
        return out

    def _working_day(self, rng: random.Random, midnight: float, staff: _Staff, operator: str, terminal: str,
                     out: list[tuple[float, Record]]) -> None:
        rate = rng.uniform(1.5, 4.0) / 3600  # this operator's look-ups per second today
        sessions = ((8.5 * 3600 + rng.uniform(0, 2700), 12 * 3600 - rng.uniform(0, 900)),
                    (13 * 3600 + rng.uniform(0, 1800), 17.25 * 3600 + rng.uniform(0, 4500)))
        for begin, end in sessions:
            t = midnight + begin
            for _ in range(_failures(rng)):
                out.append((t, _login(staff.site, terminal, operator, ok=False)))
                t += rng.uniform(5, 20)
            out.append((t, _login(staff.site, terminal, operator, ok=True)))
            t += rng.expovariate(rate)
            while t < midnight + end:
                self._data_access(rng, t, staff, operator, terminal, out)
                t += rng.expovariate(rate)

    def _data_access(self, rng: random.Random, t: float, staff: _Staff, operator: str, terminal: str,
                     out: list[tuple[float, Record]]) -> None:
        purpose = rng.choices(self._purposes, self._weights)[0]
        own = PURPOSES[purpose].scope is Scope.OWN or rng.random() < 0.3
        municipality = staff.site if own else rng.choice(self._municipalities)
        code = _code(rng)
        out.append((t, _access(staff.site, terminal, operator, "lookup", purpose, code, municipality)))
        if rng.random() < _UPDATE_SHARE:
            out.append((t + rng.uniform(30, 120),
                        _access(staff.site, terminal, operator, "update", purpose, code, municipality)))

    def _agency_day(self, rng: random.Random, day: dt.date, midnight: float, agency: str,
                    out: list[tuple[float, Record]]) -> None:
        k = int(agency.rsplit("-", 1)[1])
        for _ in range(round(_AGENCY_DAILY[(k - 1) % 8] * rng.uniform(0.8, 1.2))):
            t = midnight + rng.uniform(8.5 * 3600, 19 * 3600)
            out.append((t, _provision(agency, rng, count=1, code=_code(rng))))
        if self._business_day_number(day) == 2 + k:
            size = round(_AGENCY_BATCH[(k - 1) % 8] * rng.uniform(0.95, 1.05))
            out.append((midnight + 10 * 3600 + k * 600, _provision(agency, rng, count=size)))

    def _business_day_number(self, day: dt.date) -> int:
        """1 for the month's first business day, 0 if ``day`` is not one."""
        if not self.calendar.is_business_day(day):
            return 0
        return sum(self.calendar.is_business_day(day.replace(day=d)) for d in range(1, day.day + 1))

    # -- misuse scenarios ---------------------------------------------------------------------

    def plan_scenarios(self, start: dt.date, days: int, per_type: int = 3, seed: int = 0) -> Injection:
        """``per_type`` labelled scenarios of every detection type inside the period, at random places.

        Dormant accounts need a period of more than ``_DORMANT_GAP`` days, agency over-pulls
        at least ten business days; shorter periods get none of them.
        """
        rng = random.Random(f"scenarios:{self._seed}:{seed}")
        business = [start + dt.timedelta(days=i) for i in range(days)
                    if self.calendar.is_business_day(start + dt.timedelta(days=i))]
        closed = [start + dt.timedelta(days=i) for i in range(days)
                  if not self.calendar.is_business_day(start + dt.timedelta(days=i))]
        injection = Injection()
        sites = rng.sample(self._staff, k=min(len(self._staff), per_type * len(_SCENARIOS)))
        for n, scenario in enumerate(_SCENARIOS.values()):
            for i in range(per_type):
                staff = sites[(n * per_type + i) % len(sites)]
                actor = f"{staff.site}-op{900 + n * per_type + i}"
                context = _Context(self, rng, staff, actor, business, closed, i, injection)
                scenario(context)
        return injection


_DORMANT_GAP = 22  # days between a dormant account's two activities (detector default: 21)


@dataclass
class _Context:
    stream: AuditStream
    rng: random.Random
    staff: _Staff
    actor: str
    business: list[dt.date]
    closed: list[dt.date]
    instance: int
    injection: Injection

    def at(self, day: dt.date, hour: float) -> float:
        return _midnight(day) + hour * 3600 + self.rng.uniform(0, 600)

    def some_day(self, days: list[dt.date] | None = None) -> dt.date:
        return self.rng.choice(days or self.business)

    def emit(self, ts: float, record: Record) -> None:
        self.injection.records.append((ts, record))

    def label(self, kind: str, start: float, end: float, organisation: str | None = None,
              operator: str | None = None) -> None:
        self.injection.labels.append(Label(kind, organisation or self.staff.site, operator, start, end))

    def lookups(self, t: float, n: int, gap: float, *, terminal: str | None = None, operator: str | None = None,
                purpose: str | None = "M01", municipality: str | None = None,
                codes: Callable[[int], str] | None = None) -> float:
        """``n`` look-ups ``gap`` seconds apart from ``t``; returns the time of the last one."""
        terminal = terminal or self.staff.terminals[0]
        operator = operator or self.actor
        for i in range(n):
            code = codes(i) if codes else _code(self.rng)
            self.emit(t, _access(self.staff.site, terminal, operator, "lookup", purpose, code,
                                 municipality or self.staff.site))
            t += gap
        return t - gap

    def session(self, t: float, n: int = 3, **kwargs) -> float:
        self.emit(t, _login(self.staff.site, kwargs.get("terminal") or self.staff.terminals[0],
                            self.actor, ok=True))
        return self.lookups(t + 30, n, 60, **kwargs)


def _off_hours(c: _Context) -> None:
    # Alternate: a Saturday/holiday morning, or the evening after online operation has ended.
    day, hour = (c.some_day(c.closed), 10.0) if c.closed and c.instance % 2 == 0 else (c.some_day(), 21.5)
    t = c.at(day, hour)
    c.label("off_hours", t, c.session(t, 4), operator=c.actor)


def _bulk_lookup(c: _Context) -> None:
    n = c.rng.randrange(len(c.staff.operators))
    operator, terminal = c.staff.operators[n], c.staff.terminals[n % len(c.staff.terminals)]
    t = _midnight(c.some_day()) + 14 * 3600 + c.rng.uniform(0, 120)
    end = c.lookups(t, 250, 12.0, terminal=terminal, operator=operator)
    c.label("bulk_lookup", t, end, operator=operator)


def _unentitled(c: _Context) -> None:
    t = c.at(c.some_day(), 10)
    c.label("unentitled_purpose", t, c.session(t, 3, purpose=(None, "A01", "P01")[c.instance % 3]),
            operator=c.actor)


def _out_of_jurisdiction(c: _Context) -> None:
    elsewhere = c.rng.choice([m for m in c.stream._municipalities if m != c.staff.site])
    t = c.at(c.some_day(), 10.5)
    c.label("out_of_jurisdiction", t, c.session(t, 3, purpose="M01", municipality=elsewhere), operator=c.actor)


def _enumeration(c: _Context) -> None:
    base = c.rng.randrange(10**10, 9 * 10**10)
    stride = (1, 7, 1000)[c.instance % 3]  # adjacent codes, or a constant stride
    elsewhere = c.rng.choice(c.stream._municipalities)
    t = c.at(c.some_day(), 11)
    end = c.session(t, 30, purpose="M03", municipality=elsewhere, codes=lambda i: f"{base + i * stride:011d}")
    c.label("enumeration", t, end, operator=c.actor)


def _biometric(c: _Context) -> None:
    terminal = c.rng.choice(c.staff.terminals)
    t = start = c.at(c.some_day(), 15)
    for i in range(7):
        c.emit(t, _login(c.staff.site, terminal, f"{c.actor}-{i % 3}", ok=False))
        t += c.rng.uniform(20, 50)
    c.label("biometric_failures", start, t)


def _concurrent(c: _Context) -> None:
    first, second = c.staff.terminals[0], c.staff.terminals[1]
    t = c.at(c.some_day(), 10)
    c.emit(t, _login(c.staff.site, first, c.actor, ok=True))
    c.lookups(t + 30, 1, 0, terminal=first)
    c.emit(t + 50, _login(c.staff.site, second, c.actor, ok=True))
    c.lookups(t + 65, 1, 0, terminal=second)
    end = c.lookups(t + 80, 1, 0, terminal=first)
    c.label("concurrent_terminals", t + 50, end, operator=c.actor)


def _unknown_terminal(c: _Context) -> None:
    # A terminal that is not in the inventory, or one of another municipality.
    other = c.rng.choice([s for s in c.stream._staff if s.site != c.staff.site])
    terminal = f"{c.staff.site}-term99" if c.instance % 2 == 0 else other.terminals[0]
    t = c.at(c.some_day(), 13.5)
    c.label("unknown_terminal", t, c.session(t, 3, terminal=terminal), operator=c.actor)


def _dormant(c: _Context) -> None:
    first = c.business[0] if c.business else None
    later = [d for d in c.business if first and (d - first).days >= _DORMANT_GAP]
    if not later:
        return
    c.session(c.at(first, 10), 5)
    t = c.at(c.some_day(later), 10)
    c.label("dormant_account", t, c.session(t, 5), operator=c.actor)


def _agency_overpull(c: _Context) -> None:
    agencies = c.stream._agencies
    if len(c.business) < 10 or not agencies:
        return
    agency = agencies[c.instance % len(agencies)]
    k = int(agency.rsplit("-", 1)[1])
    day = c.some_day(c.business[9:])
    if c.instance % 2 == 0:  # a second batch this month, five times the usual size
        t = _midnight(day) + 15 * 3600
        c.emit(t, _provision(agency, c.rng, count=_AGENCY_BATCH[(k - 1) % 8] * 5))
        c.label("agency_overpull", t, t, organisation=agency)
        return
    t = start = _midnight(day) + 13 * 3600  # instant provisions: eight days' worth in two hours
    for _ in range(_AGENCY_DAILY[(k - 1) % 8] * 8):
        c.emit(t, _provision(agency, c.rng, count=1, code=_code(c.rng)))
        t += 7200 / (_AGENCY_DAILY[(k - 1) % 8] * 8)
    c.label("agency_overpull", start, t, organisation=agency)


_SCENARIOS: dict[str, Callable[[_Context], None]] = {
    "off_hours": _off_hours,
    "bulk_lookup": _bulk_lookup,
    "unentitled_purpose": _unentitled,
    "out_of_jurisdiction": _out_of_jurisdiction,
    "enumeration": _enumeration,
    "biometric_failures": _biometric,
    "concurrent_terminals": _concurrent,
    "unknown_terminal": _unknown_terminal,
    "dormant_account": _dormant,
    "agency_overpull": _agency_overpull,
}
SCENARIO_TYPES = tuple(_SCENARIOS)


# -- records --------------------------------------------------------------------------------

def _code(rng: random.Random) -> str:
    return f"{rng.randrange(10**11):011d}"


def _failures(rng: random.Random) -> int:
    """Failed vein readings before a login succeeds (cold hands, misplaced palm)."""
    draw = rng.random()
    return 2 if draw < 0.01 else 1 if draw < 0.05 else 0


def _login(site: str, terminal: str, operator: str, *, ok: bool) -> Record:
    return {"organisation": site, "terminal": terminal, "operator": operator,
            "action": "login_ok" if ok else "login_fail"}


def _access(site: str, terminal: str, operator: str, action: str, purpose: str | None, code: str,
            municipality: str) -> Record:
    return {"organisation": site, "terminal": terminal, "operator": operator, "action": action,
            "purpose": purpose, "resident": code, "resident_municipality": municipality}


def _provision(agency: str, rng: random.Random, *, count: int, code: str | None = None) -> Record:
    k = int(agency.rsplit("-", 1)[1])
    record: Record = {"organisation": agency, "terminal": f"{agency}-server", "operator": f"{agency}-system",
                      "action": "provision", "purpose": f"A{k:02d}", "resident_count": count}
    if code is not None:
        record["resident"] = code
        record["resident_municipality"] = None
    return record


def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), JST).timestamp()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), JST).isoformat()


def write_jsonl(path: Path, lines: Iterable[str]) -> int:
    """Write JSON lines; returns how many."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line)
            out.write("\n")
            n += 1
    return n


async def send_tls(lines: Iterable[str], host: str, port: int, context: ssl.SSLContext) -> int:
    """Send records as the CS would: RFC 5424 messages (facility log audit) octet-counted over TLS."""
    _, writer = await asyncio.open_connection(host, port, ssl=context)
    sent = 0
    try:
        for line in lines:
            message = f"<110>1 - - jukimon-audit - - - {line}".encode()
            writer.write(b"%d %s" % (len(message), message))
            sent += 1
            if sent % 1000 == 0:
                await writer.drain()
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()
    return sent


def main(argv: list[str] | None = None) -> int:
    """``python -m simnet.audit_stream --start 2026-12-07 --days 7 OUT.jsonl [--scenarios 3]``"""
    from monitor.inventory import default_inventory

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 12, 7))
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", type=int, default=0, help="labelled scenarios per type (labels: OUT.labels.json)")
    args = parser.parse_args(argv)
    stream = AuditStream(default_inventory(), seed=args.seed)
    injection = stream.plan_scenarios(args.start, args.days, args.scenarios) if args.scenarios else None
    n = write_jsonl(args.out, stream.lines(args.start, args.days, injection))
    if injection:
        args.out.with_suffix(".labels.json").write_text(
            json.dumps([label_dict(label) for label in injection.labels], ensure_ascii=False, indent=1))
    print(f"{n} records → {args.out}")
    return 0


def label_dict(label: Label) -> dict[str, object]:
    return {"type": label.type, "organisation": label.organisation, "operator": label.operator,
            "start": _iso(label.start), "end": _iso(label.end)}


if __name__ == "__main__":
    raise SystemExit(main())
