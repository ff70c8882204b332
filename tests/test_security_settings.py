"""Secure by default where it is a setting: console session cookies, SNMPv3 authPriv."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dashboards.server import serve
from monitor.config import Config, SnmpSettings, load_config
from monitor.configerror import ConfigError
from monitor.inventory.model import Inventory
from monitor.store import Store
from tests.console_fixtures import static_context


@pytest.mark.parametrize("secure", [False, True])
async def test_the_session_cookie_is_secure_when_configured(small_inventory: Inventory, tmp_path: Path,
                                                            secure: bool) -> None:
    """``console.secure_cookies: true`` (served over TLS) → Secure; HttpOnly and SameSite=Lax either way."""
    config = tmp_path / "jukimon.yaml"
    config.write_text(f"console: {{secure_cookies: {str(secure).lower()}}}\n")
    settings = load_config(config).console
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db")
    server = await serve(await static_context(small_inventory, store), port=0, https_only=settings.secure_cookies)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            cookie = (await http.get("/login")).headers["set-cookie"].lower()
    finally:
        await server.stop()
        await store.close()
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")}
    assert {"jukimon_session", "httponly", "samesite"} <= attributes
    assert ("secure" in attributes) is secure


def test_snmp_is_v3_with_privacy_by_default_and_v3_cannot_drop_privacy() -> None:
    snmp = Config().check().collectors.snmp
    assert (snmp.version, snmp.auth_protocol, snmp.priv_protocol) == ("3", "SHA", "AES")
    with pytest.raises(ConfigError, match="at least 8"):
        SnmpSettings(priv_key="").check("collectors.snmp")  # no authNoPriv: v3 always encrypts
    with pytest.raises(ConfigError, match="only AES"):
        SnmpSettings(priv_protocol="none").check("collectors.snmp")
