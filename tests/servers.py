"""Private Mosquitto and VictoriaMetrics processes for tests (real servers, free loopback ports, tmp dirs).

The output tests must show behaviour against the servers production uses — reconnect after a broker
restart, spool and back-fill across a TSDB outage — so each test starts its own process and can stop and
start it again *on the same port and data directory* mid-test. Nothing here touches a system-wide
Mosquitto on 1883.

Usage::

    with mosquitto_server(tmp_path) as broker:      # broker.host, broker.port
        broker.stop(); ...; broker.start()          # an outage
    with victoria_metrics_server(tmp_path) as vm:   # vm.url, vm.points(match), vm.flush()
        ...
    with recording_write_server() as rec:           # rec.url, rec.status = 503, rec.lines()
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from monitor.localservers import MOSQUITTO, VICTORIA_METRICS, Mosquitto, VictoriaMetrics, free_port

__all__ = ["Mosquitto", "RecordingWriteServer", "VictoriaMetrics", "free_port", "free_udp_port", "mosquitto_server",
           "recording_write_server", "require", "victoria_metrics_server"]

def require(binary: str, package: str) -> None:
    """Skip on a developer machine without the server; fail in CI, where a skip would hide lost coverage."""
    if not Path(binary).exists():
        message = f"{binary} missing: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def mosquitto_server(workdir: Path) -> Iterator[Mosquitto]:
    """A running private broker; stopped on exit whatever the test did to it."""
    require(MOSQUITTO, "mosquitto")
    server = Mosquitto(workdir / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def victoria_metrics_server(workdir: Path, kind: type[VictoriaMetrics] = VictoriaMetrics) -> Iterator[VictoriaMetrics]:
    """A running private VictoriaMetrics (or a variant of it); stopped on exit whatever the test did to it."""
    require(VICTORIA_METRICS, "victoria-metrics")
    server = kind(workdir / "victoria-metrics")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RecordingWriteServer:
    """A minimal InfluxDB-v2 write endpoint that records every accepted body, in arrival order.

    VictoriaMetrics sorts what it stores, so it cannot show the *order* batches arrived in; this
    server can, and can answer with an error status (``status = 503``) to stage an outage or a
    poison batch (``status = 400``) without a process restart.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.status = 204
        self.bodies: list[bytes] = []
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                status = server.status
                if status == 204 and self.path.startswith("/api/v2/write"):
                    server.bodies.append(body)
                    self.send_response(204)
                    self.end_headers()
                    return
                payload = json.dumps({"code": "unavailable", "message": f"staged {status}"}).encode()
                self.send_response(status if status != 204 else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def lines(self) -> list[str]:
        return [line for body in self.bodies for line in body.decode().split("\n") if line]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextlib.contextmanager
def recording_write_server() -> Iterator[RecordingWriteServer]:
    server = RecordingWriteServer()
    try:
        yield server
    finally:
        server.close()


def free_udp_port() -> int:
    """A UDP port nothing is bound to on 0.0.0.0 right now — so no simulated agent address collides either."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]
