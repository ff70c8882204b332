"""A recipient can prove a report came from the national centre; any change after signing is caught and named."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import stat
from pathlib import Path
from typing import AsyncIterator

import pytest

from alerting.cascade import (Cascade, Incident, Report, Signer, generate_keypair, load_private_key,
                              load_public_key, open_cascade, verify_message)
from alerting.cascade.sender import DRILL_BANNER
from alerting.cascade.signing import SigningError
from monitor.inventory import Inventory
from monitor.store import Store
from tests.test_cascade_cli import run_cli
from tests.test_cascade_fixtures import T0, SimClock, cascade_settings

DRILL = Incident("drill-2021-12-08", "都道府県サーバ集約センターにおけるウイルス疑義（処理装置Xの切断）", drill=True, opened=T0)
BODY = "集約センターにおいてウイルス疑義が発生したため、安全性が確認できるまで処理装置Xをネットワークから切断しました。"


@pytest.fixture
async def cascade(tmp_path: Path, small_inventory: Inventory) -> AsyncIterator[Cascade]:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
        cascade = await open_cascade(store, small_inventory, cascade_settings(tmp_path, 25), clock=SimClock())
        await cascade.tracker.open_incident(DRILL)
        await cascade.tracker.add_report(Report(DRILL.id, 1, BODY, T0))
        yield cascade


def first_report(cascade: Cascade, org: str = "muni-01-002") -> bytes:
    return cascade.composer.compose(cascade.tracker.delivery(f"{DRILL.id}.1", org)).data  # type: ignore[arg-type]


def public_key(tmp_path: Path):  # noqa: ANN201 - cryptography's key type
    return load_public_key(tmp_path / "keys" / "ed25519.pub.pem")


def body_of(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.default).get_content()


def with_body(data: bytes, text: str) -> bytes:
    head, _, _ = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n" + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def with_header(data: bytes, name: str, value: str) -> bytes:
    return re.sub(rb"^" + name.encode() + rb": [^\r\n]*(\r\n[ \t][^\r\n]*)*", f"{name}: {value}".encode(), data,
                  count=1, flags=re.M)


async def test_drill_report_is_marked_in_subject_and_body_and_verifies(cascade: Cascade, tmp_path: Path) -> None:
    data = first_report(cascade)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == f"【訓練】【初報】{DRILL.title}"
    body = msg.get_content()
    lines = body.strip().splitlines()
    assert lines[0] == DRILL_BANNER and lines[-1] == DRILL_BANNER
    assert "小樽市 住基ネット担当者 様" in body and BODY in body
    assert "北海道に代わり Jukimon が転送しています" in body  # the system forwards for Hokkaido by default
    assert msg["Message-ID"] == f"<{DRILL.id}.1.muni-01-002@cascade.jukimon>"

    result = verify_message(data, public_key(tmp_path))
    assert result.ok, result.reason
    assert (result.report, result.drill) == (f"{DRILL.id}.1", True)


async def test_real_incident_has_no_drill_marks(cascade: Cascade, tmp_path: Path) -> None:
    real = Incident("inc-2025-001", "処理装置Xの障害", drill=False, opened=T0)
    await cascade.tracker.open_incident(real)
    await cascade.tracker.add_report(Report(real.id, 1, "障害が発生しました。", T0))
    data = cascade.composer.compose(cascade.tracker.delivery(f"{real.id}.1", "pref-01")).data  # type: ignore[arg-type]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "【初報】処理装置Xの障害"
    assert "訓練" not in msg.get_content()
    assert verify_message(data, public_key(tmp_path)).drill is False


@pytest.mark.parametrize("tamper, reason", [
    (lambda d: with_body(d, body_of(d).replace("処理装置X", "処理装置Y")), "body altered after signing"),
    (lambda d: with_header(d, "Subject", "=?utf-8?b?" + base64.b64encode(
        f"【初報】{DRILL.title}".encode()).decode() + "?="), "signed headers altered after signing"),
    (lambda d: with_header(d, "X-Jukimon-Drill", "no"), "signed headers altered after signing"),
    (lambda d: with_header(d, "X-Jukimon-Report", "drill-2021-12-08.2"), "signed headers altered after signing"),
    (lambda d: with_header(d, "X-Jukimon-Signature", "v=1; a=ed25519"), "X-Jukimon-Signature malformed: missing"),
    (lambda d: re.sub(rb"X-Jukimon-Signature: [^\r\n]*\r\n", b"", d), "not signed"),
    (lambda d: b"Subject: =?utf-8?b?5a6f6Zqb?=\r\n" + d, "signed header subject is present 2 times"),
])
async def test_tampered_message_fails_and_says_why(cascade: Cascade, tmp_path: Path, tamper, reason: str) -> None:
    result = verify_message(tamper(first_report(cascade)), public_key(tmp_path))
    assert not result.ok
    assert reason in result.reason


async def test_another_key_is_named(cascade: Cascade, tmp_path: Path) -> None:
    other = generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    result = verify_message(first_report(cascade), load_public_key(tmp_path / "other.pub.pem"))
    assert not result.ok
    assert f"not with the given public key {other}" in result.reason


async def test_transport_changes_do_not_break_the_signature(cascade: Cascade, tmp_path: Path) -> None:
    """Relays may turn CRLF into LF, re-encode the body as quoted-printable and re-fold headers."""
    data = first_report(cascade)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    msg.set_content(msg.get_content(), cte="quoted-printable")
    relayed = msg.as_bytes(policy=email.policy.default).replace(b"\r\n", b"\n")  # re-folded at 78
    assert relayed != data
    result = verify_message(relayed, public_key(tmp_path))
    assert result.ok, result.reason


def test_keys_private_key_owner_only_and_never_replaced(tmp_path: Path) -> None:
    key_id = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    with pytest.raises(SigningError, match="refusing to replace"):
        generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    signer = Signer(load_private_key(tmp_path / "k.pem"))
    assert repr(signer) == f"Signer(key_id={key_id})"
    with pytest.raises(SigningError, match="not a usable PEM public key"):
        load_public_key(tmp_path / "k.pem")


async def test_verify_command(cascade: Cascade, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.eml", tmp_path / "bad.eml"
    good.write_bytes(first_report(cascade))
    bad.write_bytes(with_header(good.read_bytes(), "X-Jukimon-Drill", "no"))
    key = str(tmp_path / "keys" / "ed25519.pub.pem")

    assert run_cli("verify", str(good), "--public-key", key) == 0
    assert capsys.readouterr().out.startswith(f"OK: {good}: signed by key")
    assert run_cli("verify", str(bad), "--public-key", key) == 1
    assert "NG:" in capsys.readouterr().out
    assert run_cli("verify", str(tmp_path / "missing.eml"), "--public-key", key) == 2
    assert "cannot check" in capsys.readouterr().err
