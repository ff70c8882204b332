"""The annual drill at full scale: 初報, 第2報 and 終報 to 47 prefectures and 1,741 municipalities.

Real SMTP server (aiosmtpd), real Mosquitto, the confirm page through its ASGI app.
Tokyo and Osaka forward to their municipalities themselves, two minutes after they
receive; Jukimon forwards for the other 45. Every recipient (seeded) confirms after
a random delay by the mail's link, by MQTT or through the console — or never. The
simulated clock runs in 5-minute ticks; at each tick the reminders that went out
must be exactly those an independent model of the deadline rules expects, and at
the end of each report the tracker's counts must be exact.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import httpx
import pytest

from alerting.cascade import (Cascade, Channel, Counts, Incident, Report, confirm_app, load_public_key, open_cascade,
                              verify_message)
from monitor.inventory import Inventory
from monitor.store import Store
from tests.servers import mosquitto_server
from tests.test_cascade_fixtures import BASE_URL, T0, Received, SimClock, cascade_settings, smtp_sink

pytestmark = pytest.mark.slow

WITHIN, INTERVAL, MAX_REMINDERS, TICK = 1800.0, 900.0, 2, 300.0
SELF_FORWARDING = ("pref-13", "pref-27")
DRILL = Incident("drill-2021-12-08", "都道府県サーバ集約センターにおけるウイルス疑義（処理装置Xの切断）", drill=True, opened=T0)
BODIES = ["ウイルス疑義のため処理装置Xをネットワークから切断しました。", "処理装置Xの調査を継続しています。",
          "安全性が確認されたため処理装置Xを再接続しました。本件は終了です。"]


@dataclass
class Recipient:
    """One organisation's simulated 住基ネット担当者 for one report."""

    org: str
    delay: float | None  # seconds after its mail arrived; None = never confirms
    channel: Channel
    delivered: float = 0.0
    reminders: int = 0
    reminded_at: float | None = None

    @property
    def confirms_at(self) -> float | None:
        return None if self.delay is None else self.delivered + self.delay

    def due(self, t: float) -> bool:
        """The deadline rules, written independently of the tracker."""
        confirmed = self.confirms_at is not None and self.confirms_at <= t
        return (not confirmed and t >= self.delivered + WITHIN and self.reminders < MAX_REMINDERS
                and (self.reminded_at is None or t >= self.reminded_at + INTERVAL))


@dataclass
class Drill:
    cascade: Cascade
    clock: SimClock
    web: httpx.AsyncClient
    mqtt: aiomqtt.Client
    mqtt_reports: dict[tuple[str, str], dict] = field(default_factory=dict)

    async def collect_mqtt_reports(self) -> None:
        async for message in self.mqtt.messages:
            payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            self.mqtt_reports[(payload["report"], payload["org"])] = payload

    async def until(self, condition, what: str) -> None:  # noqa: ANN001
        try:
            async with asyncio.timeout(20):
                while not condition():
                    await asyncio.sleep(0.005)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def confirm(self, report: Report, recipients: list[Recipient], links: dict[str, str]) -> None:
        """Recipients whose confirmation time is now, each by their channel, all at once."""
        tracker = self.cascade.tracker
        for r in recipients:
            if r.channel is Channel.MQTT:
                payload = self.mqtt_reports[(report.id, r.org)]
                await self.mqtt.publish(payload["ack_topic"], json.dumps({"token": payload["token"]}), qos=1)
        pages = await asyncio.gather(*(self.web.get(links[r.org]) for r in recipients if r.channel is Channel.LINK))
        assert {p.status_code for p in pages} <= {200}
        await asyncio.gather(*(tracker.confirm(report.id, r.org, Channel.CONSOLE, by="コールセンター")
                               for r in recipients if r.channel is Channel.CONSOLE))
        await self.until(lambda: all(tracker.delivery(report.id, r.org).confirmed_at is not None  # type: ignore
                                     for r in recipients), "MQTT receipts")


def by_org(received: list[Received], cascade: Cascade) -> dict[str, Received]:
    address_to_org = {o.address: o.id for o in cascade.tracker.directory.organisations.values()}
    found = {address_to_org[m.recipient]: m for m in received}
    assert len(found) == len(received), "an organisation got a message twice"
    return found


