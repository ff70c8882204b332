"""The IDS page (不正検知): operation-pattern alerts, by organisation and operator; traffic alerts, by type.

Reads what the main job hands over in ``ctx.extra``: ``opsids`` (the running
``OperationsIds``: ingestion counts) and ``opsids_alerts`` (its recent alerts, oldest
first); ``traffic_ids`` (the live sensor's ``ids.traffic.Engine``: packet and flow
counts) and ``traffic_alerts`` (its recent EVE alerts, oldest first). The alarms
themselves live in alerting (``/alarms``); this page explains them: rule, evidence,
time span or endpoints. Opening a drill-down is recorded in the audit trail, since
it shows what one named operator did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.pages import console_of, render
from ids.operations import Alert, AlertType
from ids.operations.alarms import actor_of, fingerprint_of
from ids.traffic import AlertType as TrafficType
from ids.traffic import alarms as traffic
from ids.traffic.eve import alert_time, jukimon_type
from ids.traffic.matrix import host_index

ROLES = (UserRole.NOC_OPERATOR, UserRole.AUDITOR)


def _alerts(request: Request) -> list[Alert]:
    """Newest first."""
    return list(reversed(console_of(request).ctx.extra.get("opsids_alerts") or ()))


def _rows(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    return [{**a.as_dict(), "actor": actor_of(a), "fingerprint": fingerprint_of(a), "since": a.start, "until": a.end}
            for a in alerts]


def _by_type(alerts: list[Alert]) -> list[tuple[str, int]]:
    counts = Counter(a.type.value for a in alerts)
    return [(t.value, counts[t.value]) for t in AlertType]


def _traffic(request: Request) -> dict[str, Any]:
    """The traffic section: the sensor's counts, alerts by type, recent alerts newest first with named endpoints."""
    extra = console_of(request).ctx.extra
    engine, alerts = extra.get("traffic_ids"), list(reversed(extra.get("traffic_alerts") or ()))
    hosts = host_index(console_of(request).ctx.inventory) if alerts else {}  # ~20 ms at national scale
    counts = Counter(jukimon_type(a) for a in alerts)
    stats = None if engine is None else {"packets": engine.stats.packets, "alerts": engine.stats.alerts,
                                         "malformed": engine.stats.malformed, "flows": len(engine.flows.flows),
                                         "flows_ended": engine.flows.ended}
    rows = [{"at": alert_time(a), "type": jukimon_type(a), "severity": traffic.severity_of(a),
             "source": traffic.endpoint(a["src_ip"], hosts), "dest": traffic.endpoint(a["dest_ip"], hosts),
             "ports": (a.get("src_port"), a.get("dest_port")), "proto": a.get("proto", ""),
             "signature": a["alert"]["signature"], "rule": traffic.rule_of(a), "evidence": a.get("evidence", {}),
             "fingerprint": traffic.fingerprint_of(a)} for a in alerts]
    return {"running": engine is not None, "stats": stats, "alerts": rows,
            "by_type": [(t.value, counts[t.value]) for t in TrafficType]}


def _page(request: Request, alerts: list[Alert], scope: dict[str, str] | None = None) -> Response:
    ops = console_of(request).ctx.extra.get("opsids")
    ingest = None if ops is None else {"accepted": ops.ingestor.accepted,
                                       "rejected": sum(ops.ingestor.rejected.values()),
                                       "suppressed": ops.engine.suppressed}
    return render(request, "ids/index.html", {"alerts": _rows(alerts), "by_type": _by_type(alerts),
                                              "by_operator": Counter(actor_of(a) for a in alerts).most_common(),
                                              "scope": scope, "running": ops is not None, "ingest": ingest,
                                              "traffic": None if scope else _traffic(request)})


@require(*ROLES)
async def ids_index(request: Request) -> Response:
    return _page(request, _alerts(request))


@require(*ROLES)
async def organisation(request: Request) -> Response:
    site = request.path_params["site"]
    await audit(request, "ids.operations.view", site, scope="organisation")
    known = console_of(request).ctx.inventory.sites.get(site)
    return _page(request, [a for a in _alerts(request) if a.organisation == site],
                 {"kind": "organisation", "id": site, "name": known.name if known else ""})


@require(*ROLES)
async def operator(request: Request) -> Response:
    actor = request.path_params["actor"]
    await audit(request, "ids.operations.view", actor, scope="operator")
    return _page(request, [a for a in _alerts(request) if actor_of(a) == actor],
                 {"kind": "operator", "id": actor, "name": ""})


def routes() -> list[Route]:
    return [Route("/ids", ids_index),
            Route("/ids/operations/org/{site}", organisation),
            Route("/ids/operations/operator/{actor:path}", operator)]
