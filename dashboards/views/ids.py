"""The IDS page (不正検知): operation-pattern alerts, by organisation and operator; traffic alerts, by type.

Reads what the main job hands over in ``ctx.extra``: ``opsids`` (the running
``OperationsIds``: ingestion counts) and ``opsids_alerts`` (its recent alerts, oldest
first); ``traffic_ids`` (the live sensor's ``ids.traffic.Engine``: packet and flow
counts, its flow table, and the packets behind each alert in ``engine.evidence``) and
``traffic_alerts`` (its recent EVE alerts, oldest first). The alarms themselves live in
alerting (``/alarms``); this page explains them: rule, evidence, time span or endpoints,
the recent flows, and each alert's packets as a pcap download. Opening a drill-down and
downloading packets are recorded in the audit trail (what one named operator did; what
went over the wire).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.i18n import lang_of, translate
from dashboards.pages import console_of, error_page, render
from ids.operations import Alert, AlertType
from ids.operations.alarms import actor_of, fingerprint_of
from ids.traffic import AlertType as TrafficType
from ids.traffic import alarms as traffic
from ids.traffic.decode import PROTO_NAMES
from ids.traffic.eve import alert_time, jukimon_type
from ids.traffic.evidence import evidence_key, pcap_bytes
from ids.traffic.flows import Flow
from ids.traffic.matrix import MatrixRule, host_index

ROLES = (UserRole.NOC_OPERATOR, UserRole.AUDITOR)
RECENT_FLOWS = 50
PCAP = "application/vnd.tcpdump.pcap"


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
    hosts = host_index(console_of(request).ctx.inventory) if alerts or engine else {}  # ~20 ms at national scale
    evidence = engine.evidence if engine is not None else None
    counts = Counter(jukimon_type(a) for a in alerts)
    stats = None if engine is None else {"packets": engine.stats.packets, "alerts": engine.stats.alerts,
                                         "malformed": engine.stats.malformed, "flows": len(engine.flows.flows),
                                         "flows_ended": engine.flows.ended}
    rows = [{"at": alert_time(a), "type": jukimon_type(a), "severity": traffic.severity_of(a),
             "source": traffic.endpoint(a["src_ip"], hosts), "dest": traffic.endpoint(a["dest_ip"], hosts),
             "ports": (a.get("src_port"), a.get("dest_port")), "proto": a.get("proto", ""),
             "signature": a["alert"]["signature"], "rule": traffic.rule_of(a), "evidence": a.get("evidence", {}),
             "fingerprint": traffic.fingerprint_of(a),
             "pcap": evidence_key(a) if evidence is not None and evidence.alert_frames(evidence_key(a)) else None}
            for a in alerts]
    return {"running": engine is not None, "stats": stats, "alerts": rows,
            "by_type": [(t.value, counts[t.value]) for t in TrafficType],
            "flows": _flows(engine, hosts) if engine is not None else []}


def _flows(engine: Any, hosts: dict) -> list[dict[str, Any]]:
    """The flow table's most recently active flows, newest first, with the matrix's verdict on each."""
    flows: list[Flow] = list(engine.flows.flows.values())  # one C-level copy: the capture thread keeps adding
    flows.sort(key=lambda f: f.last, reverse=True)
    rows = []
    for flow in flows[:RECENT_FLOWS]:
        proto, client, cport, server, sport = flow.key
        verdict = flow.verdict
        rows.append({"id": flow.id, "proto": PROTO_NAMES.get(proto, str(proto)),
                     "client": traffic.endpoint(client, hosts), "server": traffic.endpoint(server, hosts),
                     "ports": (cport, sport), "start": flow.start, "last": flow.last,
                     "packets": (flow.pkts_ts, flow.pkts_tc), "bytes": (flow.bytes_ts, flow.bytes_tc),
                     "verdict": verdict.name if isinstance(verdict, MatrixRule) else
                     ("violation" if verdict is False else None)})
    return rows


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


@require(*ROLES)
async def alert_pcap(request: Request) -> Response:
    """The packets of one alert's flow (or the frame that raised it) as a pcap file."""
    key = request.path_params["key"]
    extra = console_of(request).ctx.extra
    engine = extra.get("traffic_ids")
    alert = next((a for a in extra.get("traffic_alerts") or () if evidence_key(a) == key), None)
    frames = engine.evidence.alert_frames(key) if engine is not None and engine.evidence is not None else None
    if alert is None or not frames:
        await audit(request, "ids.traffic.evidence", key, result="not_found")
        return error_page(request, 404, translate(lang_of(request), "ids.traffic_section.no_packets"))
    name = f"jukimon-ids-{jukimon_type(alert)}-{alert['src_ip']}-{alert['dest_ip']}-{key[:8]}.pcap"
    await audit(request, "ids.traffic.evidence", key, type=jukimon_type(alert), src=alert["src_ip"],
                dest=alert["dest_ip"], packets=len(frames))
    return Response(pcap_bytes(frames), media_type=PCAP,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@require(*ROLES)
async def flow_pcap(request: Request) -> Response:
    """The latest packets of one flow still in the sensor's table, as a pcap file."""
    flow_id = request.path_params["flow_id"]
    engine = console_of(request).ctx.extra.get("traffic_ids")
    frames = engine.evidence.flow_frames(flow_id) if engine is not None and engine.evidence is not None else None
    if not frames:
        await audit(request, "ids.traffic.flow_packets", str(flow_id), result="not_found")
        return error_page(request, 404, translate(lang_of(request), "ids.traffic_section.no_flow"))
    await audit(request, "ids.traffic.flow_packets", str(flow_id), packets=len(frames))
    return Response(pcap_bytes(frames), media_type=PCAP,
                    headers={"Content-Disposition": f'attachment; filename="jukimon-flow-{flow_id}.pcap"',
                             "Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [Route("/ids", ids_index),
            Route("/ids/traffic/evidence/{key:str}.pcap", alert_pcap),
            Route("/ids/traffic/flow/{flow_id:int}.pcap", flow_pcap),
            Route("/ids/operations/org/{site}", organisation),
            Route("/ids/operations/operator/{actor:path}", operator)]
