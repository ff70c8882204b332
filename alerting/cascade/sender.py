"""Sending the cascade: Japanese signed mails, a small pool of SMTP sessions, and the issue/forward/remind steps.

``MailComposer`` writes one organisation's message: subject and body in Japanese
(a drill is 【訓練】 at the start of the subject and in a banner at the top and the
bottom of the body — never mistakable for a real incident), the signed confirm
link, and the Ed25519 signature in the ``X-Jukimon-Signature`` header (see
``signing``). The MIME text is built directly (single text/plain UTF-8 part,
base64) rather than through ``email.message``: thousands are written per report.

``SmtpPool`` sends through ``connections`` SMTP sessions at once, each session
sending many messages, all on the event loop (a minimal asyncio SMTP client:
``smtplib`` in worker threads sent a third fewer messages per second in the bench, its threads
contending for the interpreter with the confirmations the loop takes meanwhile).
Outcomes come back per batch and are recorded by the tracker before the next
batch of that session.

``Cascade`` ties it together: ``issue`` a report, a prefecture's ``forward``,
``remind`` the overdue, ``resume`` what a restart or an SMTP failure left unsent.
Message-IDs are deterministic (``Delivery.message_id``), so even a message sent
just before a crash and sent again after it carries the same id.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import email.utils
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from typing import Awaitable, Callable, Iterable, Protocol, Sequence

import jinja2

from alerting.cascade.links import LinkSigner, load_link_key
from alerting.cascade.model import NATIONAL, CascadeSettings, Delivery, Incident, Organisation, Report, jst_text
from alerting.cascade.mqtt_replies import MqttChannel
from alerting.cascade.signing import SIGNATURE_HEADER, Signer, load_private_key
from alerting.cascade.store import CascadeStore
from alerting.cascade.tracker import Tracker
from monitor.inventory.model import Inventory
from monitor.japan_time import JST
from monitor.logs import fields as log_fields
from monitor.store import Store

log = logging.getLogger("alerting.cascade.sender")

DRILL_MARK = "【訓練】"
DRILL_BANNER = "━━━━ 【訓練】これは訓練です。実際の障害ではありません。 ━━━━"

# A text/plain mail body, never HTML: escaping would turn 「A&B」 into 「A&amp;B」 (bandit B701 does not apply).
_BODY = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,  # nosec B701
                           lstrip_blocks=True).from_string("""\
{% if drill %}{{ banner }}

{% endif %}
{% if reminder %}
※ 受信確認がまだ届いていません（再送 {{ reminder }} 回目）。お手数ですが下記のリンクから受信確認をお願いします。

{% endif %}
{{ org.name }} 住基ネット担当者 様

地方公共団体情報システム機構（全国センター）から、住基ネットの障害について{{ report.label }}をお知らせします。
{% if forwarder %}
（{{ forwarder }}{{ "に代わり Jukimon が転送しています" if on_behalf else "から転送されたものです" }}）
{% endif %}

件名　　: {{ incident.title }}
報告区分: {{ report.label }}{{ "（本件の最終報告です）" if report.final else "" }}
発信日時: {{ issued }}

{{ report.body }}

■ 受信確認のお願い
本メールを受信されましたら、{{ deadline }}下記のリンクを開いて受信確認をお願いします。
{{ link }}
リンクは{{ expires }}まで有効です。開けない場合は、コンソールまたは電話で受信をご連絡ください。

■ 電子署名
本メールには全国センターの電子署名（Ed25519、{{ signature_header }} ヘッダ）が付いています。
`jukimon cascade verify <保存したメール>.eml --public-key <全国センター公開鍵>` で検証できます。
{% if drill %}

