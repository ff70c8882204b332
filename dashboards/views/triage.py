"""The call centre's intake (受付) and tickets: a caller picked by name or code, their site's live status beside the form.

``/triage``: the intake form; as soon as the caller is known (type-ahead over
``/triage/callers.json``, or the 確認 button without JavaScript) the side panel
shows the site's state, its devices and lines, its open alarms, maintenance and
recent changes, and the similar past tickets and knowledge-base answers for what
is typed. ``/triage/tickets`` lists tickets; ``/triage/tickets/{id}`` shows one
with its history and the workflow's actions (``dashboards.tickets.workflow``).
Every change is a POST with the CSRF token, redirected (303) after it is done.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import require
from dashboards.pages import console_of, error_page, flash, render, see_other
from dashboards.tickets import (ALLOWED, OPEN_STATUSES, Category, Ticket, TicketDraft, TicketStatus, TicketStore,
                                WorkflowError, row_id)
from dashboards.tickets.callers import Caller
from dashboards.tickets.site_status import site_status
from monitor.inventory.model import Inventory
from dashboards.views._callcentre import CALL_CENTRE_ROLES, directory, error_text, ticket_store, workflow

SIMILAR = 5
TYPEAHEAD = 12
LIST_LIMIT = 200
FORM_FIELDS = ("caller", "site", "category", "caller_contact", "title", "description")


# --- intake -------------------------------------------------------------------------------------------------------


@require(*CALL_CENTRE_ROLES)
async def intake(request: Request) -> Response:
    return await _intake_page(request, dict(request.query_params))


@require(*CALL_CENTRE_ROLES)
async def check(request: Request) -> Response:
    """The 確認 button without JavaScript: the same page, with the caller resolved and similar answers found."""
    return await _intake_page(request, _fields(await request.form()))


@require(*CALL_CENTRE_ROLES)
async def create(request: Request) -> Response:
    form = await request.form()
    fields = _fields(form)
    tickets = await ticket_store(request)
    caller = _caller(request, fields)
    try:
        if caller is None:
            raise WorkflowError("tickets.error.caller", site=fields.get("caller", ""))
        draft = TicketDraft(caller.site, fields.get("category", ""), fields.get("title", ""),  # type: ignore[arg-type]
                            fields.get("description", ""), fields.get("caller_contact", ""),
                            tuple(str(v) for v in form.getlist("alarm")))
        ticket = await workflow(request, tickets).open(draft, request.state.user.name)
    except WorkflowError as refused:
        await audit(request, "ticket.open", caller.site if caller else fields.get("caller", ""), "failed",
                    error=refused.key)
        return await _intake_page(request, fields, error=error_text(request, refused), status=400)
    flash(request, _t(request)("tickets.flash.opened", id=ticket.id))
    return see_other(f"/triage/tickets/{ticket.id}")


async def _intake_page(request: Request, fields: dict[str, str], *, error: str | None = None,
                       status: int = 200) -> Response:
    console = console_of(request)
    tickets = await ticket_store(request)
    caller = _caller(request, fields)
    candidates = [] if caller is not None or not fields.get("caller") else directory(console).find(fields["caller"])
    text = f"{fields.get('title', '')} {fields.get('description', '')}".strip()
    return render(request, "triage/intake.html", {
        "form": {name: fields.get(name, "") for name in FORM_FIELDS}, "caller": caller, "candidates": candidates,
        "categories": list(Category), "error": error, "callers": directory(console).callers,
        "open_tickets": await tickets.tickets(statuses=OPEN_STATUSES, limit=20),
        **await _panel_context(request, caller, selectable=True),
        **await _similar_context(tickets, text, exclude=None),
    }, status=status)


def _caller(request: Request, fields: dict[str, str]) -> Caller | None:
    callers = directory(console_of(request))
    site = fields.get("site", "").strip()
    if site:
        return callers.get(site)
    typed = fields.get("caller", "").strip()
    return callers.resolve(typed) if typed else None


def _fields(form: FormData) -> dict[str, str]:
    fields = {name: str(form.get(name, "")) for name in FORM_FIELDS}
    if form.get("pick"):  # one of the candidates listed for an ambiguous name, chosen without JavaScript
        fields["site"] = str(form["pick"])
    return fields


# --- the side panel and the similar answers (also as fragments for the page's script) ----------------------------


@require(*CALL_CENTRE_ROLES)
async def callers_json(request: Request) -> JSONResponse:
    found = directory(console_of(request)).find(request.query_params.get("q", ""), limit=TYPEAHEAD)
    return JSONResponse([c.to_json() for c in found], headers={"Cache-Control": "no-store"})


@require(*CALL_CENTRE_ROLES)
async def panel(request: Request) -> Response:
    caller = directory(console_of(request)).get(request.query_params.get("site", ""))
    selectable = request.query_params.get("select") == "1"
    return render(request, "triage/_panel.html", await _panel_context(request, caller, selectable=selectable))


@require(*CALL_CENTRE_ROLES)
async def similar(request: Request) -> Response:
    exclude = request.query_params.get("exclude", "")
    context = await _similar_context(await ticket_store(request), request.query_params.get("q", ""),
                                     exclude=row_id(exclude))
    return render(request, "triage/_similar.html", context)


async def _panel_context(request: Request, caller: Caller | None, *, selectable: bool) -> dict[str, Any]:
    """``selectable``: the caller's open alarms come with check boxes that belong to the intake form."""
    console = console_of(request)
    if caller is None:
        return {"status": None, "caller_tickets": [], "selectable": selectable}
    status = await site_status(console.ctx, caller, console.now())
    recent = await (await ticket_store(request)).tickets(site=caller.site, limit=5)
    return {"status": status, "caller_tickets": recent, "selectable": selectable,
            "name_of": partial(_subject_name, console.ctx.inventory)}


