"""The live sensor inside an asyncio process: capture in a thread, alerts handed to the event loop.

``live.capture`` blocks on a raw socket, so it runs in its own thread; the engine calls
``on_alert`` on that thread, and alerting is not thread-safe, so each alert crosses to
the loop with ``call_soon_threadsafe`` and the sink runs there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ids.traffic.engine import Engine
from ids.traffic.evidence import Evidence
from ids.traffic.live import capture
from monitor.logs import fields

log = logging.getLogger("ids.traffic.sensor")

Alert = dict[str, Any]


class LiveSensor:
    """``await start()`` returns once the interface is open (or raises why not); ``await stop()`` ends the capture."""

    def __init__(self, interface: str, on_alert: Callable[[Alert], None], **engine_options: Any):
        self.interface = interface
        self._on_alert = on_alert
        engine_options.setdefault("evidence", Evidence())  # the console offers each alert's packets as a pcap
        self.engine = Engine(self._from_capture, **engine_options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"ids-capture-{interface}")  # not the loop's pool
        self._thread: asyncio.Future[None] | None = None

    def _from_capture(self, alert: Alert) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_alert, alert)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready = threading.Event()
        self._thread = self._loop.run_in_executor(self._executor, capture, self.engine, self.interface, self._stop, ready)
        while not ready.is_set():  # the socket opens in the thread: its error (no such interface, no root) ends it
            if self._thread.done():
                self._executor.shutdown()
                self._thread.result()
            await asyncio.sleep(0.05)
        self._thread.add_done_callback(self._ended)

    def _ended(self, thread: asyncio.Future[None]) -> None:
        """A capture that fails while running (the interface gone) says so at once, not at shutdown."""
        if not thread.cancelled() and thread.exception() is not None:
            log.error("live sensor failed", extra=fields(interface=self.interface, reason=str(thread.exception())))

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.wait([self._thread])  # a failure was logged when it happened
        self._executor.shutdown()
        log.info("live sensor stopped", extra=fields(interface=self.interface, packets=self.engine.stats.packets,
                                                     alerts=self.engine.stats.alerts))
