"""Ask a simulated device over real UDP with Debian's net-snmp tools (an independent implementation).

Runs them as asyncio subprocesses so that the simulation, which lives in the
test's own event loop, keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil

V3 = ["-v3", "-l", "authPriv", "-u", "jukimon", "-a", "SHA", "-A", "jukimon-auth-key",
      "-x", "AES", "-X", "jukimon-priv-key"]
V2C = ["-v2c", "-c", "public"]


def require_net_snmp() -> None:
    if shutil.which("snmpget") is None:
        raise RuntimeError("net-snmp tools missing: apt-get install -y snmp (.ci/run does this)")


async def snmp(tool: str, address: str, port: int, *oids: str, v3: bool = False,
               timeout: float = 1.0, retries: int = 0) -> tuple[int, str]:
    """Run snmpget/snmpwalk/...; return (exit code, stdout+stderr). Values printed numerically."""
    require_net_snmp()
    args = [tool, *(V3 if v3 else V2C), "-On", "-Oe", "-t", str(timeout), "-r", str(retries),
            f"{address}:{port}", *oids]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT,
                                                env={"MIBS": "", "PATH": "/usr/bin:/bin"})
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def values(output: str) -> dict[str, str]:
    """'.1.3.6.1.2.1.1.3.0 = Timeticks: (123) 0:00:01.23' → {'.1.3.6.1.2.1.1.3.0': 'Timeticks: (123) ...'}."""
    result = {}
    for line in output.splitlines():
        oid, sep, value = line.partition(" = ")
        if sep and not value.startswith("No more variables"):  # end-of-walk marker repeats the last OID
            result[oid.strip()] = value.strip()
    return result


def number(value: str) -> int:
    """The integer in 'INTEGER: 5', 'Counter64: 7', 'Timeticks: (123) 0:00:01.23', 'Gauge32: 9'."""
    text = value.split(":", 1)[1].strip()
    if text.startswith("("):
        text = text[1:text.index(")")]
    return int(text.split()[0])