{{ banner }}
{% endif %}
""")


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    delivery: Delivery
    recipient: str
    message_id: str
    data: bytes


class MailComposer:
    """Writes and signs the message for one delivery (first send or reminder)."""

    def __init__(self, signer: Signer, links: LinkSigner, tracker: Tracker, *, sender_address: str,
                 sender_name: str, clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.links = links
        self.tracker = tracker
        self._from = email.utils.formataddr((sender_name, sender_address), charset="utf-8")
        self.clock = clock

    def subject(self, incident: Incident, report: Report, reminder: int = 0) -> str:
        again = "【再送・受信確認のお願い】" if reminder else ""
        return f"{DRILL_MARK if incident.drill else ''}{again}【{report.label}】{incident.title}"

    def body(self, incident: Incident, report: Report, org: Organisation, delivery: Delivery,
             link: str, reminder: int = 0) -> str:
        directory = self.tracker.directory
        forwarder = directory[delivery.sent_by].name if delivery.sent_by != NATIONAL else None
        return _BODY.render(
            drill=incident.drill, banner=DRILL_BANNER, reminder=reminder, org=org, report=report, incident=incident,
            forwarder=forwarder, on_behalf=delivery.on_behalf, issued=jst_text(report.issued_at),
            deadline="至急" if reminder else f"{jst_text(self.clock() + self.tracker.confirm_within)}までに", link=link,
            expires=jst_text(self.clock() + self.links.ttl), signature_header=SIGNATURE_HEADER)

    def compose(self, delivery: Delivery, reminder: int = 0) -> OutgoingMail:
        report = self.tracker.reports[delivery.report]
        incident = self.tracker.incidents[report.incident]
        org = self.tracker.directory[delivery.org]
        message_id = delivery.reminder_message_id(reminder) if reminder else delivery.message_id
        body = self.body(incident, report, org, delivery, self.links.url(report.id, org.id), reminder)
        headers = [
            ("From", self._from),
            ("To", org.address),
            ("Subject", _encoded(self.subject(incident, report, reminder))),
            ("Date", email.utils.format_datetime(datetime.fromtimestamp(self.clock(), JST))),
            ("Message-ID", message_id),
            ("X-Jukimon-Report", report.id),
            ("X-Jukimon-Organisation", org.id),
            ("X-Jukimon-Drill", "yes" if incident.drill else "no"),
            ("X-Jukimon-Kind", f"reminder-{reminder}" if reminder else "report"),
            ("X-Jukimon-Sent-By", delivery.sent_by),
        ]
        signature = self.signer.signature_header(headers, body)
        encoded = base64.encodebytes(body.replace("\n", "\r\n").encode("utf-8")).replace(b"\n", b"\r\n")
        head = "".join(f"{name}: {value}\r\n" for name, value in [
            *headers, ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "base64"), (SIGNATURE_HEADER, signature)])
        return OutgoingMail(delivery, org.address, message_id, head.encode("ascii") + b"\r\n" + encoded)


def _encoded(text: str) -> str:
    """An RFC 2047 header value, folded with CRLF."""
    return Header(text, "utf-8", header_name="Subject").encode().replace("\n", "\r\n")


Outcomes = list[tuple[Delivery, str | None]]


class SmtpPool:
    """``connections`` SMTP sessions sending batches of messages; outcomes reported per batch."""

    def __init__(self, host: str, port: int, *, sender_address: str, connections: int = 4, batch: int = 50,
                 timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.sender_address = sender_address
        self.connections, self.batch, self.timeout = connections, batch, timeout

    async def send(self, deliveries: Iterable[Delivery], compose: Callable[[Delivery], OutgoingMail],
                   record: Callable[[Outcomes], Awaitable[None]]) -> int:
        """Compose and send every delivery, recording each batch's outcomes; returns how many SMTP accepted."""
        items = list(deliveries)
        batches = collections.deque(items[start:start + self.batch] for start in range(0, len(items), self.batch))
        accepted = 0

        async def session() -> None:
            nonlocal accepted
            smtp = _Session(self.host, self.port, self.sender_address, self.timeout)
            try:
                while batches:
                    batch = batches.popleft()
                    outcomes = [(delivery, await smtp.send(compose(delivery))) for delivery in batch]
                    accepted += sum(error is None for _, error in outcomes)
                    await record(outcomes)
            finally:
                await smtp.close()

        await asyncio.gather(*(session() for _ in range(min(self.connections, len(batches)))))
        return accepted


