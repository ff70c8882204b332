"""The drill page (訓練): start a drill, pause, resume or abort it, watch it live, read its after-action report.

``/drills`` lists the built-in scenarios (mode, duration) with the start form — live
or tabletop (机上), simulated or real participants, a speed — or, while a drill
runs, its progress: the timeline so far, the expected actions with their deadlines
(met, missed, pending), the cascade's counts per report. ``/drills/panel`` is that
progress alone, fetched every few seconds by ``static/drills.js``. A finished drill
shows its metrics and links to its report (``/drills/reports/{run}/report.html``),
served from its directory. Only drill controllers (and the admin) see or act here;
every action is audited. The controller (``dashboards.drill_control``) lives in
``ctx.extra["drill_control"]``, made from the context on first use if the main job
did not make it.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.drill_control import REPORT_FILES, DrillControl, DrillRequest, DrillRequestError, DrillRun
from dashboards.pages import console_of, error_page, flash, render, see_other
from drills.scenario import ExpectationKind
from monitor.logs import fields

log = logging.getLogger("dashboards.views.drills")

HERE = "/drills"
CONTROLLERS = (UserRole.DRILL_CONTROLLER,)  # and the admin
SPEEDS = ("1", "10", "60", "600", "inf")  # the form's choices; 1 = real time


def control_of(request: Request) -> DrillControl:
    extra = console_of(request).ctx.extra
    control = extra.get("drill_control")
    if not isinstance(control, DrillControl):
        control = extra["drill_control"] = DrillControl.from_context(console_of(request).ctx)
    return control


def _t(request: Request) -> i18n.Translate:
    return i18n.translator(i18n.lang_of(request))


def _page_context(control: DrillControl) -> dict[str, Any]:
    run = control.current
    return {"run": run, "progress": control.progress(run) if run is not None else None,
            "actions": _actions(run), "running": run is not None and not run.done}


def _actions(run: DrillRun | None) -> list[str]:
    """The expected actions a person may record as done (each once in the list)."""
    if run is None:
        return []
    names = [x.action for x in run.scenario.expectations if x.kind is ExpectationKind.ACTION]
    return list(dict.fromkeys(names))


@require(*CONTROLLERS)
async def index(request: Request) -> Response:
    control = control_of(request)
    return render(request, "drills/index.html", {
        **_page_context(control), "scenarios": control.scenarios(), "past": control.past(), "speeds": SPEEDS,
        "live_possible": control.live_possible, "real_possible": control.real_possible})


@require(*CONTROLLERS)
async def panel(request: Request) -> Response:
    control = control_of(request)
    if control.current is None:
        return Response(status_code=204)  # no drill since the console started: nothing to show
    return render(request, "drills/_panel.html", _page_context(control))


@require(*CONTROLLERS)
async def start(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("scenario", ""))
    try:
        drill = DrillRequest(name, tabletop=form.get("mode") != "live", simulated=form.get("participants") != "real",
                             speed=_speed(str(form.get("speed", "1"))))
        run = control_of(request).start(drill, request.state.user.name)
    except DrillRequestError as exc:
        await audit(request, "drill.start", name, "failed", error=str(exc))
        flash(request, _t(request)(str(exc)), "error")
        return see_other(HERE)
    await audit(request, "drill.start", run.id, scenario=name, tabletop=drill.tabletop, simulated=drill.simulated,
                speed=str(drill.speed))
    flash(request, _t(request)("drills.started", title=run.scenario.title))
    return see_other(HERE)


def _speed(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DrillRequestError("drills.error.speed") from None


def _control_action(action: str) -> Any:
    """pause / resume / abort: the same shape — act on the current drill, audit, back to the page."""
    @require(*CONTROLLERS)
    async def endpoint(request: Request) -> Response:
        control = control_of(request)
        run = control.current
        done = getattr(control, action)() is not None
        target = run.id if run is not None else ""
        log.info("drill control", extra=fields(action=action, drill=target, done=done, user=request.state.user.name))
        return await _answer(request, f"drill.{action}", target, done, f"drills.{action}.{'done' if done else 'none'}")
    endpoint.__name__ = action
    return endpoint


@require(*CONTROLLERS)
async def record_action(request: Request) -> Response:
    """A real participant's expected action, recorded by the controller as done now (by them)."""
    form = await request.form()
    control = control_of(request)
    action = str(form.get("action", ""))
    user = request.state.user.name
    done = action in _actions(control.current) and control.record_action(action, user)
    return await _answer(request, "drill.action", action, done,
                         "drills.action.recorded" if done else "drills.action.refused", action=action)


async def _answer(request: Request, audited: str, target: str, done: bool, message: str, **values: str) -> Response:
    """Audit the control action (ok or failed), say how it went, back to the drill page."""
    await audit(request, audited, target, "ok" if done else "failed")
    flash(request, _t(request)(message, **values), "ok" if done else "error")
    return see_other(HERE)


@require(*CONTROLLERS)
async def report_file(request: Request) -> Response:
    name = request.path_params["name"]
    path = control_of(request).report_file(request.path_params["run"], name)
    if path is None:
        return error_page(request, 404, _t(request)("drills.error.no_report"))
    # The report is our own HTML (autoescaped, inline SVG, no script): still, no scripts may run in it.
    return FileResponse(path, media_type=REPORT_FILES[name],
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                                 "Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [
        Route(HERE, index),
        Route(f"{HERE}/panel", panel),
        Route(f"{HERE}/start", start, methods=["POST"]),
        *(Route(f"{HERE}/{action}", _control_action(action), methods=["POST"]) for action in ("pause", "resume",
                                                                                                "abort")),
        Route(f"{HERE}/action", record_action, methods=["POST"]),
        Route(HERE + "/reports/{run}/{name}", report_file),
    ]
