"""What the call-centre pages share: the ticket store, the caller directory, a workflow per request, error texts.

Not a page (no ``routes``): ``create_app`` mounts only modules that define one.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request

from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import UserRole
from dashboards.pages import Console, console_of
from dashboards.tickets import TicketStore, TicketWorkflow, WorkflowError
from dashboards.tickets.callers import CallerDirectory
from dashboards.tickets.store import shared_ticket_store

# Who answers callers: the call centre, and the NOC (which links tickets to its alarms). The admin always may.
CALL_CENTRE_ROLES = (UserRole.CALL_CENTER, UserRole.NOC_OPERATOR)


async def ticket_store(request: Request) -> TicketStore:
    console = console_of(request)
    return await shared_ticket_store(console.ctx.store, console.cache)


def directory(console: Console) -> CallerDirectory:
    """Built once per console: 1,788 callers with their search keys."""
    found = console.cache.get("tickets.callers")
    if found is None:
        found = console.cache["tickets.callers"] = CallerDirectory(console.ctx.inventory)
    return found


def workflow(request: Request, tickets: TicketStore) -> TicketWorkflow:
    """The signed-in operator's workflow: every change audited as this request's user."""
    console = console_of(request)
    return TicketWorkflow(tickets, partial(audit, request), console.ctx.inventory, alerting=console.ctx.alerting,
                          clock=console.now)


def error_text(request: Request, error: WorkflowError) -> str:
    """The refusal in the operator's language, with the field named as the form names it."""
    t = i18n.translator(i18n.lang_of(request))
    values = dict(error.values)
    if "field" in values:
        values["field"] = t(f"tickets.field.{values['field']}")
    for name in ("old", "new"):  # statuses, as the page shows them
        if name in values:
            values[name] = t(f"tickets.status.{values[name]}")
    return t(error.key, **values)
