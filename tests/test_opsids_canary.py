"""Privacy: resident codes planted as canaries appear in no output, log, file or MQTT message of a replay run."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from ids.operations.cli import register
from monitor.inventory import Tier, default_inventory
from monitor.logs import configure_logging
from simnet.audit_stream import AuditStream
from tests.servers import mosquitto_server

DAY = dt.date(2026, 12, 7)


def plant(path: Path) -> set[str]:
    """A day of two municipalities and the agencies with every resident code replaced by a canary,
    an enumeration of canaries, and malformed records carrying canaries."""
    rng = random.Random(5)
    inventory = default_inventory()
    sites = ["muni-01-002", "muni-13-005", *(s.id for s in inventory.sites_of_tier(Tier.AGENCY))]
    stream = AuditStream(inventory, seed=2, sites=sites)
    canaries: set[str] = set()
    lines = []
    for record in stream.records(DAY, 1, stream.plan_scenarios(DAY, 1, per_type=1)):
        if record.get("resident"):
            record["resident"] = f"{rng.randrange(10**10, 10**11):011d}"
            canaries.add(record["resident"])
        lines.append(json.dumps(record, ensure_ascii=False))
    base = rng.randrange(10**10, 9 * 10**10)
    for i in range(20):
        code = f"{base + i:011d}"
        canaries.add(code)
        lines.append(json.dumps({"ts": f"{DAY}T16:{i:02d}:00+09:00", "organisation": "muni-01-002",
                                 "terminal": "muni-01-002-term01", "operator": "muni-01-002-op950",
                                 "action": "lookup", "purpose": "M01", "resident": code,
                                 "resident_municipality": "muni-13-005"}))
    lines.append(lines[-1].replace(f"{DAY}T16", "bad"))
    lines.append('{"resident": "%s", broken' % sorted(canaries)[0])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return canaries


class Subscriber:
    """Every message on the broker (``#``), received on paho's own thread."""

    def __init__(self, host: str, port: int):
        self.payloads: list[bytes] = []
        self._ready = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_connect = lambda client, *_: client.subscribe("#", qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = lambda _c, _u, message: self.payloads.append(message.payload)
        self._client.connect(host, port)
        self._client.loop_start()
        assert self._ready.wait(10), "subscriber not ready"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_no_raw_resident_code_leaves_the_run(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JUKIMON_OPSIDS_KEY", "canary:canary-test-key-0123456789")
    source = tmp_path / "in" / "audit.jsonl"
    source.parent.mkdir()
    canaries = plant(source)
    configure_logging("DEBUG", json_lines=True)  # the production log format, to stderr
    logging.getLogger().addHandler(caplog.handler)
    with mosquitto_server(tmp_path) as broker:
        subscriber = Subscriber(broker.host, broker.port)
        try:
            parser = argparse.ArgumentParser()
            register(parser.add_subparsers())
            args = parser.parse_args(["opsids", "replay", str(source), "--mqtt", f"{broker.host}:{broker.port}"])
            assert args.handler(args) == 0
        finally:
            logging.getLogger().handlers.clear()
            subscriber.close()
    captured = capsys.readouterr()
    alerts = [json.loads(line) for line in captured.out.splitlines()]
    published = [json.loads(payload) for payload in subscriber.payloads]
    assert sorted(m["alert"]["type"] for m in published) == sorted(a["type"] for a in alerts)
    assert {m["source"] for m in published} == {"ids.operations"}
    assert {"enumeration", "out_of_jurisdiction"} <= {a["type"] for a in alerts}  # the canaries were judged
    assert '"reason": "bad_ts"' in captured.err and '"reason": "not_json"' in captured.err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != source]
    texts = [captured.out, captured.err, caplog.text, *(p.read_text(errors="replace") for p in written),
             *(payload.decode() for payload in subscriber.payloads)]
    leaks = {code for code in canaries for text in texts if code in text}
    assert len(canaries) > 500 and not leaks
