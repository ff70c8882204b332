"""The call centre's knowledge base (ナレッジ): answers kept for the next caller, searched, read, written.

``/triage/kb`` lists or searches the entries; ``/triage/kb/new`` and
``/triage/kb/{id}`` show the entry with its edit form; a POST to ``/triage/kb``
saves one (new, or the ``id`` given). Answers also come from tickets
(``/triage/tickets/{id}/kb``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import require
from dashboards.pages import error_page, flash, render, see_other
from dashboards.tickets import Category, KbEntry, WorkflowError, row_id
from dashboards.views._callcentre import CALL_CENTRE_ROLES, error_text, ticket_store, workflow

LIST_LIMIT = 200


@require(*CALL_CENTRE_ROLES)
async def entries(request: Request) -> Response:
    tickets = await ticket_store(request)
    query = request.query_params.get("q", "")
    found = (await tickets.similar_answers(query, LIST_LIMIT) if query.strip()
             else await tickets.kb_entries(LIST_LIMIT))
    return render(request, "triage/kb.html", {"entries": found, "q": query})


@require(*CALL_CENTRE_ROLES)
async def entry(request: Request) -> Response:
    entry_id = request.path_params.get("entry_id", 0)
    found = await (await ticket_store(request)).kb_entry(entry_id) if entry_id else None
    if entry_id and found is None:
        t = i18n.translator(i18n.lang_of(request))
        return error_page(request, 404, t("error.not_found", what=request.url.path))
    return _page(request, found, {}, None)


@require(*CALL_CENTRE_ROLES)
async def save(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    entry_id = row_id(form.get("id", "")) or 0
    flow = workflow(request, await ticket_store(request))
    try:
        saved = await flow.save_kb(form.get("title", ""), form.get("question", ""), form.get("answer", ""),
                                   form.get("category", ""), request.state.user.name, entry_id=entry_id)
    except WorkflowError as refused:
        await audit(request, "kb.save", f"kb:{entry_id}" if entry_id else "", "failed", error=refused.key)
        old = await flow.store.kb_entry(entry_id) if entry_id else None
        return _page(request, old, form, error_text(request, refused), status=400)
    flash(request, i18n.translate(i18n.lang_of(request), "kb.flash.saved", id=saved.id))
    return see_other(f"/triage/kb/{saved.id}")


def _page(request: Request, found: KbEntry | None, typed: dict[str, str], error: str | None, *,
          status: int = 200) -> Response:
    """The entry (or a new one) and its form, holding what was typed when a save was refused."""
    values = {name: typed.get(name, str(getattr(found, name, "") or "")) for name in ("title", "question", "answer")}
    values["category"] = typed.get("category", found.category.value if found else Category.OTHER.value)
    return render(request, "triage/kb_entry.html", {"entry": found, "values": values, "error": error,
                                                     "categories": list(Category)}, status=status)


def routes() -> list[Route]:
    return [Route("/triage/kb", entries), Route("/triage/kb", save, methods=["POST"]),
            Route("/triage/kb/new", entry), Route("/triage/kb/{entry_id:int}", entry)]
