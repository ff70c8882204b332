"""The call centre's tickets and knowledge base (コールセンター): records, search, workflow.

    tickets = await TicketStore.open(ctx.store)          # tables and search index, once
    flow = TicketWorkflow(tickets, partial(audit, request), ctx.inventory, alerting=ctx.alerting)
    ticket = await flow.open(TicketDraft("muni-01-002", Category.NETWORK, "CSに接続できない", "…"), user)
    hits = await tickets.similar_answers("回線が切れた")  # SQLite FTS5 trigram / PostgreSQL pg_trgm
"""

from dashboards.tickets.model import (OPEN_STATUSES, Category, HitKind, KbEntry, SearchHit, Ticket, TicketDraft,
                                      TicketEvent, TicketStatus)
from dashboards.tickets.search import SearchUnavailable
from dashboards.tickets.store import TicketConflict, TicketStore, row_id
from dashboards.tickets.workflow import ALLOWED, CALLER_TIERS, Auditor, TicketWorkflow, WorkflowError

__all__ = ["ALLOWED", "CALLER_TIERS", "OPEN_STATUSES", "Auditor", "Category", "HitKind", "KbEntry", "SearchHit",
           "SearchUnavailable", "Ticket", "TicketConflict", "TicketDraft", "TicketEvent", "TicketStatus",
           "TicketStore", "TicketWorkflow", "WorkflowError", "row_id"]
