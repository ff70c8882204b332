"""``jukimon cascade``: key files for the national centre, and the receipt status an operator reads."""

from __future__ import annotations

import argparse
import asyncio
import json
import stat
from pathlib import Path

import pytest

from alerting.cascade import Channel, Incident, Report, load_link_key, load_private_key, load_public_key, open_cascade
from alerting.cascade.cli import register
from monitor.inventory import Inventory, save_inventory
from monitor.store import Store
from tests.test_cascade_fixtures import T0, SimClock, cascade_settings


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cascade", *argv])
    return args.handler(args)


def test_keygen_and_link_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public, link = tmp_path / "k" / "ed25519.pem", tmp_path / "k" / "ed25519.pub.pem", tmp_path / "link.key"
    assert run_cli("keygen", "--private", str(private), "--public", str(public)) == 0
    out = capsys.readouterr().out
    assert "PRIVATE" not in out and str(public) in out
    assert load_private_key(private).public_key() == load_public_key(public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(Exception, match="refusing to replace"):
        run_cli("keygen", "--private", str(private), "--public", str(public))
    assert run_cli("keygen", "--private", str(private), "--public", str(public), "--force") == 0
    assert run_cli("link-key", "--out", str(link)) == 0
    assert len(load_link_key(link)) == 32


DRILL = Incident("drill-2021", "処理装置Xのネットワーク切断", drill=True, opened=T0)


async def first_report_with_one_receipt(url: str, tmp_path: Path, inventory: Inventory) -> None:
    async with await Store.open(url) as store:
        cascade = await open_cascade(store, inventory, cascade_settings(tmp_path, 25), clock=SimClock())
        await cascade.tracker.open_incident(DRILL)
        await cascade.tracker.add_report(Report(DRILL.id, 1, "初報本文", T0))
        await cascade.tracker.confirm(f"{DRILL.id}.1", "pref-01", Channel.CONSOLE, by="山田")


def test_status_of_reports_on_record(tmp_path: Path, small_inventory: Inventory,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/jukimon.db"
    asyncio.run(first_report_with_one_receipt(url, tmp_path, small_inventory))
    save_inventory(small_inventory, tmp_path / "inventory.yaml")

    def status(*extra: str) -> str:
        assert run_cli("status", "--store", url, "--inventory", str(tmp_path / "inventory.yaml"), *extra) == 0
        return capsys.readouterr().out

    summary = status()
    assert summary.startswith(f"{DRILL.id}.1 【訓練】【初報】{DRILL.title}: 対象 14 配信 0 失敗 0 確認 1 未確認 13")
    detail = status("--report", f"{DRILL.id}.1")
    assert "01 北海道" in detail and "未確認 13:" in detail and "muni-01-002 小樽市 not_sent" in detail
    progress = json.loads(status("--report", f"{DRILL.id}.1", "--json"))
    assert progress["counts"]["confirmed"] == 1 and len(progress["missing"]) == 13
    with pytest.raises(ValueError, match="no report drill-2021.5"):
        status("--report", "drill-2021.5")
