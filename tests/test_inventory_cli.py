"""``jukimon inventory generate | check | stats`` as an operator would run them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.inventory.cli import register

ROOT = Path(__file__).resolve().parents[1]


def jukimon(*argv: str) -> int:
    """Parse like the real ``jukimon`` shell and run the handler."""
    parser = argparse.ArgumentParser(prog="jukimon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    assert jukimon("inventory", "generate", "--out", str(path), "--seed", "3", "--as-of", "2025-04-01") == 0
    return path


def small_inventory(tmp_path: Path, replace: tuple[str, str] | None = None) -> Path:
    from tests.test_inventory_io import GOOD as text

    if replace:
        text = text.replace(*replace)
    path = tmp_path / "small.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_generate_writes_a_full_scale_file(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = generated.read_text(encoding="utf-8")
    assert text.count("\n- {id: muni-") > 1741
    assert "name: jukimon-seed3-2025-04-01" in text


def test_generate_is_deterministic(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.yaml"
    assert jukimon("inventory", "generate", "--out", str(again), "--seed", "3", "--as-of", "2025-04-01") == 0
    assert again.read_bytes() == generated.read_bytes()


def test_check_ok_prints_one_line(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert jukimon("inventory", "check", str(generated)) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "OK" in out
    assert "47 prefectures" in out and "1,741 municipalities" in out
    assert err == ""


def test_check_lists_every_problem_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_inventory(tmp_path)
    text = path.read_text(encoding="utf-8").replace("127.11.0.4", "10.0.0.4").replace("role: router", "role: switch")
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert jukimon("inventory", "check", str(path)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:8: pref-01-rt1: device: role:")
    assert lines[1].startswith(f"{path}:9: pref-01-cs: address 10.0.0.4 is outside 127.0.0.0/8")
    assert lines[-1] == f"{path}: 2 problem(s)"


def test_check_malformed_yaml_reports_the_parser_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_inventory(tmp_path, ("parents: [national-fw]", "parents: [national-fw"))
    assert jukimon("inventory", "check", str(path)) == 1
    assert capsys.readouterr().err.startswith(f"{path}:8: not valid YAML")


def test_check_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert jukimon("inventory", "check", str(tmp_path / "nope.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert jukimon("inventory", "stats", str(tmp_path)) == 2  # a directory


def test_stats_table(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert jukimon("inventory", "stats", str(generated), "--as-of", "2025-04-01") == 0
    out = capsys.readouterr().out
    assert "市区町村 municipalities" in out and "1,741" in out
    assert "危殆化暗号 weak crypto" in out
    # Right-aligned numbers: every value column ends at the same display width.
    from monitor.terminal import display_width

    rows = out.splitlines()[1:]
    assert len({display_width(row) for row in rows}) == 1


def test_stats_json(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert jukimon("inventory", "stats", str(generated), "--json", "--as-of", "2025-04-01") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sites"]["by_tier"]["municipality"] == 1741
    assert stats["prefectures"]["total"] == 47
    assert stats["municipalities"]["single_line"] == 174
    assert stats["municipalities"]["single_cs"] == 522
    assert stats["devices"]["by_role"]["cs_recovery"] == 522
    assert 8_700 <= stats["devices"]["polled"] <= 8_900
    assert stats["links"]["total"] == stats["devices"]["by_role"]["router"]
    life = stats["lifecycle"]
    assert 0 < life["weak_crypto"] < life["tls_devices"] * 0.06
    assert 0 < life["cert_expired"] < life["cert_expiring"] < life["tls_devices"] * 0.06


def test_generate_options_change_the_shares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "half.yaml"
    assert jukimon("inventory", "generate", "--out", str(path), "--single-line-share", "0.5", "--as-of", "2025-04-01") == 0
    capsys.readouterr()
    assert jukimon("inventory", "stats", str(path), "--json") == 0
    assert json.loads(capsys.readouterr().out)["municipalities"]["single_line"] == round(0.5 * 1741)


@pytest.mark.parametrize("bad", [["--single-line-share", "1.5"], ["--as-of", "2025-13-01"], ["--seed", "x"]])
def test_bad_generate_options_are_usage_errors(bad: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        jukimon("inventory", "generate", "--out", str(tmp_path / "x.yaml"), *bad)
    assert caught.value.code == 2


def test_help_texts_explain_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        jukimon("inventory", "check", "--help")
    out = capsys.readouterr().out
    assert "FILE:LINE" in out and "exit 2" in out


def test_real_jukimon_command(generated: Path) -> None:
    pytest.importorskip("simnet.cli")
    pytest.importorskip("monitor.run")
    run = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "inventory", "check", str(generated)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout and "1,741 municipalities" in run.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "inventory", "check", str(generated) + ".missing"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert missing.returncode == 2
