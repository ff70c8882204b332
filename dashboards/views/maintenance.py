"""Planned work and quiet periods (保守・サイレンス): maintenance windows and alarm silences, listed, made and ended.

A maintenance window (``monitor.maintenance``) tells the state engine that a
device, site or prefecture is being worked on: it is MAINTENANCE, not DOWN, and
its conditions are recorded without alarms. Windows are added to the engine's
book (in force at its next judgement) and saved in the store, so a restart
keeps them. A silence (``alerting.silences``) only stops notifications for the
alarms its matchers select; they stay on the board. Times are typed and shown
in Japan time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerting.silences import SilenceError, match_all
from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.context import ConsoleContext
from dashboards.pages import console_of, flash, render, see_other
from monitor.inventory.model import Inventory, Tier
from monitor.japan_time import JST
from monitor.maintenance import MaintenanceBook, MaintenanceError, MaintenanceWindow, Recurrence, ScopeKind

ROLES = (UserRole.NOC_OPERATOR,)
HERE = "/maintenance"
DEFAULT_HOURS = 2


@require(*ROLES)
async def page(request: Request) -> Response:
    console = console_of(request)
    ctx, now = console.ctx, console.now()
    windows = sorted(_book(ctx).windows(), key=lambda w: (w.final_end <= now, w.start))
    silences = sorted(ctx.alerting.silences.silences.values(), key=lambda s: (s.state(now) == "expired", -s.created)
                      ) if ctx.alerting else []
    open_alarms = ctx.alerting.open_alarms() if ctx.alerting else []
    return render(request, "maintenance/index.html", {
        "windows": [(w, _window_state(w, now), _scope_name(ctx.inventory, w)) for w in windows],
        "silences": [(s, s.state(now), sum(match_all(s.matchers, a.labels) for a in open_alarms)) for s in silences],
        "has_alerting": ctx.alerting is not None, "scope_kinds": list(ScopeKind), "recurrences": list(Recurrence),
        "default_start": _local(now), "default_end": _local(now + DEFAULT_HOURS * 3600)})


@require(*ROLES)
async def add_window(request: Request) -> Response:
    console = console_of(request)
    ctx = console.ctx
    form = {k: str(v).strip() for k, v in (await request.form()).items()}
    t = _t(request)
    try:
        kind = ScopeKind(form.get("scope_kind", ""))
        recurrence = Recurrence(form["recurrence"]) if form.get("recurrence") else None
        window = MaintenanceWindow(
            f"mw-{uuid.uuid4().hex[:10]}", kind, _scope_id(ctx.inventory, kind, form.get("scope", "")),
            _moment(form.get("start", "")), _moment(form.get("end", "")), request.state.user.name,
            form.get("reason", ""), recurrence, _moment(form["until"]) if recurrence and form.get("until") else None,
            created=console.now())
        _book(ctx).add(window)
    except (MaintenanceError, ValueError) as exc:
        await audit(request, "maintenance.create", form.get("scope", ""), "failed", error=str(exc))
        flash(request, t("maintenance.error", reason=str(exc)), "error")
        return see_other(HERE)
    await ctx.store.save_maintenance(window.id, window.to_json(), window.start, window.final_end)
    await audit(request, "maintenance.create", window.id, scope=f"{window.scope_kind}:{window.scope_id}",
                start=window.start, end=window.end, recurrence=recurrence.value if recurrence else None)
    flash(request, t("maintenance.created", scope=_scope_name(ctx.inventory, window)))
    return see_other(HERE)


@require(*ROLES)
async def remove_window(request: Request) -> Response:
    ctx = console_of(request).ctx
    window_id = request.path_params["window_id"]
    removed = _book(ctx).remove(window_id)
    await ctx.store.delete_maintenance(window_id)
    await audit(request, "maintenance.delete", window_id, "ok" if removed else "failed")
    flash(request, _t(request)("maintenance.deleted" if removed else "maintenance.not_found", id=window_id),
          "ok" if removed else "error")
    return see_other(HERE)


@require(*ROLES)
async def add_silence(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    t = _t(request)
    matchers = [line.strip() for line in str(form.get("matchers", "")).splitlines() if line.strip()]
    try:
        if console.ctx.alerting is None:
            raise SilenceError(t("maintenance.no_alerting"))
        silence = await console.ctx.alerting.add_silence(
            matchers, _moment(str(form.get("start", ""))), _moment(str(form.get("end", ""))),
            request.state.user.name, str(form.get("reason", "")))
    except (SilenceError, ValueError) as exc:
        await audit(request, "silence.create", " ".join(matchers), "failed", error=str(exc))
        flash(request, t("maintenance.error", reason=str(exc)), "error")
        return see_other(HERE)
    await audit(request, "silence.create", silence.id, matchers=[str(m) for m in silence.matchers],
                start=silence.start, end=silence.end)
    console.live.alarms_changed()
    flash(request, t("silences.created", id=silence.id))
    return see_other(HERE)


@require(*ROLES)
async def expire_silence(request: Request) -> Response:
    console = console_of(request)
    silence_id = request.path_params["silence_id"]
    t = _t(request)
    try:
        if console.ctx.alerting is None:
            raise SilenceError(t("maintenance.no_alerting"))
        await console.ctx.alerting.expire_silence(silence_id, request.state.user.name)
    except SilenceError as exc:
        await audit(request, "silence.expire", silence_id, "failed", error=str(exc))
        flash(request, t("maintenance.error", reason=str(exc)), "error")
        return see_other(HERE)
    await audit(request, "silence.expire", silence_id)
    console.live.alarms_changed()
    flash(request, t("silences.expired", id=silence_id))
    return see_other(HERE)


def _book(ctx: ConsoleContext) -> MaintenanceBook:
    """The book the state engine judges by (the context names it; the engine always has one)."""
    return ctx.maintenance if ctx.maintenance is not None else ctx.engine.maintenance


def _scope_id(inventory: Inventory, kind: ScopeKind, typed: str) -> str:
    """A site or prefecture may be typed by name (小樽市, 北海道) as well as by id or JIS code."""
    if kind is ScopeKind.DEVICE or typed in inventory.sites:
        return typed
    named = [s for s in inventory.sites.values() if s.name == typed]
    if kind is ScopeKind.SITE and len(named) == 1:
        return named[0].id
    if kind is ScopeKind.PREFECTURE:
        prefecture = next((s.prefecture for s in named if s.tier is Tier.PREFECTURE), None)
        return prefecture or typed
    return typed


def _scope_name(inventory: Inventory, window: MaintenanceWindow) -> str:
    if window.scope_kind is ScopeKind.DEVICE:
        device = inventory.devices.get(window.scope_id)
        return device.name if device else window.scope_id
    if window.scope_kind is ScopeKind.SITE:
        site = inventory.sites.get(window.scope_id)
        return site.name if site else window.scope_id
    names = {s.prefecture: s.name for s in inventory.sites_of_tier(Tier.PREFECTURE)}
    return names.get(window.scope_id, window.scope_id)


def _window_state(window: MaintenanceWindow, now: float) -> str:
    if window.is_active(now):
        return "active"
    return "ended" if window.final_end <= now else "planned"


def _moment(value: str) -> float:
    """``2026-12-02T10:00`` (an HTML datetime-local field, or a date alone) in Japan time, as epoch seconds."""
    if not value:
        raise ValueError("日時を入力してください / a date and time is required")
    return dt.datetime.fromisoformat(value).replace(tzinfo=JST).timestamp()


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, JST).strftime("%Y-%m-%dT%H:%M")


def _t(request: Request) -> i18n.Translate:
    return i18n.translator(i18n.lang_of(request))


def routes() -> list[Any]:
    return [Route(HERE, page), Route(f"{HERE}/windows", add_window, methods=["POST"]),
            Route(f"{HERE}/windows/{{window_id}}/delete", remove_window, methods=["POST"]),
            Route(f"{HERE}/silences", add_silence, methods=["POST"]),
            Route(f"{HERE}/silences/{{silence_id}}/expire", expire_silence, methods=["POST"])]
