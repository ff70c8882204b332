"""The private servers the main job starts die with it, even when it is SIGKILLed (no broker left on a port)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.localservers import MOSQUITTO

pytestmark = pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto not installed")

STARTER = """
import sys, time
from pathlib import Path
from monitor.localservers import Mosquitto
broker = Mosquitto(Path(sys.argv[1]))
broker.start()
print(broker.proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_broker_started_by_a_process_that_is_killed_stops_too(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        broker_pid = int(parent.stdout.readline())
        assert _alive(broker_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(broker_pid), "mosquitto outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
