"""Each channel against the real thing: mail through an SMTP server, JSON to an HTTP server, MQTT through Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import aiomqtt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alerting.model import Alarm, Notification
from alerting.notify import (ConsoleReceiver, DeliveryError, EmailReceiver, MailSink, MqttReceiver, NotifySettings,
                             RejectedError, SmtpSettings, WebhookReceiver, build_receivers, render, webhook_payload)
from alerting.routing import Receiver as ReceiverConfig
from monitor.configerror import ConfigError
from tests.servers import Mosquitto, free_port, mosquitto_server

T0 = 1_796_171_415.0  # 令和8年12月2日 09:30:15 JST


def notification(drill: bool = False, sequence: int = 1) -> Notification:
    cs_down = Alarm("device_down:muni-01-203-cs1", {"kind": "device_down", "subject": "muni-01-203-cs1"},
                    "小樽市 CS 応答なし", "critical", T0, drill=drill)
    subject, body = render("firing", [cs_down], "noc")
    return Notification(f"device_down:muni-01-203-cs1|noc|0|{sequence}", "noc", "device_down:muni-01-203-cs1",
                        (cs_down.fingerprint,), subject, body, T0, drill=drill)


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# --- e-mail -------------------------------------------------------------------------------------------


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    async with MailSink(tmp_path / "mail") as server:
        yield server


def mailer(sink: MailSink, **kw: Any) -> EmailReceiver:
    return EmailReceiver("127.0.0.1", sink.port, "jukimon@noc.example.lg.jp", ["noc@example.lg.jp",
                                                                              "lead@example.lg.jp"], **kw)


async def test_the_mail_arrives_with_its_japanese_subject_and_body(sink: MailSink) -> None:
    n = notification()
    await mailer(sink).deliver(n)

    [mail] = sink.messages()
    assert sink.count == 1
    assert mail["Subject"] == "[障害発生] 重大: 小樽市 CS 応答なし"
    assert mail["To"] == "noc@example.lg.jp, lead@example.lg.jp"
    assert mail["X-Jukimon-Drill"] == "no"
    assert mail.get_body(("plain",)).get_content() == n.body
    assert "小樽市 CS 応答なし" in mail.get_body(("html",)).get_content()
    assert mail["Date"].datetime.utcoffset().total_seconds() == 9 * 3600  # JST


async def test_a_drill_mail_says_so_first_thing(sink: MailSink) -> None:
    await mailer(sink).deliver(notification(drill=True))

    [mail] = sink.messages()
    assert mail["Subject"].startswith("【訓練】")
    assert mail.get_body(("plain",)).get_content().startswith("【訓練】これは訓練です。")
    assert mail["X-Jukimon-Drill"] == "yes"


async def test_the_same_notification_is_recognisably_the_same_mail(sink: MailSink) -> None:
    receiver = mailer(sink)
    await receiver.deliver(notification(sequence=1))
    await receiver.deliver(notification(sequence=1))
    await receiver.deliver(notification(sequence=2))

    first, again, other = sink.messages()
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]


async def test_a_mail_server_that_is_down_is_a_delivery_error_to_retry(sink: MailSink) -> None:
    receiver = mailer(sink)
    await sink.stop()
    with pytest.raises(DeliveryError) as caught:
        await receiver.deliver(notification())
    assert not isinstance(caught.value, RejectedError)

    await sink.start()  # same port, same directory
    await receiver.deliver(notification())
    assert sink.count == 1


async def test_the_smtp_password_is_neither_in_the_error_nor_in_the_repr(sink: MailSink) -> None:
    receiver = mailer(sink, user="noc", password="s3cret-pw")  # the sink offers no AUTH: login fails
    with pytest.raises(DeliveryError) as caught:
        await receiver.deliver(notification())

    assert "AUTH" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(receiver)
    assert sink.count == 0


async def test_the_mail_sink_keeps_counting_across_its_restart(tmp_path: Path) -> None:
    async with MailSink(tmp_path / "mail") as sink:
        await mailer(sink).deliver(notification())
    async with MailSink(tmp_path / "mail") as sink:
        assert sink.count == 1
        await mailer(sink).deliver(notification(sequence=2))
        assert sink.count == 2
        assert len(sink.messages()) == 2


# --- webhook ------------------------------------------------------------------------------------------


class ChatServer:
    """A real HTTP server (Starlette on uvicorn) playing a chat tool's incoming webhook."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/T000/s3cret-token"

    async def hook(self, request: Request) -> JSONResponse:
        if self.status == 200:
            self.received.append((dict(request.headers), await request.json()))
        return JSONResponse({"ok": self.status == 200}, status_code=self.status)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ChatServer]:
        app = Starlette(routes=[Route("/hooks/{team}/{token}", self.hook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        await wait_for(lambda: server.started, "uvicorn to start")
        try:
            yield self
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    async with ChatServer().running() as server:
        yield server


async def test_the_webhook_gets_the_chat_json_with_an_idempotency_key(chat: ChatServer) -> None:
    n = notification(drill=True)
    await WebhookReceiver(chat.url, timeout=5).deliver(n)
    await WebhookReceiver(chat.url, timeout=5).deliver(n)

    [(headers, body), (again, _)] = chat.received
    assert body == webhook_payload(n)
    assert body["text"].startswith("【訓練】")
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == again["idempotency-key"]


@pytest.mark.parametrize("status, permanent", [(503, False), (429, False), (400, True), (404, True)])
async def test_the_webhook_status_decides_between_retry_and_give_up(chat: ChatServer, status: int,
                                                                    permanent: bool) -> None:
    chat.status = status
    receiver = WebhookReceiver(chat.url, timeout=5)
    with pytest.raises(DeliveryError) as caught:
        await receiver.deliver(notification())

    assert isinstance(caught.value, RejectedError) is permanent
    assert f"HTTP {status}" in str(caught.value)
    assert "s3cret-token" not in str(caught.value) and "s3cret-token" not in repr(receiver)


async def test_a_webhook_nobody_listens_on_is_a_delivery_error() -> None:
    receiver = WebhookReceiver(f"http://127.0.0.1:{free_port()}/hooks/s3cret-token", timeout=5)
    with pytest.raises(DeliveryError) as caught:
        await receiver.deliver(notification())
    assert not isinstance(caught.value, RejectedError)
    assert "s3cret-token" not in str(caught.value)


# --- MQTT ---------------------------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with mosquitto_server(tmp_path) as server:
        yield server


async def subscribe(broker: Mosquitto, topic: str, got: list[aiomqtt.Message], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            got.append(message)


async def test_the_notification_reaches_an_mqtt_subscriber_at_qos_1(broker: Mosquitto) -> None:
    got: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(subscribe(broker, "jukimon/notify/#", got, ready))
    await asyncio.wait_for(ready.wait(), 10)
    n = notification(drill=True)
    try:
        await MqttReceiver(broker.host, broker.port, "jukimon/notify/noc").deliver(n)
        await wait_for(lambda: len(got) == 1, "the MQTT message")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    [message] = got
    assert message.qos == 1
    assert message.topic.value == "jukimon/notify/noc"
    payload = json.loads(message.payload)
    assert payload["id"] == n.id and payload["subject"].startswith("【訓練】") and payload["drill"] is True


async def test_mqtt_delivery_fails_while_the_broker_is_down_and_works_when_it_is_back(broker: Mosquitto) -> None:
    receiver = MqttReceiver(broker.host, broker.port, "jukimon/notify/noc", timeout=3)
    broker.stop()
    with pytest.raises(DeliveryError):
        await receiver.deliver(notification())
    broker.start()
    await receiver.deliver(notification())


# --- console ------------------------------------------------------------------------------------------


async def test_the_console_keeps_the_newest_and_tells_its_listeners() -> None:
    console = ConsoleReceiver(keep=2)
    heard: list[str] = []

    def broken(n: Notification) -> None:
        raise RuntimeError("view gone")

    console.listeners += [broken, lambda n: heard.append(n.id)]
    for sequence in (1, 2, 3):
        await console.deliver(notification(sequence=sequence))

    assert [n.id[-1] for n in console.recent()] == ["3", "2"]
    assert [n.id[-1] for n in console.recent(limit=1)] == ["3"]
    assert [i[-1] for i in heard] == ["1", "2", "3"]


# --- from the routing configuration -------------------------------------------------------------------


def test_each_configured_receiver_gets_its_channel() -> None:
    configured = {"noc-console": ReceiverConfig("noc-console", "console"),
                  "noc-mail": ReceiverConfig("noc-mail", "email", to=("noc@example.lg.jp",)),
                  "chat": ReceiverConfig("chat", "webhook", url="https://chat.example.lg.jp/hooks/s3cret"),
                  "other-sites": ReceiverConfig("other-sites", "mqtt", topic="jukimon/notify/noc")}
    console = ConsoleReceiver()
    relay = SmtpSettings(host="smtp.example.lg.jp", port=587, sender="jukimon@example.lg.jp", starttls=True,
                         user="jukimon", password="s3cret-pw")
    built = build_receivers(configured, NotifySettings(webhook_timeout=3), smtp=relay, mqtt=("127.0.0.1", 1883),
                            console=console)

    assert built["noc-console"] is console
    assert built["noc-mail"] == EmailReceiver("smtp.example.lg.jp", 587, "jukimon@example.lg.jp",
                                              ["noc@example.lg.jp"], True, "jukimon", "s3cret-pw")
    assert isinstance(built["chat"], WebhookReceiver) and built["chat"].timeout == 3
    assert isinstance(built["other-sites"], MqttReceiver) and built["other-sites"].topic == "jukimon/notify/noc"


@pytest.mark.parametrize("config, smtp, mqtt, error", [
    (ReceiverConfig("noc-mail", "email", to=("noc@example.lg.jp",)), SmtpSettings(), None, "receivers.noc-mail"),
    (ReceiverConfig("bus", "mqtt", topic="jukimon/notify"), SmtpSettings(host="smtp"), None, "outputs.mqtt"),
    (ReceiverConfig("pager", "sms"), SmtpSettings(host="smtp"), None, "'sms'"),
])
def test_a_receiver_that_cannot_be_built_names_itself(config: ReceiverConfig, smtp: SmtpSettings,
                                                      mqtt: tuple[str, int] | None, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        build_receivers({config.name: config}, NotifySettings(), smtp=smtp, mqtt=mqtt, console=ConsoleReceiver())


@pytest.mark.parametrize("settings, key", [
    (NotifySettings(retry_initial=0), "notify.retry_initial"),
    (NotifySettings(retry_initial=60, retry_max=30), "notify.retry_max"),
    (NotifySettings(smtp=SmtpSettings(sender="jukimon")), "notify.smtp.sender"),
    (NotifySettings(smtp=SmtpSettings(password="pw")), "notify.smtp.user"),
])
def test_settings_errors_name_the_key(settings: NotifySettings, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        settings.check("notify")
