"""The simulated national network as a child process, for benchmarks: start, wait for it, stop it."""

from __future__ import annotations

import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port below the ephemeral range, free for UDP and TCP on every address."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(21000, 32000)
        try:
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, k) as s:
                    s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found")


class Simulation:
    def __init__(self, tls: bool, state_dir: Path, log_path: Path, trap_receiver: tuple[str, int] | None = None):
        self.trap_receiver = trap_receiver  # where the devices send SNMPv3 traps (as in the main job), if anywhere
        self.snmp_port, self.tls_port, self.control_port = free_port(), free_port(), free_port()
        self.tls = tls
        self.state_dir = state_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""

    def start(self, timeout: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "simnet", "run",
               "--snmp-port", str(self.snmp_port), "--tls-port", str(self.tls_port),
               "--control", f"127.0.0.1:{self.control_port}", "--state-dir", str(self.state_dir)]
        if not self.tls:
            cmd.append("--no-tls")
        if self.trap_receiver is not None:
            cmd += ["--trap-receiver", f"{self.trap_receiver[0]}:{self.trap_receiver[1]}", "--trap-version", "3"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def drain() -> None:  # keeps the pipe from filling; ends at EOF
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True, name="sim-stdout").start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            if "devices up" in line:
                self.banner = line.strip()
                return
        raise RuntimeError(f"simulation did not come up (see {self.log_path})")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)
        if hasattr(self, "_log"):
            self._log.close()


def stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
