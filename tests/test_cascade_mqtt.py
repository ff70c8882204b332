"""The MQTT channel against a real Mosquitto: signed reports out, receipts in, forged receipts refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import AsyncIterator, Callable

import aiomqtt
import pytest

from alerting.cascade import (Cascade, ConfirmOutcome, Incident, MqttChannel, Report, load_public_key, open_cascade,
                              verify_report_payload)
from monitor.inventory import Inventory
from monitor.store import Store
from tests.servers import mosquitto_server
from tests.test_cascade_fixtures import T0, SimClock, cascade_settings, smtp_sink

DRILL = Incident("drill-2021", "処理装置Xのネットワーク切断", drill=True, opened=T0)
FIRST = Report(DRILL.id, 1, "初報本文", T0)


@pytest.fixture
async def cascade(tmp_path: Path, small_inventory: Inventory) -> AsyncIterator[tuple[Cascade, aiomqtt.Client]]:
    with mosquitto_server(tmp_path) as broker, smtp_sink() as sink:
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
            cascade = await open_cascade(store, small_inventory, cascade_settings(tmp_path, sink.port),
                                         mqtt=(broker.host, broker.port), clock=SimClock())
            async with aiomqtt.Client(broker.host, broker.port, identifier="recipients") as recipients:
                await recipients.subscribe("jukimon/cascade/+/report", qos=1)
                try:
                    yield cascade, recipients
                finally:
                    await cascade.close()


async def reports(client: aiomqtt.Client, count: int) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    async with asyncio.timeout(10):
        async for message in client.messages:
            found[str(message.topic).split("/")[2]] = bytes(message.payload)  # type: ignore[arg-type]
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_report_published_signed_and_receipt_confirms(cascade: tuple[Cascade, aiomqtt.Client],
                                                            tmp_path: Path) -> None:
    c, recipients = cascade
    await c.issue(DRILL, FIRST)
    received = await reports(recipients, 14)
    key = load_public_key(tmp_path / "keys" / "ed25519.pub.pem")
    otaru = verify_report_payload(received["muni-01-002"], key)
    assert otaru is not None
    assert (otaru["report"], otaru["org"], otaru["drill"]) == (FIRST.id, "muni-01-002", True)
    assert otaru["subject"] == f"【訓練】【初報】{DRILL.title}" and "【訓練】これは訓練です" in otaru["body"]
    tampered = json.loads(received["muni-01-002"])
    tampered["drill"] = False
    assert verify_report_payload(json.dumps(tampered).encode(), key) is None

    await recipients.publish(otaru["ack_topic"], json.dumps({"token": otaru["token"], "by": "小樽市 佐藤"}), qos=1)
    await until(lambda: c.tracker.counts(FIRST.id).confirmed == 1)
    delivery = c.tracker.delivery(FIRST.id, "muni-01-002")
    assert (delivery.confirmed_via, delivery.confirmed_by) == ("mqtt", "小樽市 佐藤")  # type: ignore[union-attr]


async def test_forged_and_misdirected_receipts_are_refused(cascade: tuple[Cascade, aiomqtt.Client]) -> None:
    c, recipients = cascade
    await c.issue(DRILL, FIRST)
    received = await reports(recipients, 14)
    channel = c.channels[0]
    assert isinstance(channel, MqttChannel)
    otaru_token = json.loads(received["muni-01-002"])["token"]
    forged = otaru_token[:-4] + ("AAAA" if not otaru_token.endswith("AAAA") else "BBBB")
    for topic, payload in [("jukimon/cascade/muni-01-003/ack", {"token": otaru_token}),  # another org's token
                           ("jukimon/cascade/muni-01-002/ack", {"token": forged}),
                           ("jukimon/cascade/muni-01-002/ack", {"by": "no token"})]:
        await recipients.publish(topic, json.dumps(payload), qos=1)
    await recipients.publish("jukimon/cascade/muni-01-002/ack", b"not json", qos=1)
    await until(lambda: channel.counts["rejected"] == 4)
    assert c.tracker.counts(FIRST.id).confirmed == 0
    assert await channel.handle_ack("jukimon/cascade/muni-01-002/ack",
                                    json.dumps({"token": otaru_token}).encode()) is ConfirmOutcome.CONFIRMED
    assert await channel.handle_ack("jukimon/cascade/muni-01-002/ack",
                                    json.dumps({"token": otaru_token}).encode()) is ConfirmOutcome.ALREADY
