"""The cascade's SMTP client against a real SMTP server: refusals, a server that goes away, dot-stuffing."""

from __future__ import annotations

from alerting.cascade.model import Delivery
from alerting.cascade.sender import OutgoingMail, SmtpPool
from monitor.localservers import free_port
from tests.test_cascade_fixtures import smtp_sink

BODY = b"Subject: test\r\n\r\nfirst line\r\n.a line starting with a dot\r\n.\r\nlast line\r\n"


def mail(org: str, data: bytes = BODY) -> OutgoingMail:
    return OutgoingMail(Delivery("drill.1", org, "national"), f"{org}@example.jp", f"<{org}>", data)


async def send(pool: SmtpPool, orgs: list[str]) -> list[tuple[str, str | None]]:
    outcomes: list[tuple[str, str | None]] = []

    async def record(batch: list[tuple[Delivery, str | None]]) -> None:
        outcomes.extend((d.org, error) for d, error in batch)

    await pool.send([mail(org).delivery for org in orgs], lambda d: mail(d.org), record)
    return outcomes


async def test_message_arrives_unchanged_and_refusals_do_not_stop_the_session() -> None:
    with smtp_sink() as sink:
        sink.refuse.add("b@example.jp")
        pool = SmtpPool("127.0.0.1", sink.port, sender_address="cascade@example.jp", connections=1, batch=2)
        outcomes = await send(pool, ["a", "b", "c"])
        received = sink.take()
    assert [(org, error is None) for org, error in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert outcomes[1][1] == "451 4.2.0 mailbox temporarily unavailable"
    assert [m.recipient for m in received] == ["a@example.jp", "c@example.jp"]
    assert received[0].data.replace(b"\r\n", b"\n") == BODY.replace(b"\r\n", b"\n")  # dots survive the transport


async def test_server_away_fails_each_message_and_a_later_send_goes_through() -> None:
    port = free_port()
    pool = SmtpPool("127.0.0.1", port, sender_address="cascade@example.jp", connections=2, batch=1)
    outcomes = await send(pool, ["a", "b"])
    assert sorted(org for org, _ in outcomes) == ["a", "b"]
    assert all(error is not None and "ConnectionRefusedError" in error for _, error in outcomes)
    with smtp_sink(port) as sink:
        assert sorted(await send(pool, ["a", "b"])) == [("a", None), ("b", None)]
        assert sorted(m.recipient for m in sink.take()) == ["a@example.jp", "b@example.jp"]
