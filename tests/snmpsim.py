"""snmpsim (PyPI) serving recordings of real devices on loopback, for the collectors' tests.

snmpsim is an independent SNMP agent that answers from ``.snmprec`` recordings; the
community selects the recording (``cisco-c3750.snmprec`` answers community
``cisco-c3750``). It refuses to run as root: started by root it binds its port, then
drops to ``--process-user``/``--process-group`` — and from then on every module it
imports lazily (``dbm.dumb`` for its index, among others) must be readable by that
user. Here the virtualenv's interpreter may live under ``/root`` (pyenv; mode 700),
which ``nobody`` cannot enter, so as root this helper:

* copies the recordings into a world-readable temporary directory, with an index
  cache directory owned by the unprivileged user;
* picks an interpreter the unprivileged user can run with snmpsim importable —
  the virtualenv's own, else the system ``python3`` with the virtualenv's
  site-packages on ``PYTHONPATH``, else the same with those packages copied into the
  temporary directory — and proves it by running an import probe *as that user*;
* starts snmpsim with ``--process-user``/``--process-group`` (``nobody`` and its
  group; a system user ``jukimon-snmpsim`` is created if there is no ``nobody``).

Not root, it simply runs the virtualenv's snmpsim as the current user.

Usage::

    with snmpsim_agent(Path("tests/data/snmprec")) as agent:   # agent.address, agent.port
        ...  # SNMPv2c, community = recording name
"""

from __future__ import annotations

import contextlib
import grp
import importlib.util
import os
import pwd
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from monitor.snmp import ber, message

FALLBACK_USER = "jukimon-snmpsim"
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
# what snmpsim imports at start-up and lazily after dropping privileges
PROBE = ("import dbm.dumb, json, logging.handlers, pysnmp, pyasn1, snmpsim.commands.responder, "
         "snmpsim.variation, snmpsim.record.search.database; print('ok')")
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


class SnmpsimUnavailable(RuntimeError):
    """snmpsim cannot be run here (not installed, or no interpreter the unprivileged user can run)."""


