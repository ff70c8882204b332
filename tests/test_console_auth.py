"""Who gets in and what they may do: logins per role, lock-out, CSRF refusals, the audit trail, the catalogues.

The console is served for real (uvicorn on a free port, on the test's loop) over a
small inventory and a SQLite store; requests go over HTTP as a browser's would.
"""

from __future__ import annotations

import string

import pytest
import pytest_asyncio

from starlette.routing import Route

from dashboards import i18n
from dashboards.app import _placeholders
from dashboards.pages import NAV, NavItem
from dashboards.auth import LOCK_AFTER, AuthError, UserBook, UserRole, hash_password, verify_password
from dashboards.server import ConsoleServer, load_secret
from monitor.inventory.model import Inventory
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, served

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    async with served(small_inventory, tmp_path_factory.mktemp("console")) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def client(console: ConsoleServer):
    client = ConsoleClient(console.url)
    yield client
    await client.close()


async def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("s3cret-passphrase"), hash_password("s3cret-passphrase")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("s3cret-passphrase", first) and not verify_password("s3cret-passphrasf", first)


async def test_each_role_signs_in_and_sees_its_own_navigation(client: ConsoleClient) -> None:
    expected = {UserRole.CALL_CENTER: "受付", UserRole.DRILL_CONTROLLER: "訓練", UserRole.AUDITOR: "操作ログ",
                UserRole.NOC_OPERATOR: "保守", UserRole.ADMIN: "操作ログ"}
    for role, name in USERS.items():
        page = await client.login(name)
        assert page.status_code == 200 and f"{name} <small>{i18n.translate('ja', f'role.{role.value}')}" in page.text
        assert f">{expected[role]}</a>" in page.text
        await client.post("/logout")
    assert (await client.get("/alarms")).url.path == "/login", "signed out: back to the login page"


async def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(console: ConsoleServer,
                                                                               client: ConsoleClient) -> None:
    users: UserBook = console.app.state.console.users
    await users.add("locktest", UserRole.NOC_OPERATOR, PASSWORD)
    for _ in range(LOCK_AFTER - 1):
        refused = await client.login("locktest", "wrong-password!")
        assert refused.status_code == 401 and "パスワードが違います" in refused.text
    locked = await client.login("locktest", "wrong-password!")
    assert locked.status_code == 403 and "ロックされています" in locked.text
    still = await client.login("locktest", PASSWORD)
    assert still.status_code == 403, "the right password does not open a locked account"
    assert await users.unlock("locktest")
    assert (await client.login("locktest", PASSWORD)).status_code == 200
    trail = [e for e in await console.app.state.console.audit.entries(action="login") if e.target == "locktest"]
    assert [e.result for e in reversed(trail)] == ["failed"] * (LOCK_AFTER + 1) + ["ok"]
    assert trail[1].detail == {"reason": "locked"}


async def test_a_user_cannot_be_added_twice_or_with_a_short_password(console: ConsoleServer) -> None:
    users: UserBook = console.app.state.console.users
    with pytest.raises(AuthError, match="既にあります"):
        await users.add(USERS[UserRole.AUDITOR], UserRole.AUDITOR, PASSWORD)
    with pytest.raises(AuthError, match="10 文字以上"):
        await users.add("shorty", UserRole.AUDITOR, "short")
    with pytest.raises(AuthError, match="ロールは"):
        await users.add("nobody", "superuser", PASSWORD)


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_in_japanese(console: ConsoleServer,
                                                                               client: ConsoleClient) -> None:
    await client.login(USERS[UserRole.NOC_OPERATOR])
    for token in ("", "forged-token"):
        refused = await client.post("/lang", {"lang": "en", "next": "/"}, token=token)
        assert refused.status_code == 403
        assert "CSRF トークンがないか一致しません" in refused.text
    assert (await client.get("/alarms")).text.count('<html lang="ja">') == 1, "the refused switch changed nothing"
    trail = await console.app.state.console.audit.entries(action="csrf.refused", limit=2)
    assert [e.result for e in trail] == ["denied", "denied"]
    assert (await client.post("/lang", {"lang": "en", "next": "/alarms"})).text.count('<html lang="en">') == 1


async def test_the_login_form_itself_needs_the_token(client: ConsoleClient) -> None:
    refused = await client.post("/login", {"name": USERS[UserRole.ADMIN], "password": PASSWORD}, token="")
    assert refused.status_code == 403


async def test_the_session_cookie_is_httponly_and_samesite_lax(console: ConsoleServer, client: ConsoleClient) -> None:
    await client.get("/login")
    response = await client.post("/login", {"name": USERS[UserRole.AUDITOR], "password": PASSWORD})
    cookie = response.history[0].headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "jukimon_session=" in cookie


async def test_every_menu_entry_is_served_and_an_unserved_one_gets_a_placeholder(client: ConsoleClient) -> None:
    await client.login(USERS[UserRole.ADMIN])
    for item in NAV:
        page = await client.get(item.path)
        assert page.status_code == 200 and "badge-prep" not in page.text, item.path
    served = [Route("/", lambda request: None)]
    filled = _placeholders((NavItem("/", "nav.noc"), NavItem("/future", "nav.ids")), served)
    assert [route.path for route in filled] == ["/future"]


async def test_the_catalogues_have_the_same_keys_and_placeholders() -> None:
    ja, en = i18n.catalogue("ja"), i18n.catalogue("en")
    assert ja.keys() == en.keys()
    for key in ja:
        names = [{f for _, f, _, _ in string.Formatter().parse(text) if f} for text in (ja[key], en[key])]
        assert names[0] == names[1], key


async def test_the_console_key_is_created_private_once_and_kept(tmp_path) -> None:
    path = tmp_path / "state" / "console.key"
    first = load_secret(path)
    assert len(first) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_secret(path) == first, "the same key after a restart: sessions survive"
