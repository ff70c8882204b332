"""The call centre at work: Otaru calls because its lines are cut; the operator finds Otaru, sees it down with its
alarm, finds the past answer, opens, answers and closes the ticket — over HTTP, then once in a browser.

The console is served for real (uvicorn on a free port, on the test's loop) over a small inventory, a SQLite
store, a real state engine and alerting; requests go over HTTP as a browser's would.
"""

from __future__ import annotations

import re
from typing import AsyncIterator

import pytest
import pytest_asyncio

from alerting.model import AlarmStatus
from dashboards.auth import UserRole
from dashboards.server import ConsoleServer
from monitor.inventory.model import Inventory
from tests.browser import chromium, screenshot, signed_in
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, round_of_polls
from tests.otaru import OTARU, OTARU_CUT, otaru_cut_off
from tests.ticket_samples import ANSWERS, LINE_DOWN, VEIN

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALL_CENTRE = USERS[UserRole.CALL_CENTER]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleServer]:
    async with otaru_cut_off(small_inventory, tmp_path_factory.mktemp("triage")) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def knowledge(console: ConsoleServer) -> None:
    """The call centre's knowledge base, written through the console as its staff would."""
    client = await _signed_in(console, CALL_CENTRE)
    for answer in ANSWERS:
        await client.get("/triage/kb/new")
        saved = await client.post("/triage/kb", {"title": answer.title, "question": answer.question,
                                                 "answer": answer.answer, "category": answer.category.value})
        assert saved.status_code == 200 and saved.url.path.startswith("/triage/kb/")
    await client.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(console: ConsoleServer) -> AsyncIterator[ConsoleClient]:
    """One call-centre session for the module (logins from one address are throttled, as they should be)."""
    client = await _signed_in(console, CALL_CENTRE)
    yield client
    await client.close()


async def _signed_in(console: ConsoleServer, name: str) -> ConsoleClient:
    client = ConsoleClient(console.url)
    assert (await client.login(name)).status_code == 200
    return client


async def _open_ticket(client: ConsoleClient, title: str, description: str, **extra: str) -> int:
    """Open a ticket from Otaru through the intake form, as the operator would; returns its number."""
    await client.get("/triage")
    opened = await client.post("/triage/tickets", {"caller": "小樽市", "site": "", "category": "network",
                                                   "title": title, "description": description, **extra})
    found = re.fullmatch(r"/triage/tickets/(\d+)", opened.url.path)
    assert opened.status_code == 200 and found, opened.text[:500]
    assert f"問合せ #{found.group(1)} を受け付けました" in opened.text
    return int(found.group(1))


# --- finding the caller and seeing their site ---------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["小樽", "otaru", "ＯＴＡＲＵ", "01-002", "北海道 小樽"])
async def test_the_caller_is_found_by_name_or_code(client: ConsoleClient, typed: str) -> None:
    found = (await client.get("/triage/callers.json", params={"q": typed})).json()
    assert found[0] == {"site": OTARU, "code": "01-002", "name": "小樽市", "name_en": "Otaru",
                        "tier": "municipality", "prefecture": "01", "label": "北海道 小樽市"}


async def test_the_callers_site_status_alarm_and_changes_come_at_once(client: ConsoleClient) -> None:
    panel = (await client.get("/triage/panel", params={"site": OTARU, "select": "1"})).text
    assert 'data-site="muni-01-002" data-state="down"' in panel
    assert 'data-device="muni-01-002-cs1" data-state="unreachable"' in panel
    assert "小樽市 全回線断" in panel and f'name="alarm" value="{OTARU_CUT}" form="intake-form"' in panel
    assert "最近の状態変化" in panel and ">停止</span></td>" in panel  # the site's transition to DOWN
    quiet = (await client.get("/triage/panel", params={"site": "muni-01-003"})).text
    assert 'data-state="up"' in quiet and "発生中・最近解決したアラームはありません" in quiet


async def test_a_prefecture_caller_sees_its_municipalities_and_alarms(client: ConsoleClient) -> None:
    panel = (await client.get("/triage/panel", params={"site": "pref-01"})).text
    assert "北海道" in panel and "小樽市 全回線断" in panel
    assert 'data-device="aggregation-pu-01"' in panel  # its processing unit at the aggregation centre
    assert re.search(r'data-state="down"><i></i>停止<b>1</b>', panel)


async def test_without_javascript_the_check_button_resolves_or_lists_callers(client: ConsoleClient) -> None:
    await client.get("/triage")
    ambiguous = await client.post("/triage/check", {"caller": "沖縄", "title": "", "description": ""})
    assert ambiguous.status_code == 200 and 'name="pick" value="pref-47"' in ambiguous.text
    assert 'name="pick" value="muni-47-002"' in ambiguous.text  # 沖縄県 and 沖縄市: the operator chooses
    picked = await client.post("/triage/check", {"caller": "沖縄", "pick": "muni-47-002", "title": "回線が切れた"})
    assert 'value="北海道 小樽市"' not in picked.text and 'data-site="muni-47-002"' in picked.text


