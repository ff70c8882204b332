"""Live updates: the state engine's changes pushed to every open console page (Server-Sent Events).

``LiveHub.on_changes`` is a ``StateEngine`` listener (synchronous, on the
monitor's loop). It only collects; one flush per loop turn — after every
listener, alerting's too, has seen the same judgement — turns what changed into
events and puts them on each browser's queue. The page's script
(``static/live.js``) recolours tiles, updates the alarm counts and shows raised
and cleared conditions; nothing polls, so a change reaches the screen within
the engine's settle time plus one loop turn.

Events (``event:`` name, JSON ``data:``):

- ``hello``: sent on connect; a browser that reconnects reloads to catch up
- ``state``: ``{"sites": {id: state}, "devices": {id: state}}`` — only what changed
- ``conditions``: ``{"raised": [...], "cleared": [...]}`` (fingerprint, kind, subject, severity, summary)
- ``alarms``: ``{"open": n, "unacknowledged": n, "by_severity": {severity: n}}`` after alarms changed
- ``notification``: a notification addressed to the console (subject, kind, drill)

A browser that falls ``QUEUE_SIZE`` events behind is dropped; its EventSource
reconnects and reloads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from alerting.alarms import OPEN_STATUSES
from alerting.model import AlarmStatus, Notification
from dashboards.auth import require
from dashboards.context import ConsoleContext
from monitor.logs import fields
from monitor.state.engine import Changes
from monitor.state.model import Condition, SubjectKind

log = logging.getLogger("dashboards.live")

QUEUE_SIZE = 500
HEARTBEAT_SECONDS = 15.0
_CLOSE = None  # put on a queue to end its stream


class LiveHub:
    """Fan-out of the monitor's changes to connected browsers."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        self._queues: set[asyncio.Queue[str | None]] = set()
        self._sites: dict[str, str] = {}
        self._devices: dict[str, str] = {}
        self._raised: list[Condition] = []
        self._cleared: list[Condition] = []
        self._alarms_dirty = False
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- wiring ---------------------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen to the engine (and the console inbox); call on the monitor's loop."""
        self._loop = asyncio.get_running_loop()
        self.ctx.engine.listeners.append(self.on_changes)
        if self.ctx.inbox is not None:
            self.ctx.inbox.listeners.append(self.on_notification)

    def detach(self) -> None:
        """Stop listening and end every open stream (so that a server can stop at once)."""
        if self.on_changes in self.ctx.engine.listeners:
            self.ctx.engine.listeners.remove(self.on_changes)
        if self.ctx.inbox is not None and self.on_notification in self.ctx.inbox.listeners:
            self.ctx.inbox.listeners.remove(self.on_notification)
        for queue in list(self._queues):
            self._offer(queue, _CLOSE)

    @property
    def clients(self) -> int:
        return len(self._queues)

    # --- input ----------------------------------------------------------------------------------------------------

    def on_changes(self, changes: Changes) -> None:
        for record in changes.states:
            if record.kind is SubjectKind.SITE:
                self._sites[record.subject] = record.state.value
            elif record.kind is SubjectKind.DEVICE:
                self._devices[record.subject] = record.state.value
        self._raised.extend(changes.raised)
        self._cleared.extend(changes.cleared)
        if changes.raised or changes.updated or changes.cleared:
            self._alarms_dirty = True
        self._schedule()

    def alarms_changed(self) -> None:
        """An operator acted on an alarm: refresh everyone's counts."""
        self._alarms_dirty = True
        self._schedule()

    def on_notification(self, notification: Notification) -> None:
        self._broadcast("notification", {"subject": notification.subject, "kind": notification.kind,
                                         "drill": notification.drill, "receiver": notification.receiver})

    def _schedule(self) -> None:
        if not self._scheduled and self._queues and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        elif not self._queues:  # nobody watching: keep nothing
            self._reset()

    def _reset(self) -> None:
        self._sites, self._devices, self._raised, self._cleared = {}, {}, [], []
        self._alarms_dirty = False

    def _flush(self) -> None:
        self._scheduled = False
        if self._sites or self._devices:
            self._broadcast("state", {"sites": self._sites, "devices": self._devices})
        if self._raised or self._cleared:
            self._broadcast("conditions", {"raised": [_condition(c) for c in self._raised[-50:]],
                                           "cleared": [_condition(c) for c in self._cleared[-50:]]})
        if self._alarms_dirty:
            self._broadcast("alarms", alarm_counts(self.ctx))
        self._reset()

    # --- output ---------------------------------------------------------------------------------------------------

    def _broadcast(self, event: str, data: dict[str, Any]) -> None:
        message = f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
        for queue in list(self._queues):
            self._offer(queue, message)

    def _offer(self, queue: asyncio.Queue[str | None], message: str | None) -> None:
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("live client too slow; dropped", extra=fields(clients=len(self._queues) - 1))
            self._queues.discard(queue)
            queue.get_nowait()  # make room for the end of its stream
            queue.put_nowait(_CLOSE)

    async def stream(self) -> AsyncIterator[str]:
        """One browser's events until it goes away or the hub detaches."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": ping\n\n"  # keeps proxies from closing an idle stream
                    continue
                if message is _CLOSE:
                    return
                yield message
        finally:
            self._queues.discard(queue)


def alarm_counts(ctx: ConsoleContext) -> dict[str, Any]:
    """Open alarms, unacknowledged ones, and open ones by severity."""
    by_severity: dict[str, int] = {}
    unacknowledged = total = 0
    if ctx.alerting is not None:
        for alarm in ctx.alerting.open_alarms(statuses=OPEN_STATUSES):
            total += 1
            by_severity[alarm.severity] = by_severity.get(alarm.severity, 0) + 1
            unacknowledged += alarm.status is AlarmStatus.FIRING
    return {"open": total, "unacknowledged": unacknowledged, "by_severity": by_severity}


def _condition(c: Condition) -> dict[str, Any]:
    return {"fingerprint": c.fingerprint, "kind": c.kind.value, "subject": c.subject, "severity": c.severity,
            "summary": c.summary, "maintenance": c.in_maintenance}


@require()
async def events(request: Request) -> StreamingResponse:
    hub: LiveHub = request.app.state.console.live
    return StreamingResponse(hub.stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def routes() -> list[Route]:
    return [Route("/live", events)]