async def run_report(drill: Drill, report: Report, sink, rng: random.Random, public_key) -> None:  # noqa: ANN001
    cascade, clock = drill.cascade, drill.clock
    start = clock.now
    await cascade.issue(DRILL, report)
    mails = by_org(sink.take(), cascade)
    clock.now = start + 120  # the self-forwarding prefectures read the report, then forward it
    for pref in SELF_FORWARDING:
        await cascade.forward(report.id, pref, by=f"{pref} 住基担当")
    forwarded = by_org(sink.take(), cascade)
    assert not mails.keys() & forwarded.keys()
    mails.update(forwarded)
    assert len(mails) == 1788
    assert {m.header("X-Jukimon-Report") for m in mails.values()} == {report.id}
    assert all(verify_message(m.data, public_key).ok for m in mails.values())  # every message verifies

    recipients = {}
    for org in sorted(mails):
        delivery = cascade.tracker.delivery(report.id, org)
        assert delivery is not None and delivery.delivered_at is not None
        delay = None if rng.random() < 0.05 else 60.0 * rng.randint(1, 50)
        channel = rng.choices([Channel.LINK, Channel.MQTT, Channel.CONSOLE], weights=[6, 3, 1])[0]
        recipients[org] = Recipient(org, delay, channel, delivered=delivery.delivered_at)
    links = {org: mails[org].link() for org, r in recipients.items() if r.channel is Channel.LINK}
    await drill.until(lambda: sum(k[0] == report.id for k in drill.mqtt_reports) == 1788, "MQTT reports")

    schedule: dict[float, list[Recipient]] = defaultdict(list)
    for r in recipients.values():
        if r.confirms_at is not None:
            schedule[r.confirms_at].append(r)
    tick, done = start + TICK, start
    while tick <= start + 4500:
        for at in sorted(t for t in schedule if done < t <= tick):
            clock.now = at
            await drill.confirm(report, schedule[at], links)
        clock.now, done = tick, tick
        expected = {r.org for r in recipients.values() if r.due(tick)}
        await cascade.remind()
        reminded = by_org(sink.take(), cascade)
        assert reminded.keys() == expected, f"reminders at +{tick - start:.0f} s"
        for org in expected:
            r = recipients[org]
            r.reminders, r.reminded_at = r.reminders + 1, tick
            assert reminded[org].header("X-Jukimon-Kind") == f"reminder-{r.reminders}"
        tick += TICK

    never = {r.org for r in recipients.values() if r.delay is None}
    assert cascade.tracker.counts(report.id) == Counts(
        targets=1788, planned=1788, sent=1788, delivered=1788, failed=0, confirmed=1788 - len(never),
        missing=len(never), overdue=len(never), reminded=sum(r.reminders > 0 for r in recipients.values()),
        reminders=sum(r.reminders for r in recipients.values()), awaiting_forward=0)
    assert {m.id for m in cascade.tracker.progress(report.id).missing} == never
    for channel in Channel:
        assert sum(d.confirmed_via == channel.value for d in cascade.tracker.deliveries(report.id)) == sum(
            r.channel is channel and r.delay is not None for r in recipients.values())
    clock.now = start + 7200  # the next report, two hours later


async def test_drill_cascade_at_full_scale(tmp_path: Path, full_inventory: Inventory) -> None:
    clock = SimClock()
    with mosquitto_server(tmp_path) as broker, smtp_sink() as sink:
        settings = cascade_settings(tmp_path, sink.port, confirm_within=WITHIN, reminder_interval=INTERVAL,
                                    max_reminders=MAX_REMINDERS,
                                    forwarding_overrides={p: "prefecture" for p in SELF_FORWARDING})
        public_key = load_public_key(settings.public_key)
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
            cascade = await open_cascade(store, full_inventory, settings, mqtt=(broker.host, broker.port),
                                         clock=clock)
            app = confirm_app(cascade.tracker, cascade.composer.links)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as web, \
                    aiomqtt.Client(broker.host, broker.port, identifier="recipients",
                                   max_inflight_messages=1000) as mqtt:
                # QoS 0: one subscriber for all 1,788 organisations would overrun the broker's per-client queue of
                # QoS 1 messages (1,000 by default) whenever this busy test loop reads late; real recipients
                # each subscribe to their own topic.
                await mqtt.subscribe("jukimon/cascade/+/report", qos=0)
                drill = Drill(cascade, clock, web, mqtt)
                collector = asyncio.create_task(drill.collect_mqtt_reports())
                try:
                    rng = random.Random(2021)
                    for sequence, body in enumerate(BODIES, start=1):
                        report = Report(DRILL.id, sequence, body, clock.now, final=sequence == len(BODIES))
                        await run_report(drill, report, sink, rng, public_key)
                finally:
                    collector.cancel()
                    await cascade.close()
            assert [r.label for r in cascade.tracker.reports.values()] == ["初報", "第2報", "終報"]
