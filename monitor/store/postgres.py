"""A private PostgreSQL server in its own directory on a loopback port, for tests and demos.

Runs Debian's binaries (``/usr/lib/postgresql/<version>/bin``, package
``postgresql``) directly: ``initdb`` once, then ``postgres`` in the foreground,
listening on 127.0.0.1 only, unix sockets inside the cluster directory, trust
authentication, fsync off — a scratch database, never production. PostgreSQL
refuses to run as root, so as root every server command runs as the ``postgres``
system user (made by the Debian package) and the directory is handed to it;
that user must be able to reach the directory (``tempfile.mkdtemp()`` is fine,
pytest's per-user tmp directory is not).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from monitor.localservers import ManagedProcess

SERVER_USER = "postgres"  # the Debian package's system user, used when we are root
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"  # util-linux: execs, so the server stays our child


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that holds a ``postgres`` binary, if any."""
    found = [binary.parent for binary in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    return max(found, key=lambda bindir: [int(part) for part in bindir.parent.name.split(".") if part.isdigit()],
               default=None)


class PrivatePostgres(ManagedProcess):
    """``postgres -D <data_dir>/pgdata`` on ``127.0.0.1:<port>``; superuser ``postgres``, no password needed."""

    name = "postgres"

    def __init__(self, data_dir: Path, port: int | None = None, *, bindir: Path | None = None) -> None:
        super().__init__(data_dir, port)
        found = bindir or postgres_bindir()
        if found is None:
            raise RuntimeError("no PostgreSQL under /usr/lib/postgresql/<version>/bin: apt-get install postgresql")
        self.bindir = found
        self.pgdata = self.workdir / "pgdata"  # apart from the log: initdb wants an empty directory
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        """SQLAlchemy async URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        """A new empty database (one per test keeps tests apart on one server); returns its URL."""
        self._run([str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", "postgres", database])
        return self.database_url(database)

    def start(self, timeout: float = 30.0) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        super().start(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """``pg_ctl stop -m fast``: active sessions are ended, the data stays consistent for a later start."""
        if self.running:
            self._run(self._as_server_user([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.pgdata),
                                            "-m", "fast", "-w", "-t", str(int(timeout))]), check=False)
        super().stop(timeout)  # reaps the process, or terminates it if pg_ctl could not

    def command(self) -> list[str]:
        settings = {"listen_addresses": self.host, "port": str(self.port),
                    "unix_socket_directories": str(self.pgdata), "fsync": "off", "synchronous_commit": "off",
                    "full_page_writes": "off", "shared_buffers": "32MB"}
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return self._as_server_user([str(self.bindir / "postgres"), "-D", str(self.pgdata), *options])

    def ready(self) -> bool:
        """Accepting connections — an open TCP port alone may still answer "the database system is starting up"."""
        probe = [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        return subprocess.run(probe, check=False, timeout=5).returncode == 0

    def _initdb(self) -> None:
        if self._as_root:
            shutil.chown(self.workdir, SERVER_USER, SERVER_USER)
            if self._run(self._as_server_user(["test", "-w", str(self.workdir)]), check=False).returncode != 0:
                raise RuntimeError(f"user {SERVER_USER} cannot write {self.workdir}: a parent directory is closed "
                                   "to it; as root, use a directory such as tempfile.mkdtemp()")
        self._run(self._as_server_user([str(self.bindir / "initdb"), "-D", str(self.pgdata), "--username=postgres",
                                        "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]))

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if not self._as_root:
            return argv
        return [SETPRIV, f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups", "--", *argv]

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=self.workdir, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {(done.stdout + done.stderr)[-2000:]}")
        return done
