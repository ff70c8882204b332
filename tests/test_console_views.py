"""The NOC's pages over HTTP, as operators use them: the board shows what broke, alarms are handled, roles hold.

One console is served (uvicorn, free port) over a small inventory with a real
StateEngine and AlertingService; faults are made the collectors' way (a round of
polls with some devices silent) and judged. Each test breaks its own devices, so
the order of the tests does not matter.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
import pytest_asyncio
from markupsafe import escape

from alerting.alarms import OPEN_STATUSES
from alerting.model import AlarmStatus
from collectors.history import History
from dashboards.graphs import Graph, Series, render_svg
from dashboards.auth import UserRole
from dashboards.server import ConsoleServer
from monitor.envelope import Origin, Sample
from monitor.inventory.model import Inventory
from tests.console_fixtures import USERS, ConsoleClient, round_of_polls, served

pytestmark = pytest.mark.asyncio(loop_scope="module")

OTARU = "muni-01-002"  # both lines cut in one test: site unreachable
HAKODATE_CS = "muni-01-003-cs1"
OKINAWA_CORE = "pref-47-core"  # a root cause: every Okinawa municipality behind it
ASAHIKAWA_CS = "muni-01-004-cs1"
KUSHIRO_CS = "muni-01-005-cs1"
FAULTS = [f"{OTARU}-rt1", f"{OTARU}-rt2", HAKODATE_CS, OKINAWA_CORE, ASAHIKAWA_CS, KUSHIRO_CS]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    async with served(small_inventory, tmp_path_factory.mktemp("views"), FAULTS) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def as_user(console: ConsoleServer):
    clients: list[ConsoleClient] = []

    async def sign_in(role: UserRole) -> ConsoleClient:
        client = ConsoleClient(console.url)
        clients.append(client)
        assert (await client.login(USERS[role])).status_code == 200
        return client
    yield sign_in
    for client in clients:
        await client.close()


def alarm_of(console: ConsoleServer, fingerprint: str):
    alarm = console.app.state.console.ctx.alerting.alarm(fingerprint)
    assert alarm is not None, fingerprint
    return alarm


def tile(page: str, site: str) -> str:
    found = re.search(rf'<a class="tile[^"]*"[^>]*data-site="{site}" data-state="(\w+)"', page)
    assert found, f"no tile for {site}"
    return found.group(1)


async def test_the_board_colours_the_broken_sites_and_counts_the_alarms(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.CALL_CENTER)
    page = (await client.get("/")).text
    assert tile(page, OTARU) == "down" and tile(page, "muni-01-001") == "up"
    assert tile(page, "muni-47-001") == "unreachable", "behind Okinawa's core router"
    assert '<section class="pref" data-pref="47" data-state="down">' in page
    assert '<section class="pref" data-pref="01" data-state="down">' in page
    counts = dict(re.findall(r'<b data-alarm-count="(\w+)">(\d+)</b>', page))
    tally = console.app.state.console.ctx.alerting.open_alarms(statuses=OPEN_STATUSES)
    assert sum(map(int, counts.values())) == len(tally) >= 5
    assert "全国センター" in page and "都道府県サーバ集約センター" in page
    for state in ("正常", "劣化", "停止", "到達不能", "保守中", "運用時間外"):
        assert f"<i></i>{state}<b" in page, f"legend entry {state}"


async def test_drill_down_prefecture_then_site_then_device(as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    prefecture = (await client.get("/prefectures/01")).text
    assert "小樽市" in prefecture and f'href="/sites/{OTARU}"' in prefecture
    site = (await client.get(f"/sites/{OTARU}")).text
    assert "小樽市 回線ルータ1" in site and "全回線断" in site
    device = (await client.get(f"/devices/{HAKODATE_CS}")).text
    assert "函館市 CS1" in device and "函館市 CS1 応答なし" in device and "令和" in device
    missing = await client.get("/devices/no-such-device")
    assert missing.status_code == 404 and "no-such-device" in missing.text


@pytest.mark.parametrize("role", [UserRole.CALL_CENTER, UserRole.AUDITOR, UserRole.DRILL_CONTROLLER])
async def test_roles_without_operations_cannot_acknowledge(console: ConsoleServer, as_user, role: UserRole) -> None:
    client = await as_user(role)
    fingerprint = f"device_down:{HAKODATE_CS}"
    assert "選択したアラームを確認" not in (await client.get("/alarms")).text, "no acknowledge form offered"
    refused = await client.post("/alarms/acknowledge", {"fingerprint": fingerprint})
    assert refused.status_code == 403 and "権限がありません" in refused.text
    assert alarm_of(console, fingerprint).status is AlarmStatus.FIRING
    trail = await console.app.state.console.audit.entries(user=USERS[role], action="access.denied", limit=1)
    assert trail and trail[0].target == "/alarms/acknowledge"


async def test_an_operator_cannot_read_the_audit_log_but_the_auditor_and_admin_can(as_user) -> None:
    operator = await as_user(UserRole.NOC_OPERATOR)
    assert (await operator.get("/audit")).status_code == 403
    for role in (UserRole.AUDITOR, UserRole.ADMIN):
        page = await (await as_user(role)).get("/audit")
        assert page.status_code == 200 and "access.denied" in page.text


async def test_acknowledge_several_alarms_from_the_list(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    await client.get("/alarms")
    chosen = [f"device_down:{ASAHIKAWA_CS}", f"device_down:{KUSHIRO_CS}"]
    response = await client.http.post("/alarms/acknowledge", data={
        "fingerprint": chosen, "text": "現地確認中", "csrf_token": client.csrf, "next": "/alarms"})
    assert response.status_code == 200 and "2 件のアラームを確認しました" in response.text
    for fingerprint in chosen:
        alarm = alarm_of(console, fingerprint)
        assert alarm.status is AlarmStatus.ACKNOWLEDGED and alarm.acknowledged_by == USERS[UserRole.NOC_OPERATOR]
        assert alarm.timeline[-1].text == "現地確認中"
    acknowledged = (await client.get("/alarms?status=acknowledged")).text
    assert all(f'data-fingerprint="{f}"' in acknowledged for f in chosen)
    assert f'data-fingerprint="device_down:{HAKODATE_CS}"' not in acknowledged
    trail = await console.app.state.console.audit.entries(action="alarm.acknowledge", limit=2)
    assert sorted(e.target for e in trail) == sorted(chosen) and {e.result for e in trail} == {"ok"}


async def test_a_comment_with_a_script_tag_is_shown_as_text(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    fingerprint = f"device_down:{HAKODATE_CS}"
    await client.get(f"/alarms/{fingerprint}")
    attack = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
    page = (await client.post("/alarms/comment", {"fingerprint": fingerprint, "text": attack})).text
    assert attack not in page
    assert str(escape(attack)) in page
    assert alarm_of(console, fingerprint).timeline[-1].text == attack, "stored as typed, escaped when shown"


async def test_resolving_by_hand_needs_a_reason(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    fingerprint = f"device_down:{HAKODATE_CS}"
    await client.get(f"/alarms/{fingerprint}")
    refused = await client.post("/alarms/resolve", {"fingerprint": fingerprint, "text": "  "})
    assert "理由が必要です" in refused.text and alarm_of(console, fingerprint).status is AlarmStatus.FIRING
    failed = await console.app.state.console.audit.entries(action="alarm.resolve", limit=1)
    assert failed[0].result == "failed"


async def test_a_silence_made_from_an_alarm_mutes_it(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    alerting = console.app.state.console.ctx.alerting
    fingerprint = f"site_unreachable:{OTARU}"
    await client.get(f"/alarms/{fingerprint}")
    page = await client.http.post("/alarms/silence", data={
        "fingerprint": fingerprint, "label": ["kind", "site"], "hours": "4", "text": "回線工事 (KDDI)",
        "csrf_token": client.csrf})
    assert "サイレンスを作成しました" in page.text
    [silence] = [s for s in alerting.silences.silences.values() if s.reason == "回線工事 (KDDI)"]
    assert sorted(map(str, silence.matchers)) == ['kind="site_unreachable"', f'site="{OTARU}"']
    assert 4 * 3600 - 5 < silence.end - silence.start <= 4 * 3600
    await alerting.tick()  # muting is refreshed by the service's tick
    assert "サイレンス中" in (await client.get(f"/alarms/{fingerprint}")).text


async def test_a_root_cause_shows_its_unreachable_children_on_demand(as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    listing = (await client.get("/alarms?prefecture=47")).text
    fingerprint = f"root_cause:{OKINAWA_CORE}"
    assert f'data-children-url="/alarms/children/{fingerprint.replace(":", "%3A")}"' in listing
    assert "muni-01" not in listing, "the prefecture filter keeps Hokkaido out"
    fragment = (await client.get(f"/alarms/children/{fingerprint}")).text
    assert "<html" not in fragment, "a fragment, not a page"
    assert 'data-device="muni-47-001-cs1" data-state="unreachable"' in fragment


async def test_english_on_request_with_jst_times(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    await client.get("/alarms")
    page = (await client.post("/lang", {"lang": "en", "next": f"/alarms/device_down:{HAKODATE_CS}"})).text
    assert "Timeline" in page and "Acknowledge" in page and " JST" in page and "令和" not in page
    assert "経過" not in page
    board = (await client.get("/")).text
    assert "Open alarms" in board and "Hokkaido" in board


async def test_the_live_stream_pushes_a_state_change(console: ConsoleServer, as_user) -> None:
    client = await as_user(UserRole.NOC_OPERATOR)
    ctx = console.app.state.console.ctx
    events: list[tuple[str, dict]] = []

    async def listen() -> None:
        async with client.http.stream("GET", "/live") as stream:
            name = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if name == "alarms":
                        return

    listener = asyncio.create_task(listen())
    deadline = time.monotonic() + 5
    while not any(name == "hello" for name, _ in events) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    round_of_polls(ctx, [*FAULTS, "muni-01-006-cs1"])
    await asyncio.wait_for(listener, 5)
    received = dict(events)
    assert received["state"]["devices"]["muni-01-006-cs1"] == "down"
    assert received["state"]["sites"]["muni-01-006"] == "down"
    assert "muni-01-001-cs1" not in received["state"]["devices"], "only what changed"
    assert "device_down:muni-01-006-cs1" in [c["fingerprint"] for c in received["conditions"]["raised"]]
    assert received["alarms"]["open"] == len(ctx.alerting.open_alarms(statuses=OPEN_STATUSES))


async def test_an_anonymous_visitor_is_sent_to_the_login_page(console: ConsoleServer) -> None:
    async with httpx.AsyncClient(base_url=console.url) as anonymous:
        response = await anonymous.get("/alarms?prefecture=01")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Falarms%3Fprefecture%3D01"
        assert (await anonymous.get("/live", headers={"accept": "text/event-stream"})).status_code == 401


async def test_a_graph_breaks_its_line_over_an_outage() -> None:
    history = History(retention_seconds=3600, resolution=10, raw_seconds=3600)
    device_origin = Origin(device="cs1")
    t0 = 1_700_000_000.0
    for i in list(range(0, 20)) + list(range(40, 60)):  # 200 s without samples in between
        history.add(Sample("system", t0 + 10 * i, device_origin, {"rtt_ms": 5.0 + i % 3}))
    graph = Graph("graph.rtt", "", "ms", (Series("SNMP", history.series("cs1", "system.rtt_ms")),))
    svg = str(render_svg(graph, t0, t0 + 600, 10, lambda ts: f"{ts:.0f}"))
    assert svg.count("<polyline") == 2 and ">10 ms<" in svg


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_every_condition_kind_has_a_name_in_each_language(lang: str) -> None:
    from dashboards.i18n import catalogue
    from monitor.state.model import ConditionKind

    missing = [kind.value for kind in ConditionKind if f"condition.{kind.value}" not in catalogue(lang)]
    assert missing == []