def require_snmpsim() -> None:
    """Skip on a developer machine without snmpsim; fail in CI, where a skip would hide lost coverage."""
    missing = [name for name in ("snmpsim", "pysnmp", "pysmi") if importlib.util.find_spec(name) is None]
    if missing:
        reason = (f"{', '.join(missing)} not installed in {sys.prefix}: "
                  "pip install 'snmpsim>=1.2.2,<2' 'pysmi>=2,<3' (the test extras)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@dataclass
class RunAs:
    """Whom snmpsim drops to (root only), and the interpreter that user can run."""

    user: str | None
    group: str | None
    uid: int | None
    gid: int | None
    python: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class SnmpsimAgent:
    address: str
    port: int
    workdir: Path
    run_as: RunAs
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.workdir / "snmpsim.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, community: str, timeout: float = 60.0) -> None:
        """Start snmpsim and wait until it answers a GET for ``community`` (the data files are indexed first)."""
        cmd = [self.run_as.python, "-m", "snmpsim.commands.responder",
               f"--data-dir={self.workdir / 'data'}", f"--cache-dir={self.workdir / 'cache'}",
               f"--agent-udpv4-endpoint={self.address}:{self.port}", "--logging-method=stderr",
               "--log-level=info"]
        if self.run_as.user:
            cmd += [f"--process-user={self.run_as.user}", f"--process-group={self.run_as.group}"]
        self.command = cmd
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.workdir, env=self.run_as.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SnmpsimUnavailable(f"snmpsim exited with {self.process.returncode}: {' '.join(cmd)}\n"
                                         f"{self.log()[-3000:]}")
            if _answers(self.address, self.port, community):
                return
            time.sleep(0.2)
        self.stop()
        raise SnmpsimUnavailable(f"snmpsim did not answer within {timeout} s: {' '.join(cmd)}\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """SIGINT is snmpsim's clean shutdown (KeyboardInterrupt); SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _answers(address: str, port: int, community: str) -> bool:
    """One SNMPv2c GET sysUpTime.0: any well-formed answer means the agent is serving."""
    request = message.encode_v2c(community.encode(), message.encode_pdu(
        ber.GET_REQUEST, 4711, 0, 0, message.varbind(SYS_UPTIME, ber.NULL_VALUE)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(request, (address, port))
            answer, _ = sock.recvfrom(65535)
        except OSError:  # timeout, or ICMP port unreachable before the bind
            return False
    return len(answer) > 0


def _unprivileged_user() -> tuple[str, str, int, int]:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        try:
            entry = pwd.getpwnam(FALLBACK_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", FALLBACK_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(FALLBACK_USER)
    return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name, entry.pw_uid, entry.pw_gid


def _base_env(workdir: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}


def _probe(python: str, env: dict[str, str], uid: int | None, gid: int | None, cwd: Path) -> str | None:
    """None if ``python`` imports what snmpsim needs when run as uid/gid, else what went wrong."""
    kwargs: dict = {"user": uid, "group": gid, "extra_groups": []} if uid is not None else {}
    try:
        done = subprocess.run([python, "-c", PROBE], env=env, cwd=cwd, capture_output=True, timeout=60, **kwargs)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{python}: {exc}"
    if done.returncode == 0 and done.stdout.strip() == b"ok":
        return None
    return f"{python}: {done.stderr.decode(errors='replace').strip().splitlines()[-1:] or done.returncode}"


def _site_packages() -> list[str]:
    return [path for path in site.getsitepackages() if Path(path).is_dir()]


def _copy_packages(target: Path) -> None:
    """Copy the top-level packages snmpsim imports (as root, where they are all readable) into ``target``."""
    listing = subprocess.run(
        [sys.executable, "-c", PROBE.replace("print('ok')", "") + "\nimport sys\nfor m in list(sys.modules.values()):"
         "\n    f = getattr(m, '__file__', None) or ''\n    print(f)"],
        capture_output=True, text=True, check=True)
    roots = _site_packages()
    wanted: set[Path] = set()
    for line in listing.stdout.splitlines():
        for root in roots:
            if line.startswith(root + os.sep):
                wanted.add(Path(root) / Path(line[len(root) + 1:]).parts[0])
    target.mkdir(mode=0o755)
    for path in sorted(wanted):
        if path.is_dir():
            shutil.copytree(path, target / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target / path.name)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _choose_run_as(workdir: Path) -> RunAs:
    env = _base_env(workdir)
    if os.geteuid() != 0:  # snmpsim runs as we do, with our interpreter and import path
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        problem = _probe(sys.executable, env, None, None, workdir)
        if problem is not None:
            raise SnmpsimUnavailable(f"snmpsim does not start here: {problem}")
        return RunAs(None, None, None, None, sys.executable, env)
    user, group, uid, gid = _unprivileged_user()
    failures = []
    candidates: list[tuple[str, dict[str, str]]] = [(sys.executable, env)]
    system = [p for p in SYSTEM_PYTHONS if os.access(p, os.X_OK)]
    if system:
        candidates.append((system[0], {**env, "PYTHONPATH": os.pathsep.join(_site_packages())}))
    for python, candidate_env in candidates:
        problem = _probe(python, candidate_env, uid, gid, workdir)
        if problem is None:
            return RunAs(user, group, uid, gid, python, candidate_env)
        failures.append(problem)
    if system:  # the virtualenv itself is out of the user's reach (e.g. under /root): copy what snmpsim needs
        _copy_packages(workdir / "lib")
        candidate_env = {**env, "PYTHONPATH": str(workdir / "lib")}
        problem = _probe(system[0], candidate_env, uid, gid, workdir)
        if problem is None:
            return RunAs(user, group, uid, gid, system[0], candidate_env)
        failures.append(problem)
    raise SnmpsimUnavailable(f"no Python that user {user} can run with snmpsim importable "
                             f"(apt-get install python3?): {'; '.join(failures)}")


@contextlib.contextmanager
def snmpsim_agent(data_dir: Path, address: str = "127.0.0.1") -> Iterator[SnmpsimAgent]:
    """snmpsim serving every ``*.snmprec`` in ``data_dir`` on a free UDP port; stopped and cleaned up on exit."""
    require_snmpsim()
    recordings = sorted(data_dir.glob("*.snmprec"))
    if not recordings:
        raise FileNotFoundError(f"no .snmprec files in {data_dir}")
    workdir = Path(tempfile.mkdtemp(prefix="jukimon-snmpsim-"))
    try:
        workdir.chmod(0o755)
        (workdir / "data").mkdir(mode=0o755)
        for path in recordings:
            shutil.copyfile(path, workdir / "data" / path.name)
            (workdir / "data" / path.name).chmod(0o644)
        run_as = _choose_run_as(workdir)
        (workdir / "cache").mkdir(mode=0o700)
        if run_as.uid is not None:
            os.chown(workdir / "cache", run_as.uid, run_as.gid if run_as.gid is not None else -1)
        for attempt in range(3):  # a free port can be taken between choosing it and snmpsim binding it
            agent = SnmpsimAgent(address, free_udp_port(address), workdir, run_as)
            try:
                agent.start(recordings[0].stem)
                break
            except SnmpsimUnavailable:
                if attempt == 2 or "Address already in use" not in agent.log():
                    raise
        try:
            yield agent
        finally:
            agent.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
