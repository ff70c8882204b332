"""The operator console (dashboards/): login, CSRF-protected forms, ticket and alarm actions, path parameters.

The real Starlette app (``create_app``) over the console test chain of
tests/console_fixtures.py — a StateEngine, AlertingService and SQLite Store over
a small inventory, one user per role, some devices failing so there are alarms —
driven through httpx's ASGI transport on one event loop. App exceptions are not
turned into 500 pages here: they propagate, so a crash names its place. A 4xx is a
rejection with the status as its reason; 2xx and 3xx are accepted.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from dashboards.app import create_app
from dashboards.auth import UserRole
from fuzz.core import Accepted, Outcome, Rejected, Target
from fuzz.mutate import mutated_text
from fuzz.targets_common import small_inventory
from monitor.store import Store
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, add_users, round_of_polls, static_context

BASE = "http://console.test"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class _ConsoleRig:
    loop: asyncio.AbstractEventLoop
    admin: ConsoleClient  # signed in, with its CSRF token
    anonymous: ConsoleClient  # on the login page, with its CSRF token
    fingerprints: list[str]


def _client(app: Any) -> ConsoleClient:
    client = ConsoleClient(BASE)
    client.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 40000)),
                                    base_url=BASE, follow_redirects=False, timeout=10)
    return client


@lru_cache(maxsize=1)
def _rig() -> _ConsoleRig:
    folder = Path(tempfile.mkdtemp(prefix="jukimon-fuzz-console-"))
    loop = asyncio.new_event_loop()

    async def build() -> _ConsoleRig:
        inventory = small_inventory()
        store = await Store.open(f"sqlite+aiosqlite:///{folder}/jukimon.db")
        ctx = await static_context(inventory, store)
        failing = [d.id for d in inventory.polled_devices() if d.id.endswith("-cs1")][:2]
        round_of_polls(ctx, failing)
        app = create_app(ctx)
        await app.router.lifespan_context(app).__aenter__()  # users, audit trail, live hub: as on start-up
        await add_users(app.state.console.users)
        admin, anonymous = _client(app), _client(app)
        await admin.login(USERS[UserRole.ADMIN], PASSWORD)
        await admin.get("/alarms")
        await anonymous.get("/login")
        page = (await admin.http.get("/alarms")).text
        fingerprints = sorted(set(re.findall(r'href="/alarms/([^"?#]+)"', page))) or ["none"]
        return _ConsoleRig(loop, admin, anonymous, fingerprints)

    return loop.run_until_complete(build())


def _judge(response: httpx.Response) -> Outcome:
    if response.status_code == 500:  # 503 is deliberate: a part not configured (the cascade, drills)
        raise RuntimeError(f"HTTP {response.status_code} from {response.request.method} {response.request.url}")
    return Accepted() if response.status_code < 400 else Rejected(f"http_{response.status_code}")


def _wire(text: str) -> str:
    """What HTTP can carry: UTF-8, so a lone surrogate arrives as U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _wired(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(_wire)


# --- login ------------------------------------------------------------------------------------

_NAMES = st.sampled_from([*USERS.values(), "", "admin", "noc_operator' OR '1'='1", "x" * 300])


@st.composite
def _login_form(draw: st.DrawFn) -> dict[str, str]:
    form = {"name": draw(_wired(mutated_text(_NAMES, 2))), "password": draw(_wired(mutated_text(st.just(PASSWORD), 2))),
            "next": draw(_wired(mutated_text(st.sampled_from(["/", "/alarms", "//evil.example", "https://evil.example/",
                                                       "/\\evil", "javascript:alert(1)"]), 1)))}
    for key in draw(st.lists(st.sampled_from(sorted(form)), max_size=2, unique=True)):
        del form[key]
    token = draw(st.sampled_from(["session", "session", "session", "none", "forged"]))
    form["csrf_token"] = token
    return form


def login_post(form: dict[str, str]) -> Outcome:
    rig = _rig()
    client = rig.anonymous
    form = dict(form)
    token = form.pop("csrf_token")
    token = client.csrf if token == "session" else "" if token == "none" else "forged-token"
    response = rig.loop.run_until_complete(client.post("/login", form, token=token))
    found = _CSRF.search(response.text)
    if found:  # the form comes back with the session's current token, as a browser would resubmit it
        client.csrf = found.group(1)
    return _judge(response)


# --- forms behind sign-in ---------------------------------------------------------------------

_FIELDS = ("fingerprint", "text", "title", "scope", "next", "status", "start", "site", "reason", "q", "prefecture",
           "participants", "mode", "end", "category", "caller", "body", "as_of", "answer", "action", "user", "until",
           "to", "speed", "severity", "scope_kind", "scenario", "recurrence", "question", "pref", "pick", "org",
           "note", "name", "month", "matchers", "lang", "label", "kind", "id", "hours", "final", "drill",
           "description", "caller_contact", "alarm")
_VALUES = st.sampled_from(["", "1", "0", "-1", "99999999999999999999", "1e309", "nan", "true", "on", "2026-12-02",
                           "2026-12-02T10:00", "2026-02-30T25:61", "10:00", "47", "01", "muni-47-001", "kind=root_cause",
                           "severity!=info", "a=", "=b", "ja", "en", "xx", "open", "answered", "closed", "10m", "1h",
                           "0s", "pref", "municipality", "prefecture-line-cut", "live", "tabletop", "住基ネット"])
_POSTS = ("/alarms/{action}", "/triage/tickets", "/triage/check", "/triage/tickets/{ticket}/{ticket_action}",
          "/maintenance/windows", "/maintenance/windows/{ticket}/delete", "/maintenance/silences",
          "/maintenance/silences/{ticket}/expire", "/triage/kb", "/lang", "/cascade/incidents",
          "/cascade/{report}/remind", "/cascade/{report}/receipts", "/drills/action", "/drills/pause", "/logout")


@st.composite
def _post(draw: st.DrawFn) -> dict[str, Any]:
    rig = _rig()
    path = draw(st.sampled_from(_POSTS)).format(
        action=draw(st.sampled_from(["acknowledge", "comment", "resolve", "close", "silence", "escalate"])),
        ticket=draw(st.sampled_from(["1", "2", "0", "99999999999999999999"])),
        ticket_action=draw(st.sampled_from(["status", "answer", "comment", "link", "unlink", "kb"])),
        report=draw(st.sampled_from(["drill-2021-1", "x", "..", "%00"])))
    form: dict[str, str] = {}
    for key in draw(st.lists(st.sampled_from(_FIELDS), max_size=6, unique=True)):
        value = draw(st.sampled_from(rig.fingerprints)) if key in ("fingerprint", "alarm") else draw(_VALUES)
        form[key] = draw(_wired(mutated_text(st.just(value), 2)))
    return {"path": path, "form": form, "csrf": draw(st.sampled_from(["session"] * 5 + ["none", "forged"]))}


def signed_in_post(case: dict[str, Any]) -> Outcome:
    rig = _rig()
    client = rig.admin
    token = {"session": client.csrf, "none": "", "forged": "forged-token"}[case["csrf"]]
    if case["path"] == "/logout" and token == client.csrf:
        return Rejected("skipped_logout")  # the rest of the run needs the session
    return _judge(rig.loop.run_until_complete(client.post(case["path"], case["form"], token=token)))


# --- pages with parameters --------------------------------------------------------------------

_GETS = ("/alarms/{x}", "/alarms/children/{x}", "/devices/{x}", "/sites/{x}", "/prefectures/{x}",
         "/triage/tickets/{x}", "/triage/similar?q={x}", "/triage/callers.json?q={x}", "/reports/monthly?month={x}",
         "/ids/operations/operator/{x}", "/ids/operations/org/{x}", "/cascade/{x}", "/cascade/{x}/progress",
         "/cascade/confirm?token={x}", "/maintenance?as_of={x}", "/alarms?severity={x}&kind={x}",
         "/drills/reports/{x}/{x}", "/triage/kb/{x}", "/login?next={x}", "/audit?user={x}")


@st.composite
def _get(draw: st.DrawFn) -> str:
    rig = _rig()
    value = draw(_wired(mutated_text(st.sampled_from([*rig.fingerprints, "muni-47-001-cs1", "muni-47-001", "47", "1",
                                               "2026-12", "drill-2021-1", "..%2f..%2fetc%2fpasswd"]), 3)))
    return draw(st.sampled_from(_GETS)).replace("{x}", httpx.URL("/", params={"v": value}).query.decode()[2:])


def signed_in_get(path: str) -> Outcome:
    rig = _rig()
    return _judge(rig.loop.run_until_complete(rig.admin.http.get(path)))


def targets() -> list[Target]:
    return [
        Target("console_login", "console", _login_form(), login_post,
               "POST /login: names, passwords, next targets and CSRF tokens (dashboards/views/session.py)", slow=True,
               deadline=10.0),
        Target("console_forms", "console", _post(), signed_in_post,
               "every form POST signed in as admin: alarm actions, tickets, maintenance, cascade, drills", slow=True,
               deadline=5.0),
        Target("console_pages", "console", _get(), signed_in_get,
               "pages with path and query parameters: alarms, devices, tickets, cascade confirm links", slow=True,
               deadline=5.0, corpus="console_pages", corpus_text=True),
    ]
