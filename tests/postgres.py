"""A private PostgreSQL server for the tests: real PostgreSQL, free loopback port, one per session.

Debian's ``postgresql`` package provides the binaries; the system-wide server (if
any) is never touched. Without the package a test skips on a developer machine
and fails in CI (``tests.servers.require``). ``tests/conftest.py`` holds the session's server as the
``postgres`` fixture and ``url`` (SQLite, then PostgreSQL); a test wanting a database of its own::

    url = postgres.create_database("test_x")
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from monitor.store.postgres import PrivatePostgres, postgres_bindir
from tests.servers import free_port, require


@contextlib.contextmanager
def postgres_server() -> Iterator[PrivatePostgres]:
    """A running private server in a fresh directory; stopped and removed on exit."""
    bindir = postgres_bindir()
    require(str(bindir / "postgres") if bindir else "/usr/lib/postgresql/<version>/bin/postgres", "postgresql")
    # Not under pytest's tmp_path: as root the server runs as user postgres, which cannot enter /tmp/pytest-of-root.
    workdir = Path(tempfile.mkdtemp(prefix="jukimon-pg-"))
    server = PrivatePostgres(workdir, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
