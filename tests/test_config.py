"""Configuration: defaults, overrides, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.inventory.model import Role


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jukimon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_poll_routers_and_firewalls_every_10_seconds() -> None:
    config = load_config(None)
    assert config.collectors.interval_for("x", Role.ROUTER) == 10.0
    assert config.collectors.interval_for("x", Role.FW) == 10.0
    assert config.collectors.interval_for("x", Role.CS) == 30.0 and config.collectors.interval_for("x", Role.PREFECTURE_FW) == 10.0
    assert config.outputs.mqtt is None and config.collectors.snmp.version == "3"


def test_overrides_per_role_and_device(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
collectors:
  intervals: {cs: 30}
  device_intervals: {muni-01-001-cs1: 5}
  snmp: {version: "2c", community: nocview}
outputs:
  mqtt: {port: 1884}
"""))
    c = config.collectors
    assert c.interval_for("muni-01-002-cs1", Role.CS) == 30.0
    assert c.interval_for("muni-01-001-cs1", Role.CS) == 5.0
    assert c.snmp.community == "nocview" and c.snmp.user == "jukimon"
    assert config.outputs.mqtt is not None and config.outputs.mqtt.port == 1884
    assert config.outputs.mqtt.host == "127.0.0.1"


def test_secret_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNMP_AUTH", "a-long-secret")
    config = load_config(write(tmp_path, "collectors: {snmp: {auth_key: 'env:SNMP_AUTH'}}\n"))
    assert config.collectors.snmp.auth_key == "a-long-secret"
    with pytest.raises(ConfigError, match="collectors.snmp.priv_key: environment variable NOPE is not set"):
        load_config(write(tmp_path, "collectors: {snmp: {priv_key: 'env:NOPE'}}\n"))


@pytest.mark.parametrize("text, message", [
    ("collectors: {intervals: {rooter: 10}}", "collectors.intervals.rooter: unknown role"),
    ("collectors: {intervals: {router: -1}}", "collectors.intervals.router: must be a number > 0"),
    ("collectors: {timeout: fast}", "collectors.timeout: expected float"),
    ("collectors: {polling: 1}", "collectors.polling: unknown setting"),
    ("collectors: {snmp: {version: '1'}}", "collectors.snmp.version"),
    ("collectors: [1, 2]", "collectors: expected a mapping"),
    ("collectors: {concurrency: 0}", "collectors.concurrency: must be at least 1"),
    ("outputs: {mqtt: {port: true}}", "outputs.mqtt.port: expected int"),
    ("collectors: {timeout: 1\n  bad", "line"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_a_state_dir_takes_the_defaults_under_state_and_keeps_what_the_file_sets(tmp_path: Path) -> None:
    from monitor.config import under_state_dir

    path = tmp_path / "jukimon.yaml"
    path.write_text("notify: {mail_sink: /var/spool/jukimon-mail}\n")
    config = under_state_dir(load_config(path), tmp_path / "job-b")
    assert config.store.url == f"sqlite+aiosqlite:///{tmp_path}/job-b/jukimon.db"
    assert config.outputs.spool_dir == tmp_path / "job-b" / "spool"
    assert config.cascade.link_key == tmp_path / "job-b" / "cascade" / "link.key"
    assert config.notify.mail_sink == Path("/var/spool/jukimon-mail")  # set by the file: kept
    assert under_state_dir(load_config(None), Path("state")) == load_config(None)