# --- similar answers ----------------------------------------------------------------------------------------------


async def test_a_call_in_other_words_finds_the_past_answer(client: ConsoleClient, knowledge: None) -> None:
    """"回線が切れた" is not "回線断": the shared word 回線 finds the answer; "つながらない" finds no "接続できない"."""
    found = (await client.get("/triage/similar", params={"q": "回線が切れた"})).text
    assert LINE_DOWN.title in found and LINE_DOWN.answer in found and "<mark>回線</mark>" in found
    assert VEIN.title not in found
    nothing = (await client.get("/triage/similar", params={"q": "つながらない"})).text
    assert "似たものは見つかりませんでした" in nothing
    await client.get("/triage")
    checked = await client.post("/triage/check", {"caller": "小樽市", "title": "回線が切れた", "description": ""})
    assert LINE_DOWN.answer in checked.text, "the no-script page shows the same answers"


async def test_the_knowledge_base_is_searchable_and_editable(client: ConsoleClient, knowledge: None) -> None:
    listing = (await client.get("/triage/kb", params={"q": "静脈"})).text
    entry = re.search(r'href="/triage/kb/(\d+)">' + re.escape(VEIN.title), listing)
    assert entry
    await client.get(f"/triage/kb/{entry.group(1)}")
    edited = await client.post("/triage/kb", {"id": entry.group(1), "title": VEIN.title, "question": VEIN.question,
                                              "answer": "装置を交換してください。", "category": "authentication"})
    assert edited.url.path == f"/triage/kb/{entry.group(1)}" and "装置を交換してください。" in edited.text
    refused = await client.post("/triage/kb", {"title": "", "question": "q", "answer": "a", "category": "other"})
    assert refused.status_code == 400 and "件名を入力してください" in refused.text


# --- a ticket through its workflow --------------------------------------------------------------------------------


async def test_a_ticket_opened_linked_answered_and_closed(console: ConsoleServer, client: ConsoleClient) -> None:
    ctx = console.app.state.console.ctx
    ticket = await _open_ticket(client, "住基ネットにつながらない", "午前中から転入通知が送れない。", alarm=OTARU_CUT,
                                caller_contact="市民課")
    page = (await client.get(f"/triage/tickets/{ticket}")).text
    assert "小樽市 全回線断" in page and "市民課" in page
    note = ctx.alerting.alarm(OTARU_CUT).timeline[-1]
    assert note.actor == CALL_CENTRE and f"問合せ #{ticket} (小樽市) に関連付け" in note.text

    steps = [("status", {"to": "investigating", "note": "通信事業者へ確認中"}, "調査中"),
             ("answer", {"answer": "局内設備の故障でした。13時に復旧しました。"}, "回答済"),
             ("status", {"to": "done"}, "完了")]
    for action, form, shown in steps:
        done = await client.post(f"/triage/tickets/{ticket}/{action}", form)
        assert done.url.path == f"/triage/tickets/{ticket}" and f'data-status="{_status_of(shown)}"' in done.text
    history = (await client.get(f"/triage/tickets/{ticket}")).text
    assert history.count('<li class="status">') == 2 and "通信事業者へ確認中" in history

    audit = await console.app.state.console.audit.entries(action="ticket.")
    mine = [(e.action, e.user) for e in reversed(audit) if e.target == f"ticket:{ticket}"]
    assert mine == [("ticket.open", CALL_CENTRE), ("ticket.status", CALL_CENTRE), ("ticket.answered", CALL_CENTRE),
                    ("ticket.status", CALL_CENTRE)]
    assert ctx.alerting.alarm(OTARU_CUT).status is AlarmStatus.FIRING, "a ticket never changes the alarm itself"


def _status_of(label: str) -> str:
    return {"受付": "received", "調査中": "investigating", "回答済": "answered", "完了": "done"}[label]


async def test_a_forbidden_step_is_refused_with_a_reason(console: ConsoleServer, client: ConsoleClient) -> None:
    ticket = await _open_ticket(client, "静脈認証でログインできない", "業務端末03")
    refused = await client.post(f"/triage/tickets/{ticket}/status", {"to": "done"})
    assert "状況を「受付」から「完了」には変更できません" in refused.text and 'data-status="received"' in refused.text
    audit = await console.app.state.console.audit.entries(action="ticket.status")
    assert [(e.target, e.result, e.detail) for e in audit][0] == (f"ticket:{ticket}", "failed",
                                                                  {"error": "tickets.error.transition"})
    empty = await client.post(f"/triage/tickets/{ticket}/answer", {"answer": "  "})
    assert "回答を入力してください" in empty.text
    assert (await client.get("/triage/tickets/99999")).status_code == 404


async def test_a_refused_intake_keeps_what_was_typed(client: ConsoleClient) -> None:
    await client.get("/triage")
    refused = await client.post("/triage/tickets", {"caller": "存在しない町", "site": "", "category": "network",
                                                    "title": "回線断", "description": "長い説明をもう一度書かせない"})
    assert refused.status_code == 400 and "発信元の団体が特定できません" in refused.text
    assert "長い説明をもう一度書かせない</textarea>" in refused.text


