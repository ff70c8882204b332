"""Serving the console inside a running monitor: a uvicorn server on the monitor's own asyncio loop.

The main job owns the loop and the signals, so the server neither installs
signal handlers nor exits the process on a bind error (uvicorn's own habits):
the socket is bound here first, and a port already in use raises ``OSError``
to the caller. Usage::

    ctx = ConsoleContext(..., secret_key=load_secret(state_dir / "console.key"))
    console = await serve(ctx, host="127.0.0.1", port=8080)
    ...
    await console.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Iterator

import uvicorn

from dashboards.app import create_app
from dashboards.context import ConsoleContext
from monitor.logs import fields

log = logging.getLogger("dashboards.server")


def load_secret(path: Path) -> bytes:
    """The key that signs sessions and CSRF tokens, created (32 random bytes, mode 0600) on first use.

    Kept across restarts so that operators stay signed in when the monitor restarts.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(32))
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path}: a console key needs at least 32 bytes")
    return secret


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the main job handles SIGINT/SIGTERM and calls stop()


class ConsoleServer:
    """A started console; ``url`` is where it listens, ``stop()`` ends it (open live streams included)."""

    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None], host: str, port: int) -> None:
        self._server, self._task = server, task
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def app(self):
        return self._server.config.app

    async def stop(self) -> None:
        self.app.state.console.live.detach()  # end the event streams, or uvicorn waits for them
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        log.info("console stopped", extra=fields(url=self.url))


async def serve(ctx: ConsoleContext, host: str = "127.0.0.1", port: int = 8080, **app_options: object) -> ConsoleServer:
    """Start the console on ``host:port`` (0: a free port) and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    port = sock.getsockname()[1]
    app = create_app(ctx, **app_options)  # type: ignore[arg-type]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=3,
                            proxy_headers=False)
    server = _EmbeddedServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name="console")
    while not server.started:
        if task.done():  # start-up failed (e.g. the store): raise it here
            task.result()
            raise RuntimeError("console server ended during start-up")
        await asyncio.sleep(0.02)
    log.info("console listening", extra=fields(url=f"http://{host}:{port}"))
    return ConsoleServer(server, task, host, port)
