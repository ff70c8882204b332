"""Private Mosquitto and VictoriaMetrics processes on free loopback ports, each in its own directory.

The main job starts them when no broker or TSDB is configured, so a fresh
machine runs the whole chain for real (Debian's ``mosquitto`` and
``victoria-metrics`` packages); the tests start their own the same way, and can
stop and start one again *on the same port and data directory* for outage tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def die_with_parent() -> None:
    """In a child, before exec: when its parent dies, even by SIGKILL, it gets SIGTERM (Linux PR_SET_PDEATHSIG),
    so a killed main job leaves no broker, TSDB or simulation behind on its ports."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A server process that can be stopped and started again on the same port."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir.resolve()  # the server runs with this as its cwd: relative paths would break
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        assert not self.running, f"{self.name} already running"
        log = self._log.open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     preexec_fn=die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self._log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _tcp_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False


class Mosquitto(ManagedProcess):
    """``mosquitto -c conf``: one anonymous listener on loopback; persistence off unless asked for.

    With ``persistence=True`` the broker saves sessions, subscriptions and retained messages in its
    workdir at shutdown and restores them at start (for tests of persistent subscribers).

    With ``tls_pki`` (a ``jukimon pki init`` directory) it runs the production configuration instead,
    ``deploy/mosquitto/jukimon.conf`` rendered for the workdir: TLS only, client certificates required,
    the ACL made from the certificates in that directory, persistence on.
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, *, persistence: bool = False,
                 tls_pki: Path | None = None) -> None:
        super().__init__(workdir, port)
        self.persistence = persistence
        self.tls_pki = tls_pki

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        persistence = (f"persistence true\npersistence_location {self.workdir}/\n" if self.persistence
                       else "persistence false\n")
        # As root, mosquitto switches to user "mosquitto", which cannot write our tmp dir: stay who we are.
        user = pwd.getpwuid(os.geteuid()).pw_name
        if self.tls_pki is not None:
            from monitor.pki import mosquitto_files

            conf = mosquitto_files(self.tls_pki, self.workdir, port=self.port, bind=self.host,
                                   persistence_dir=self.workdir,
                                   extra=(f"user {user}", "log_dest stdout", "log_type error", "log_type warning"))[0]
            return [MOSQUITTO, "-c", str(conf)]
        conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\nuser {user}\n{persistence}"
                        "log_dest stdout\nlog_type error\nlog_type warning\n")
        return [MOSQUITTO, "-c", str(conf)]

    def ready(self) -> bool:
        return self._tcp_open()


class VictoriaMetrics(ManagedProcess):
    """Single-node VictoriaMetrics accepting InfluxDB v2 writes at ``/api/v2/write``.

    ``-retentionPeriod=100y`` because test timestamps may be far in the past; ``-search.latencyOffset=0s``
    and ``-search.disableCache`` so a point is visible to ``/api/v1/export`` right after ``flush()``
    (``/internal/force_flush`` moves the in-memory buffers to searchable parts).
    """

    name = "victoria-metrics"

    def command(self) -> list[str]:
        return [VICTORIA_METRICS, f"-httpListenAddr={self.host}:{self.port}",
                f"-storageDataPath={self.workdir / 'data'}", "-retentionPeriod=100y",
                "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR",
                "-dedup.minScrapeInterval=1ms"]  # a batch re-sent after a timeout stores nothing twice

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def flush(self) -> None:
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as resp:
            resp.read()

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, Any]]:
        """Every raw sample of the matching series (``/api/v1/export`` JSON lines), after a flush."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]

    def points(self, match: str = '{__name__=~".+"}') -> dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]:
        """``{(name, sorted labels): [(ts_ms, value), ...]}`` — duplicates kept, so a test can count them."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]] = {}
        for series in self.export(match):
            metric = dict(series["metric"])
            name = metric.pop("__name__")
            key = (name, tuple(sorted(metric.items())))
            out.setdefault(key, []).extend(zip(series["timestamps"], series["values"], strict=True))
        for values in out.values():
            values.sort()
        return out
