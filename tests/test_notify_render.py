"""What the NOC reads: Japanese subjects and bodies with JST and era dates, English on request, drills unmistakable."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from alerting.model import Alarm, AlarmStatus, Notification
from alerting.notify import KINDS, mark_drill, render, wareki, webhook_payload
from alerting.notify.catalogue import MESSAGES
from alerting.notify.compose import MAX_LISTED, html_body
from monitor.lifecycle import JST

# 令和8年12月2日(水) 09:30:15 JST
T0 = dt.datetime(2026, 12, 2, 9, 30, 15, tzinfo=JST).timestamp()


def alarm(fingerprint: str = "root_cause:pref-01-fw1", summary: str = "北海道 FW 停止 (配下 12 拠点到達不能)",
          severity: str = "critical", started: float = T0, **kw: object) -> Alarm:
    labels = {"kind": fingerprint.split(":")[0], "subject": fingerprint.split(":")[1], "site": "pref-01",
              "prefecture": "01"}
    return Alarm(fingerprint, labels, summary, severity, started, **kw)  # type: ignore[arg-type]


def otaru_cs(**kw: object) -> Alarm:
    return alarm("device_down:muni-01-203-cs1", "小樽市 CS 応答なし", "warning", T0 - 15, **kw)


def notification(subject: str, body: str, drill: bool) -> Notification:
    return Notification("g|mail|0|1", "mail", "g", ("root_cause:pref-01-fw1",), subject, body, T0, drill=drill)


def test_firing_in_japanese_names_the_worst_alarm_first_with_jst_and_era_dates() -> None:
    root = alarm(suppressed_count=12)
    subject, body = render("firing", [otaru_cs(), root], "noc")

    assert subject == "[障害発生] 重大: 北海道 FW 停止 (配下 12 拠点到達不能) 他1件"
    assert body.index("北海道 FW 停止") < body.index("小樽市 CS 応答なし")
    assert "以下のアラーム 2 件が発生しました。" in body
    assert "発生日時: 令和8年(2026年)12月2日(水) 09:30:15 JST" in body
    assert "都道府県: 北海道" in body and "種別: 根本原因" in body and "種別: 機器停止" in body
    assert "影響を受けた配下: 12 件" in body
    assert "【訓練】" not in subject + body


def test_english_is_the_same_template_in_other_words() -> None:
    subject, body = render("firing", [otaru_cs(), alarm()], "noc", lang="en")

    assert subject == "[Firing] critical: 北海道 FW 停止 (配下 12 拠点到達不能) (+1 more)"
    assert "Started: Wed 2026-12-02 09:30:15 JST" in body
    assert "Prefecture: Hokkaido" in body and "Type: root cause" in body
    assert "発生" not in body and "重要度" not in body


@pytest.mark.parametrize("lang", sorted(MESSAGES))
@pytest.mark.parametrize("kind", KINDS)
def test_a_drill_is_marked_in_subject_and_at_both_ends_of_the_body_in_every_kind(kind: str, lang: str) -> None:
    subject, body = render(kind, [alarm(drill=True), otaru_cs(drill=True)], "noc", lang=lang, escalation_step=2)

    assert subject.startswith("【訓練】")
    lines = body.splitlines()
    assert lines[0] == MESSAGES[lang]["drill.banner"]
    assert MESSAGES[lang]["drill.banner"] in lines[-4:]


def test_a_drill_alarm_in_a_real_group_is_tagged_on_its_own_line_and_the_mail_is_not_a_drill() -> None:
    subject, body = render("firing", [alarm(), otaru_cs(drill=True)], "noc")

    assert not subject.startswith("【訓練】")
    assert "■ 2. 【訓練】小樽市 CS 応答なし" in body
    assert "■ 1. 北海道 FW 停止" in body


def test_each_kind_says_what_happened() -> None:
    resolved = otaru_cs(status=AlarmStatus.RESOLVED, resolved_at=T0 + 600)
    assert "復旧日時: 令和8年(2026年)12月2日(水) 09:40:15 JST" in render("resolved", [resolved], "noc")[1]
    subject, body = render("escalation", [alarm()], "noc-lead", escalation_step=2)
    assert subject.startswith("[エスカレーション 第2段階]")
    assert "第2段階へエスカレーション" in body and "noc-lead 御中" in body
    acked = otaru_cs(acknowledged_by="tanaka", acknowledged_at=T0 + 60)
    subject, body = render("reminder", [acked], "noc")
    assert subject.startswith("[再通知]")
    assert "確認: tanaka (令和8年(2026年)12月2日(水) 09:31:15 JST)" in body


def test_refuses_what_it_cannot_render() -> None:
    with pytest.raises(ValueError, match="kind"):
        render("paged", [alarm()], "noc")
    with pytest.raises(ValueError, match="escalation_step"):
        render("escalation", [alarm()], "noc")
    with pytest.raises(ValueError, match="language"):
        render("firing", [alarm()], "noc", lang="fr")
    with pytest.raises(ValueError, match="at least one"):
        render("firing", [], "noc")


def test_a_burst_lists_the_worst_and_counts_the_rest() -> None:
    burst = [alarm(f"device_down:muni-01-{i:03d}-cs1", f"CS {i} 応答なし", "warning") for i in range(50)]
    subject, body = render("firing", burst + [alarm()], "noc")

    assert subject.endswith("他50件")
    assert body.count("■ ") == MAX_LISTED
    assert "■ 1. 北海道 FW 停止" in body
    assert f"ほか {51 - MAX_LISTED} 件はコンソールで確認してください。" in body


def test_plain_text_keeps_angle_brackets_and_html_escapes_them() -> None:
    subject, body = render("firing", [alarm(summary="応答時間 > 500ms <script>alert(1)</script>")], "noc")
    assert "<script>alert(1)</script>" in body

    html = html_body(notification(subject, body, drill=False))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "#c00000" not in html
    assert "#c00000" in html_body(notification("【訓練】x", "y", drill=True))


def test_mark_drill_adds_the_marks_a_hand_written_drill_notification_lacks() -> None:
    marked = mark_drill(notification("CS 停止", "本文", drill=True))
    assert marked.subject == "【訓練】CS 停止"
    assert marked.body.splitlines()[0] == MESSAGES["ja"]["drill.banner"]
    assert marked.body.endswith("本文")

    subject, body = render("firing", [alarm(drill=True)], "noc")
    rendered = notification(subject, body, drill=True)
    assert mark_drill(rendered) == rendered
    real = notification("CS 停止", "本文", drill=False)
    assert mark_drill(real) is real


def test_webhook_payload_is_chat_text_plus_the_notification_identity() -> None:
    subject, body = render("firing", [alarm()], "chat")
    payload = webhook_payload(notification(subject, body, drill=False))

    assert payload["text"] == f"{subject}\n\n{body}"
    assert payload["jukimon"]["id"] == "g|mail|0|1"
    assert payload["jukimon"]["alarms"] == ["root_cause:pref-01-fw1"]
    assert json.loads(json.dumps(payload, ensure_ascii=False)) == payload


@pytest.mark.parametrize("day, expected", [
    (dt.date(2026, 12, 2), "令和8年12月2日"),
    (dt.date(2019, 5, 1), "令和元年5月1日"),
    (dt.date(2019, 4, 30), "平成31年4月30日"),
    (dt.date(1989, 1, 8), "平成元年1月8日"),
])
def test_era_dates(day: dt.date, expected: str) -> None:
    assert wareki(day) == expected


def test_dates_are_japan_dates_not_utc() -> None:
    just_after_midnight_jst = dt.datetime(2026, 12, 1, 15, 0, 5, tzinfo=dt.timezone.utc).timestamp()
    body = render("firing", [alarm(started=just_after_midnight_jst)], "noc")[1]
    assert "令和8年(2026年)12月2日(水) 00:00:05 JST" in body


def test_every_language_has_every_message() -> None:
    keys = {lang: set(messages) for lang, messages in MESSAGES.items()}
    assert keys["en"] == keys["ja"]