class SmtpReply(Exception):
    """An SMTP reply other than the expected one (4xx: try again later, 5xx: refused)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code


class _Session:
    """One SMTP connection on the event loop: EHLO, then MAIL, RCPT, DATA per message; opened on first use
    and again after it broke. No STARTTLS or AUTH: the relay is inside the closed network."""

    def __init__(self, host: str, port: int, sender: str, timeout: float) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, mail: OutgoingMail) -> str | None:
        """None when the server accepted the message, else why not."""
        try:
            await asyncio.wait_for(self._transaction(mail), self.timeout)
            return None
        except SmtpReply as exc:  # the connection is fine; RSET leaves the next transaction clean
            await self._reset()
            return str(exc)
        except (OSError, EOFError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            await self.close(polite=False)  # the next message opens a new connection
            return f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__

    async def _transaction(self, mail: OutgoingMail) -> None:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
            await self._command(None, 220)
            await self._command(f"EHLO {socket.gethostname()}", 250)
        await self._command(f"MAIL FROM:<{self.sender}>", 250)
        await self._command(f"RCPT TO:<{mail.recipient}>", 250, 251)
        await self._command("DATA", 354)
        data = mail.data if mail.data.endswith(b"\r\n") else mail.data + b"\r\n"
        data = (b"." if data.startswith(b".") else b"") + data.replace(b"\r\n.", b"\r\n..")  # dot-stuffing
        await self._command(data + b".", 250)

    async def _command(self, line: str | bytes | None, *expected: int) -> None:
        assert self._streams is not None
        reader, writer = self._streams
        if line is not None:
            writer.write((line.encode("ascii") if isinstance(line, str) else line) + b"\r\n")
        texts = []
        while True:  # a reply is one or more lines "250-…" ending with "250 …"
            reply = await reader.readline()
            if not reply.endswith(b"\n"):
                raise EOFError("connection closed by the SMTP server")
            texts.append(reply[4:].decode("utf-8", "replace").strip())
            if reply[3:4] != b"-":
                break
        code = int(reply[:3])
        if code not in expected:
            raise SmtpReply(code, " ".join(texts))

    async def _reset(self) -> None:
        try:
            await asyncio.wait_for(self._command("RSET", 250), self.timeout)
        except (SmtpReply, OSError, EOFError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            await self.close(polite=False)

    async def close(self, polite: bool = True) -> None:
        if self._streams is None:
            return
        writer = self._streams[1]
        if polite:
            with contextlib.suppress(SmtpReply, OSError, EOFError, asyncio.TimeoutError):
                await asyncio.wait_for(self._command("QUIT", 221), 1.0)
        self._streams = None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class ReportChannel(Protocol):
    """A second channel beside e-mail (the MQTT channel): told about every first send."""

    async def publish(self, deliveries: Sequence[Delivery]) -> None: ...

    async def stop(self) -> None: ...


class Cascade:
    """Issue, forward, remind and resume: the cascade's operations over tracker, composer and SMTP.

    The operations that send run one at a time (a lock): a periodic ``tick`` that starts while a report is
    still going out must not see its messages as unsent and send them again. Receipts need no lock.
    """

    def __init__(self, tracker: Tracker, composer: MailComposer, smtp: SmtpPool,
                 channels: Sequence[ReportChannel] = ()) -> None:
        self.tracker = tracker
        self.composer = composer
        self.smtp = smtp
        self.channels = list(channels)
        self._sending = asyncio.Lock()

    async def issue(self, incident: Incident, report: Report) -> int:
        """Record the incident and report, then send to everyone planned (safe to call again after a crash)."""
        async with self._sending:
            await self.tracker.open_incident(incident)
            await self.tracker.add_report(report)
            return await self._send(self.tracker.pending(report.id))

    async def forward(self, report_id: str, prefecture_id: str, by: str) -> int:
        """A prefecture forwards to its municipalities (by its operator's hand in the console)."""
        async with self._sending:
            return await self._send(await self.tracker.forward(report_id, prefecture_id, by))

    async def resume(self) -> int:
        """Send every planned delivery that SMTP has not accepted yet (after a restart or a failure)."""
        async with self._sending:
            return await self._send(self.tracker.pending())

    async def remind(self) -> int:
        """One reminder to each overdue recipient that is due one; nobody who confirmed is reminded."""
        async with self._sending:
            due = self.tracker.due_reminders()
            if not due:
                return 0
            sent = await self.smtp.send(due, lambda d: self.composer.compose(d, reminder=d.reminders + 1),
                                        self.tracker.record_reminded)
        log.info("cascade reminders sent", extra=log_fields(due=len(due), accepted=sent))
        return sent

    async def tick(self) -> None:
        """What a periodic loop does: retry the unsent, remind the overdue."""
        await self.resume()
        await self.remind()

    async def close(self) -> None:
        """Stop the channels (the MQTT connection); the tracker's state is already saved."""
        for channel in self.channels:
            await channel.stop()

    async def _send(self, deliveries: list[Delivery]) -> int:
        if not deliveries:
            return 0
        started = time.monotonic()
        accepted = await self.smtp.send(deliveries, self.composer.compose, self.tracker.record_sent)
        for channel in self.channels:
            await channel.publish(deliveries)
        failed = len(deliveries) - accepted
        (log.warning if failed else log.info)("cascade messages sent", extra=log_fields(
            messages=len(deliveries), accepted=accepted, failed=failed,
            seconds=round(time.monotonic() - started, 3)))
        return accepted


async def open_cascade(store: Store, inventory: Inventory, settings: CascadeSettings, *,
                       mqtt: tuple[str, int] | None = None, mqtt_prefix: str = "jukimon",
                       mqtt_tls: ssl.SSLContext | None = None,
                       clock: Callable[[], float] = time.time) -> Cascade:
    """The cascade as configured: tables created, state loaded, keys read, the MQTT channel started if a
    broker is given (and ``settings.mqtt``). Stop it with ``await cascade.close()``."""
    tracker = await Tracker.open(await CascadeStore.open(store), settings.directory(inventory), settings, clock)
    links = LinkSigner(load_link_key(settings.link_key), settings.base_url, settings.link_ttl, clock)
    composer = MailComposer(Signer(load_private_key(settings.private_key)), links, tracker,
                            sender_address=settings.sender_address, sender_name=settings.sender_name, clock=clock)
    smtp = SmtpPool(settings.smtp_host, settings.smtp_port, sender_address=settings.sender_address,
                    connections=settings.smtp_connections, batch=settings.smtp_batch, timeout=settings.smtp_timeout)
    channels: list[MqttChannel] = []
    if mqtt is not None and settings.mqtt:
        channel = MqttChannel(mqtt[0], mqtt[1], composer, prefix=mqtt_prefix, tls=mqtt_tls)
        await channel.start()
        channels.append(channel)
    return Cascade(tracker, composer, smtp, channels)
