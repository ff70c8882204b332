"""MQTT payloads and the cascade's replies: the bus envelope, receipts, confirm links, signed mail and reports.

Envelope records are built from random Samples and Events with the project's own
encoder, then mutated as JSON objects and as bytes. The cascade targets use a real
cascade (SQLite store, fresh keys, no broker and no SMTP: nothing is sent) and its
real entry points: ``MqttChannel.handle_ack`` for a receipt as the broker delivers
it, ``LinkSigner.verify`` behind the confirm page, ``verify_message`` behind
``jukimon cascade verify``, and ``verify_report_payload`` for a recipient of the
MQTT reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from alerting.cascade import (Cascade, CascadeSettings, MqttChannel, open_cascade, verify_message,
                              verify_report_payload)
from alerting.cascade.links import LinkError
from alerting.cascade.mqtt_replies import canonical_json
from alerting.cascade.signing import SIGNATURE_HEADER
from fuzz.core import Accepted, Outcome, Rejected, Target, reason_of
from fuzz.mutate import mutated_bytes, mutated_object, mutated_text
from fuzz.targets_common import small_inventory
from monitor.envelope import EnvelopeError, Event, EventType, Origin, Sample, Severity, decode, encode
from monitor.files import write_private
from monitor.store import Store

# --- the bus envelope -------------------------------------------------------------------------

_RANDOMS = st.randoms(use_true_random=True)
_WORDS = ("poll", "if_octets", "tls", "muni-47-201-cs1", "nat-rt1", "47", "municipality", "cs", "router", "",
          "住基", "ok", "\x00", "\ufeff", "a" * 200)


def _record(rng: random.Random) -> dict[str, Any]:
    """A Sample or Event as the encoder writes it, from one drawn Random (a draw per field costs too much
    for 100,000 cases; hypothesis still picks the Random and shrinks through it)."""
    def text() -> str:
        return rng.choice(_WORDS) if rng.randrange(4) else "".join(chr(rng.randrange(0x3100)) for _ in range(5))

    def maybe() -> str | None:
        return None if rng.randrange(3) == 0 else text()

    origin = Origin(maybe(), maybe(), maybe(), maybe(), maybe())
    ts = rng.choice((0.0, 1_764_640_000.5, 4e9, rng.uniform(0, 4e9)))
    if rng.randrange(2):
        values: list[Any] = [rng.randrange(-2**53, 2**53), rng.uniform(-1e9, 1e9), rng.random() < 0.5, text()]
        fields_ = {text(): rng.choice(values) for _ in range(rng.randint(1, 4))}
        record: Sample | Event = Sample(text() or "poll", ts, origin, fields_, {text(): text() for _ in range(rng.randint(0, 2))})
    else:
        body = {text(): rng.choice((None, 1, "x", [1, {"a": "b"}], {"n": -1.5})) for _ in range(rng.randint(0, 3))}
        record = Event(rng.choice(list(EventType)), ts, text(), origin, rng.choice(list(Severity)), text(), maybe(),
                       maybe(), body)
    return json.loads(encode(record))


_records = _RANDOMS.map(_record)


def envelope_payload(payload: bytes) -> Outcome:
    """One MQTT message on a jukimon/… topic, as the subscribers decode it."""
    try:
        decode(payload)
    except EnvelopeError as exc:
        return Rejected(reason_of(str(exc)))
    return Accepted()


def _envelope_inputs() -> st.SearchStrategy[bytes]:
    as_objects = mutated_object(_records).map(lambda obj: json.dumps(obj, ensure_ascii=False).encode("utf-8",
                                                                                                "surrogatepass"))
    nested = st.integers(1, 5_000).map(lambda depth: b'{"kind":"event","ts":1,"x":' + b"[" * depth + b"]" * depth
                                         + b"}")
    return st.one_of(as_objects, mutated_bytes(_records.map(lambda obj: json.dumps(obj).encode())), nested)


# --- the cascade ------------------------------------------------------------------------------

@dataclass
class _CascadeRig:
    loop: asyncio.AbstractEventLoop
    cascade: Cascade
    channel: MqttChannel
    settings: CascadeSettings


def _write_fixed_keys(settings: CascadeSettings) -> None:
    """Keys fixed for fuzzing (never used elsewhere), so that a saved signed input replays in another process."""
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"jukimon fuzz signing key").digest())
    write_private(settings.private_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    settings.public_key.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    write_private(settings.link_key, hashlib.sha256(b"jukimon fuzz link key").hexdigest().encode())


@lru_cache(maxsize=1)
def _rig() -> _CascadeRig:
    """A real cascade on its own event loop, for the whole run (never started: no broker, no mail)."""
    folder = Path(tempfile.mkdtemp(prefix="jukimon-fuzz-cascade-"))
    settings = CascadeSettings(base_url="https://noc.example", private_key=folder / "ed25519.pem",
                               public_key=folder / "ed25519.pub.pem", link_key=folder / "link.key")
    _write_fixed_keys(settings)
    loop = asyncio.new_event_loop()

    async def build() -> Cascade:
        store = await Store.open(f"sqlite+aiosqlite:///{folder}/jukimon.db")
        return await open_cascade(store, small_inventory(), settings)

    cascade = loop.run_until_complete(build())
    return _CascadeRig(loop, cascade, MqttChannel("127.0.0.1", 9, cascade.composer), settings)


def _organisations() -> list[str]:
    return sorted(_rig().cascade.tracker.directory.organisations)


@st.composite
def _ack(draw: st.DrawFn) -> list:
    """``[topic, payload]`` of a receipt: a genuine token (maybe of another org), then mutated."""
    orgs = _organisations()
    org, other = draw(st.sampled_from(orgs)), draw(st.sampled_from(orgs))
    links = _rig().cascade.composer.links
    token = links.token(draw(st.sampled_from(["drill-2021-1", "r-1"])), other if draw(st.integers(0, 4)) == 0 else org,
                        expires=draw(st.sampled_from([None, 0.0, 4e9])))
    payload = draw(mutated_object(st.just({"token": draw(mutated_text(st.just(token), 2)), "by": "担当 山田"})))
    raw = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    # what the subscription jukimon/cascade/+/ack lets through: any level without '/', even an empty one
    topic = draw(st.sampled_from([f"jukimon/cascade/{org}/ack", "jukimon/cascade//ack", f"jukimon/cascade/{other}/ack",
                                  "jukimon/cascade/住基 ../ack"]))
    return [topic, draw(mutated_bytes(st.just(raw), 2)).decode("latin-1")]


def mqtt_ack(case: list) -> Outcome:
    """A receipt as the broker hands it to the MQTT channel (the payload is carried as latin-1 text)."""
    rig = _rig()
    before = rig.channel.counts["rejected"]
    outcome = rig.loop.run_until_complete(rig.channel.handle_ack(case[0], case[1].encode("latin-1")))
    if outcome is None:
        return Rejected("rejected") if rig.channel.counts["rejected"] > before else Rejected("")
    return Accepted()


def confirm_token(token: str) -> Outcome:
    """The token of a confirm link (query parameter or MQTT receipt)."""
    try:
        _rig().cascade.composer.links.verify(token)
    except LinkError as exc:
        return Rejected(exc.reason)
    return Accepted()


@st.composite
def _tokens(draw: st.DrawFn) -> str:
    links = _rig().cascade.composer.links
    token = links.token("drill-2021-1", draw(st.sampled_from(_organisations())),
                        expires=draw(st.sampled_from([None, 0.0])))
    return draw(mutated_text(st.just(token)))


@lru_cache(maxsize=1)
def _signed_mail() -> bytes:
    """A report as the composer signs it (headers and body of the real MailComposer format)."""
    signer = _rig().cascade.composer.signer
    headers = [("From", "=?utf-8?b?5YWo5Zu944K744Oz44K/44O8?= <noc@jlis.example>"), ("To", "muni@example.jp"),
               ("Subject", "=?utf-8?b?5Yid5aCx?="), ("Date", "Wed, 08 Dec 2021 09:30:00 +0900"),
               ("Message-ID", "<drill-2021-1.muni@jukimon>"), ("X-Jukimon-Report", "drill-2021-1"),
               ("X-Jukimon-Drill", "yes")]
    body = "初報\n処理装置Xのネットワーク切断\n"
    signature = signer.signature_header(headers, body)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + f"{SIGNATURE_HEADER}: {signature}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + body.replace("\n", "\r\n")).encode("utf-8")


def signed_mail(data: bytes) -> Outcome:
    """A received message, as ``jukimon cascade verify`` checks it."""
    result = verify_message(data, _rig().cascade.composer.signer.public_key())
    return Accepted() if result.ok else Rejected(reason_of(result.reason))


@lru_cache(maxsize=1)
def _signed_report() -> bytes:
    signer = _rig().cascade.composer.signer
    message: dict[str, Any] = {"report": "drill-2021-1", "incident": "drill-2021", "label": "初報", "final": False,
                               "org": "muni-47-201", "drill": True, "issued_at": 1_638_923_400.0, "body": "本文",
                               "token": "x.y", "ack_topic": "jukimon/cascade/muni-47-201/ack", "key": signer.key_id}
    message["signature"] = signer.sign_bytes(canonical_json(message))
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


def report_payload(payload: bytes) -> Outcome:
    """A signed report on jukimon/cascade/<org>/report, as a recipient verifies it."""
    ok = verify_report_payload(payload, _rig().cascade.composer.signer.public_key())
    return Accepted() if ok is not None else Rejected("not_verified")


def targets() -> list[Target]:
    report_objects = mutated_object(st.builds(lambda: json.loads(_signed_report()))).map(
        lambda obj: json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return [
        Target("envelope_decode", "bus", _envelope_inputs(), envelope_payload,
               "Sample/Event JSON records from MQTT (monitor/envelope.py decode)", corpus="envelope"),
        Target("cascade_mqtt_ack", "bus", _ack(), mqtt_ack,
               "receipts on jukimon/cascade/<org>/ack into MqttChannel.handle_ack (real tracker, SQLite)",
               corpus="cascade_ack"),
        Target("cascade_link_token", "bus", _tokens(), confirm_token, "confirm link tokens (LinkSigner.verify)"),
        Target("cascade_signed_mail", "bus", mutated_bytes(st.builds(_signed_mail)), signed_mail,
               "signed report mail as received (alerting/cascade/signing.py verify_message)", corpus="cascade_mail"),
        Target("cascade_report_payload", "bus",
               st.one_of(report_objects, mutated_bytes(st.builds(_signed_report))), report_payload,
               "signed MQTT reports as a recipient checks them (verify_report_payload)", corpus="cascade_report"),
    ]