async def test_tickets_are_listed_by_status_and_found_by_words(client: ConsoleClient) -> None:
    ticket = await _open_ticket(client, "ファイル配信が届かない", "更新プログラムが未着")
    open_list = (await client.get("/triage/tickets")).text
    assert f'href="/triage/tickets/{ticket}">ファイル配信が届かない' in open_list
    found = (await client.get("/triage/tickets", params={"q": "更新プログラム", "status": "all"})).text
    assert f"#{ticket}" in found and "住基ネットにつながらない" not in found


# --- what must not get through ------------------------------------------------------------------------------------


async def test_a_script_in_a_ticket_is_shown_as_text_everywhere(client: ConsoleClient) -> None:
    attack = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
    ticket = await _open_ticket(client, f"回線 {attack}", f"説明 {attack}", caller_contact=attack)
    pages = [await client.get(f"/triage/tickets/{ticket}"), await client.get("/triage/tickets"),
             await client.get("/triage/similar", params={"q": "回線"}), await client.get("/triage?site=" + OTARU)]
    for page in pages:
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, page.url
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in pages[0].text


@pytest.mark.parametrize("path", ["/triage/tickets", "/triage/kb", "/triage/check"])
async def test_forms_without_the_csrf_token_are_refused(client: ConsoleClient, path: str) -> None:
    before = (await client.get("/triage/tickets", params={"status": "all"})).text.count('class="num"><a')
    for token in ("", "forged-token"):
        refused = await client.post(path, {"caller": "小樽市", "category": "network", "title": "CSRF", "description":
                                           "CSRF", "question": "q", "answer": "a"}, token=token)
        assert refused.status_code == 403 and "CSRF" in refused.text
    after = (await client.get("/triage/tickets", params={"status": "all"})).text.count('class="num"><a')
    assert after == before


async def test_a_workflow_step_without_the_token_changes_nothing(client: ConsoleClient) -> None:
    ticket = await _open_ticket(client, "CSが応答しない", "CS1")
    refused = await client.post(f"/triage/tickets/{ticket}/status", {"to": "investigating"}, token="")
    assert refused.status_code == 403
    assert 'data-status="received"' in (await client.get(f"/triage/tickets/{ticket}")).text


@pytest.mark.parametrize("role", [UserRole.DRILL_CONTROLLER, UserRole.AUDITOR])
async def test_only_the_call_centre_and_the_noc_take_calls(console: ConsoleServer, role: UserRole) -> None:
    other = await _signed_in(console, USERS[role])
    assert (await other.get("/triage")).status_code == 403
    assert (await other.get("/triage/callers.json", params={"q": "小樽"})).status_code == 403
    assert (await other.post("/triage/tickets/1/status", {"to": "investigating"})).status_code == 403
    await other.close()


async def test_the_intake_speaks_english_on_request(client: ConsoleClient) -> None:
    await client.get("/triage")
    english = await client.post("/lang", {"lang": "en", "next": "/triage?site=" + OTARU})
    assert "Call intake" in english.text and "Alarms (open" in english.text and ">DOWN</span>" in english.text
    await client.post("/lang", {"lang": "ja", "next": "/triage"})


# --- in a browser -------------------------------------------------------------------------------------------------


async def test_in_the_browser_otaru_calls_and_the_operator_sees_status_and_past_answer(
        console: ConsoleServer, knowledge: None) -> None:
    ctx = console.app.state.console.ctx
    async with chromium() as browser:
        page = await signed_in(browser, console.url, CALL_CENTRE, PASSWORD)
        await page.goto("/triage")
        await page.fill("#caller", "おた")  # no kana readings: nothing offered
        await page.fill("#caller", "小樽")
        await page.click("#caller-options button")
        badge = page.locator("#caller-panel [data-site='muni-01-002']")
        await badge.wait_for()
        assert await badge.get_attribute("data-state") == "down"
        assert "小樽市 全回線断" in await page.inner_text("#caller-panel")
        await page.fill("#title", "回線が切れた")
        await page.fill("#description", "朝から住基ネットにつながらない")
        answer = page.locator("#similar .kb-hit h3", has_text=LINE_DOWN.title)
        await answer.wait_for()
        await screenshot(page, "triage_intake")

        round_of_polls(ctx)  # the lines come back while the operator is on the phone: no reload needed
        await page.wait_for_selector("#caller-panel [data-site='muni-01-002'][data-state='up']")
        await page.check(f"#caller-panel input[value='{OTARU_CUT}']")
        async with page.expect_navigation():
            await page.click("#open-ticket")
        assert re.search(r"/triage/tickets/\d+$", page.url)
        assert "回線が切れた" in await page.inner_text("h1")
        assert "小樽市 全回線断" in await page.inner_text("section.card:has(h2:text('関連アラーム'))")
        await screenshot(page, "triage_ticket")