def _subject_name(inventory: Inventory, subject: str) -> str:
    """A device, line or site as people name it (a line by its circuit id)."""
    if subject in inventory.devices:
        return inventory.devices[subject].name
    if subject in inventory.links:
        return inventory.links[subject].circuit_id
    site = inventory.sites.get(subject)
    return site.name if site else subject


async def _similar_context(tickets: TicketStore, text: str, exclude: int | None) -> dict[str, Any]:
    if not text.strip():
        return {"answers": [], "similar_tickets": [], "searched": False}
    return {"answers": await tickets.similar_answers(text, SIMILAR),
            "similar_tickets": await tickets.similar_tickets(text, SIMILAR, exclude), "searched": True}


# --- tickets ------------------------------------------------------------------------------------------------------


@require(*CALL_CENTRE_ROLES)
async def ticket_list(request: Request) -> Response:
    tickets = await ticket_store(request)
    status, query, site = (request.query_params.get(k, "") for k in ("status", "q", "site"))
    statuses = {"": OPEN_STATUSES, "all": None}.get(status, [s for s in TicketStatus if s.value == status])
    if query.strip():
        found = await tickets.tickets_by_id([h.id for h in await tickets.similar_tickets(query, LIST_LIMIT)])
        shown = [t for t in found if (statuses is None or t.status in statuses) and (not site or t.site == site)]
    else:
        shown = await tickets.tickets(statuses=statuses, site=site or None, limit=LIST_LIMIT)
    return render(request, "triage/tickets.html", {
        "tickets": shown, "filter": {"status": status, "q": query, "site": site}, "statuses": list(TicketStatus),
        "callers": directory(console_of(request)).callers})


@require(*CALL_CENTRE_ROLES)
async def ticket_detail(request: Request) -> Response:
    tickets = await ticket_store(request)
    ticket = await tickets.ticket(request.path_params["ticket_id"])
    if ticket is None:
        return _not_found(request)
    console = console_of(request)
    caller = directory(console).get(ticket.site)
    alerting = console.ctx.alerting
    return render(request, "triage/ticket.html", {
        "ticket": ticket, "caller": caller, "events": await tickets.events(ticket.id),
        "next_statuses": sorted(ALLOWED[ticket.status] - {TicketStatus.ANSWERED}, key=list(TicketStatus).index),
        "linked": [(fp, alerting.alarm(fp) if alerting else None) for fp in ticket.alarms],
        **await _panel_context(request, caller, selectable=False),
        **await _similar_context(tickets, f"{ticket.title} {ticket.description}", exclude=ticket.id),
    })


def _ticket_action(name: str, act: Any) -> Any:
    """A POST on one ticket: run ``act(flow, ticket_id, form, user)``, flash the outcome, back to the ticket.

    A refusal is audited here (``ticket.<name>``, failed); what was done, the workflow audited itself.
    """
    @require(*CALL_CENTRE_ROLES)
    async def endpoint(request: Request) -> Response:
        ticket_id = request.path_params["ticket_id"]
        flow = workflow(request, await ticket_store(request))
        try:
            result = await act(flow, ticket_id, await request.form(), request.state.user.name)
        except WorkflowError as refused:
            await audit(request, f"ticket.{name}", f"ticket:{ticket_id}", "failed", error=refused.key)
            if refused.key == "tickets.error.not_found":
                return _not_found(request)
            flash(request, error_text(request, refused), "error")
        else:
            flash(request, _done_text(request, result))
        return see_other(f"/triage/tickets/{ticket_id}")
    return endpoint


def _done_text(request: Request, result: object) -> str:
    t = _t(request)
    if isinstance(result, Ticket):
        return t("tickets.flash.saved", id=result.id, status=t(f"tickets.status.{result.status.value}"))
    return t("kb.flash.saved", id=getattr(result, "id", ""))


def _not_found(request: Request) -> Response:
    return error_page(request, 404, _t(request)("error.not_found", what=request.url.path))


def _t(request: Request) -> i18n.Translate:
    return i18n.translator(i18n.lang_of(request))


def _form(form: FormData, name: str) -> str:
    return str(form.get(name, ""))


# path → (audit action, the change): the audit actions are the workflow's own (``ticket.<action>``).
TICKET_ACTIONS: dict[str, tuple[str, Any]] = {
    "status": ("status", lambda flow, tid, form, user: flow.move(tid, _form(form, "to"), user, _form(form, "note"))),
    "answer": ("answered", lambda flow, tid, form, user: flow.answer(tid, _form(form, "answer"), user)),
    "comment": ("commented", lambda flow, tid, form, user: flow.comment(tid, _form(form, "text"), user)),
    "link": ("linked", lambda flow, tid, form, user: flow.link_alarm(tid, _form(form, "fingerprint").strip(), user)),
    "unlink": ("unlinked", lambda flow, tid, form, user: flow.unlink_alarm(tid, _form(form, "fingerprint"), user)),
    "kb": ("kb", lambda flow, tid, form, user: flow.answer_to_kb(tid, user)),
}


def routes() -> list[Route]:
    one = "/triage/tickets/{ticket_id:int}"
    return [
        Route("/triage", intake), Route("/triage/check", check, methods=["POST"]),
        Route("/triage/callers.json", callers_json), Route("/triage/panel", panel), Route("/triage/similar", similar),
        Route("/triage/tickets", ticket_list), Route("/triage/tickets", create, methods=["POST"]),
        Route(one, ticket_detail),
        *(Route(f"{one}/{path}", _ticket_action(name, act), methods=["POST"])
          for path, (name, act) in TICKET_ACTIONS.items()),
    ]
