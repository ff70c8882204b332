"""Control channel of a running simulation: JSON lines over TCP on localhost.

``jukimon simnet fault ...`` and the drill runner talk to a simulation in
another process through this. One request per line, one reply per line:

    {"op": "inject", "kind": "line_cut", "target": "line-muni-01-002-rt1", "params": {}}
    {"op": "clear", "id": "F00001"}      {"op": "clear_all"}
    {"op": "list"}                        {"op": "status"}

Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; a bad
line never closes the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from monitor.logs import fields
from simnet.faults import FaultError
from simnet.network import SimNetwork

log = logging.getLogger("simnet.control")

DEFAULT_CONTROL = ("127.0.0.1", 16100)
MAX_LINE = 65_536


class ControlServer:
    def __init__(self, network: SimNetwork, host: str = DEFAULT_CONTROL[0], port: int = DEFAULT_CONTROL[1]):
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError("the simulation's control channel listens on loopback only")
        self.network = network
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # line over MAX_LINE
                    writer.write(_encode({"ok": False, "error": f"request longer than {MAX_LINE} bytes"}))
                    break
                if not line:
                    break
                writer.write(_encode(self.execute_line(line)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def execute_line(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return {"ok": True, **self._execute(request)}
        except (ValueError, FaultError, TypeError) as exc:
            log.info("control request refused", extra=fields(reason=str(exc)))
            return {"ok": False, "error": str(exc)}

    def _execute(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        net = self.network
        if op == "inject":
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError("params must be an object")
            kind, target = request.get("kind"), request.get("target")
            if not isinstance(kind, str) or not isinstance(target, str):
                raise ValueError("inject needs string fields kind and target")
            return {"fault": net.inject(kind, target, **params).to_json()}
        if op == "clear":
            fault_id = request.get("id")
            if not isinstance(fault_id, str):
                raise ValueError("clear needs a string field id")
            return {"fault": net.clear(fault_id).to_json()}
        if op == "clear_all":
            return {"cleared": [f.to_json() for f in net.clear_all()]}
        if op == "list":
            return {"faults": [f.to_json() for f in net.faults()]}
        if op == "status":
            return {"devices": len(net.devices), "tiers": net.listening_summary(),
                    "snmp": net.snmp_stats, "active_faults": len(net.faults()), "clock": net.clock.now()}
        raise ValueError(f"unknown op {op!r}; use inject, clear, clear_all, list or status")


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, ensure_ascii=False).encode() + b"\n"


async def control_request(request: dict[str, Any], host: str = DEFAULT_CONTROL[0],
                          port: int = DEFAULT_CONTROL[1], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a running simulation and return its reply."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise ConnectionError(f"no simulation answering on {host}:{port} ({exc})") from None
    try:
        writer.write(_encode(request))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return json.loads(line)
    finally:
        writer.close()
