"""The SNMP poller against recordings of real devices, served by snmpsim (an agent that is not ours).

Our simulation (simnet/) answers the way we wrote it; real equipment does not. These
tests poll five walks of real devices from snmpsim-data (tests/data/snmprec/README.md:
a Juniper MX960 router, a Cisco Catalyst 3750 switch, a Palo Alto PA-5000 firewall, a
CentOS 7 Net-SNMP server, a Windows Server 2003 server) through snmpsim over real UDP,
and compare what the poller returns with what the recording says — the recording file
is the ground truth, read independently of both snmpsim and the poller.

What the poller is expected to do with what real devices do:

* every row of ifTable is an interface, named by ifName, or by ifDescr where the
  agent has no ifXTable (Windows' SNMP service, many older devices);
* octets come from ifHCIn/OutOctets (Counter64) where the device has them for that
  interface, else from ifIn/OutOctets (Counter32, whose rate must then wrap at
  2**32); speed from ifHighSpeed, else ifSpeed / 10**6;
* an object a device does not implement for one interface (Cisco has no HC counters
  for Null0 or stack ports) leaves that value out — it is not a reason to fail the
  whole poll.

These recordings found both behaviours missing in the first poller (a single
missing object failed the whole device; ports without ifXTable were not polled).

Run as root (as CI does), snmpsim drops to an unprivileged user: see tests/snmpsim.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from collectors.snmp.client import Credentials
from collectors.snmp.probe import DeviceTables, RawPoll, learn_tables, poll_device
from collectors.snmp.samples import PollConverter
from collectors.snmp.udp_client import SnmpUdpClient
from monitor.envelope import Origin
from tests.snmpsim import SnmpsimAgent, snmpsim_agent

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "snmprec"
Oid = tuple[int, ...]

JUNIPER, CISCO, PALOALTO, LINUX, WINDOWS = ("juniper-mx960-13-3r9-13", "cisco-c3750", "paloalto-pa-5000",
                                            "linux-unknown-006", "windows-server-2003-5-2")
ALL = [JUNIPER, CISCO, PALOALTO, LINUX, WINDOWS]
WITH_HOST_RESOURCES = [JUNIPER, PALOALTO, LINUX, WINDOWS]

def case(name: str, *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(name, id=name, marks=list(marks))


# --- the ground truth: the recording files themselves ---------------------------------------------------

SYS_DESCR, SYS_UPTIME, SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 1, 0), (1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)
IF: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
HR_STORAGE: Oid = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)
HR_PROCESSOR_LOAD: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2)
STATIC_TYPES = {"2", "4", "4x", "6", "64", "65", "66", "67", "70"}  # no variation modules: values never move
# RawPoll column → (64-bit column, 32-bit fallback); errors and discards are Counter32 in ifTable only
OCTETS = {"in_octets": (IFX + (6,), IF + (10,)), "out_octets": (IFX + (10,), IF + (16,))}
IF_COUNTERS = {"in_discards": IF + (13,), "in_errors": IF + (14,), "out_discards": IF + (19,),
               "out_errors": IF + (20,)}


@dataclass
class Recording:
    name: str
    values: dict[Oid, tuple[str, int | bytes | Oid]]

    @classmethod
    def load(cls, name: str, directory: Path = DATA) -> "Recording":
        values: dict[Oid, tuple[str, int | bytes | Oid]] = {}
        for line in (directory / f"{name}.snmprec").read_bytes().splitlines():
            if not line or line.startswith(b"#"):
                continue
            oid_text, tag, text = line.decode("utf-8", errors="surrogateescape").split("|", 2)
            oid = tuple(int(arc) for arc in oid_text.split("."))
            value: int | bytes | Oid
            if tag == "4x":
                value = bytes.fromhex(text)
            elif tag == "4":
                value = text.encode("utf-8", errors="surrogateescape")
            elif tag in ("6", "64"):
                value = tuple(int(arc) for arc in text.split("."))
            else:
                value = int(text)
            values[oid] = (tag, value)
        return cls(name, values)

    def get(self, oid: Oid) -> Any:
        entry = self.values.get(oid)
        return None if entry is None else entry[1]

    def text(self, oid: Oid) -> str | None:
        value = self.get(oid)
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else None

    def column(self, column: Oid) -> dict[int, Any]:
        n = len(column)
        return {oid[n]: value for oid, (_, value) in self.values.items() if len(oid) == n + 1 and oid[:n] == column}

    def interfaces(self) -> dict[int, dict[str, Any]]:
        """What a correct poller reports for each ifTable row."""
        names, descrs, aliases = self.column(IFX + (1,)), self.column(IF + (2,)), self.column(IFX + (18,))
        high_speeds, speeds, oper = self.column(IFX + (15,)), self.column(IF + (5,)), self.column(IF + (8,))
        expected: dict[int, dict[str, Any]] = {}
        for index in sorted(set(self.column(IF + (1,))) | set(descrs)):
            name = names.get(index) or descrs.get(index) or b""
            speed = high_speeds.get(index)
            if speed is None and index in speeds and speeds[index] < 2**32 - 1:
                speed = speeds[index] // 1_000_000
            row: dict[str, Any] = {"oper_status": oper.get(index), "speed_mbps": speed}
            for column, (hc, legacy) in OCTETS.items():
                row[column] = self.column(hc).get(index, self.column(legacy).get(index))
            for column, oid in IF_COUNTERS.items():
                row[column] = self.column(oid).get(index)
            expected[index] = {"name": name.decode("utf-8", errors="replace"),
                               "alias": aliases.get(index, b"").decode("utf-8", errors="replace"),
                               "hc": index in self.column(IFX + (6,)), "row": row}
        return expected

    def storages(self) -> dict[int, dict[str, Any]]:
        return {index: {"descr": descr.decode("utf-8", errors="replace"),
                        "units": self.column(HR_STORAGE + (4,)).get(index),
                        "size": self.column(HR_STORAGE + (5,)).get(index),
                        "used": self.column(HR_STORAGE + (6,)).get(index)}
                for index, descr in sorted(self.column(HR_STORAGE + (3,)).items())}

    def processors(self) -> list[int]:
        return [load for _, load in sorted(self.column(HR_PROCESSOR_LOAD).items())]


# --- "60 s later": a second snapshot derived at run time, for rates ---------------------------------------

LATER = "-plus60s"
SECONDS = 60
# device → {oid: increase}; Counter32 values wrap modulo 2**32, Counter64 modulo 2**64
SNAPSHOTS: dict[str, dict[Oid, int]] = {
    # ens32 (ifIndex 2, 1 Gb/s, 64-bit counters): 500 Mb/s in, 50 Mb/s out, 1 input error/s
    LINUX: {IFX + (6, 2): 3_750_000_000, IF + (10, 2): 3_750_000_000, IFX + (10, 2): 375_000_000,
            IF + (16, 2): 375_000_000, IF + (14, 2): 60},
    # Intel PRO/1000 (ifIndex 65539, 1 Gb/s, Counter32 only): 466.7 Mb/s in — ifInOctets wraps — 100 Mb/s out
    WINDOWS: {IF + (10, 65539): 3_500_000_000, IF + (16, 65539): 750_000_000, IF + (14, 65539): 60},
}
RATES = {  # device → (ifIndex, expected fields of its interface sample on the second poll)
    LINUX: (2, {"in_bps": 500_000_000.0, "out_bps": 50_000_000.0, "in_errors_ps": 1.0, "utilisation_pct": 50.0}),
    WINDOWS: (65539, {"in_bps": 3_500_000_000 * 8 / SECONDS, "out_bps": 100_000_000.0, "in_errors_ps": 1.0,
                      "utilisation_pct": round(100 * 3_500_000_000 * 8 / SECONDS / 1e9, 3)}),
}


def later_snapshot(original: bytes, increases: dict[Oid, int]) -> bytes:
    """The same recording SECONDS later: sysUpTime and the given counters advanced, nothing else touched."""
    targets = {".".join(map(str, oid)): delta for oid, delta in increases.items()}
    uptime = ".".join(map(str, SYS_UPTIME))
    out, seen = [], set()
    for line in original.splitlines(keepends=True):
        oid, _, rest = line.decode("utf-8", errors="surrogateescape").partition("|")
        tag, _, value = rest.rstrip("\r\n").partition("|")
        if oid == uptime:
            line = f"{oid}|{tag}|{int(value) + SECONDS * 100}\n".encode()
            seen.add(oid)
        elif oid in targets:
            bits = {"65": 32, "70": 64}[tag]
            line = f"{oid}|{tag}|{(int(value) + targets[oid]) % 2**bits}\n".encode()
            seen.add(oid)
        out.append(line)
    assert seen == {uptime, *targets}, f"not in the recording: {set(targets) - seen}"
    return b"".join(out)


# --- fixtures and helpers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpsimAgent]:
    data = tmp_path_factory.mktemp("snmprec")
    for name in ALL:
        (data / f"{name}.snmprec").write_bytes((DATA / f"{name}.snmprec").read_bytes())
    for name, increases in SNAPSHOTS.items():
        (data / f"{name}{LATER}.snmprec").write_bytes(later_snapshot((DATA / f"{name}.snmprec").read_bytes(),
                                                                     increases))
    with snmpsim_agent(data) as running:
        yield running


def client_for(community: str) -> SnmpUdpClient:
    return SnmpUdpClient(Credentials("2c", community=community), timeout=2.0, retries=1)


async def learn(agent: SnmpsimAgent, community: str) -> DeviceTables:
    client = client_for(community)
    try:
        return await learn_tables(client, agent.address, agent.port)
    finally:
        await client.close()


async def poll(agent: SnmpsimAgent, community: str, tables: DeviceTables | None = None
               ) -> tuple[DeviceTables, RawPoll]:
    client = client_for(community)
    try:
        if tables is None:
            tables = await learn_tables(client, agent.address, agent.port)
        return tables, await poll_device(client, agent.address, agent.port, tables)
    finally:
        await client.close()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the recordings themselves -------------------------------------------------------------------------------

def test_recordings_are_small_static_and_documented() -> None:
    files = sorted(DATA.glob("*.snmprec"))
    assert [f.stem for f in files] == sorted(ALL)
    assert sum(f.stat().st_size for f in DATA.iterdir()) < 300_000
    readme = (DATA / "README.md").read_text()
    for name in ALL:
        assert f"`{name}.snmprec`" in readme
        recording = Recording.load(name)
        assert {tag for tag, _ in recording.values.values()} <= STATIC_TYPES
        assert recording.text(SYS_DESCR) and recording.text(SYS_NAME) and recording.get(SYS_UPTIME)
        interfaces = recording.interfaces()
        assert interfaces and all(i["name"] for i in interfaces.values())
        for entry in interfaces.values():  # what "sane" means below, checked on the ground truth itself
            row = entry["row"]
            assert row["oper_status"] in range(1, 8)
            assert row["speed_mbps"] is None or 0 <= row["speed_mbps"] <= 400_000
            for column in (*OCTETS, *IF_COUNTERS):
                assert row[column] is None or 0 <= row[column] < 2 ** (64 if entry["hc"] else 32)
    assert not Recording.load(WINDOWS).column(IFX + (1,)), "the Windows recording is the one without ifXTable"
    cisco = Recording.load(CISCO).interfaces()
    assert {i for i, e in cisco.items() if not e["hc"]} == {5179, 5180, 5181, 14501}


# --- the poller ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [case(JUNIPER), case(CISCO), case(PALOALTO), case(LINUX),
                                  case(WINDOWS)])
async def test_learn_and_poll_succeed(agent: SnmpsimAgent, name: str) -> None:
    tables, raw = await poll(agent, name)
    assert raw.uptime_ticks == Recording.load(name).get(SYS_UPTIME)
    assert raw.rtt_ms > 0


@pytest.mark.parametrize("name", [case(JUNIPER), case(CISCO), case(PALOALTO), case(LINUX),
                                  case(WINDOWS)])
async def test_every_ifTable_row_is_learned_with_its_name(agent: SnmpsimAgent, name: str) -> None:
    tables = await learn(agent, name)
    expected = Recording.load(name).interfaces()
    assert sorted(tables.interfaces) == sorted(expected)
    assert {i: tables.interfaces[i] for i in expected} == {i: (e["name"], e["alias"]) for i, e in expected.items()}


@pytest.mark.parametrize("name", [case(JUNIPER), case(CISCO), case(PALOALTO), case(LINUX),
                                  case(WINDOWS)])
async def test_interface_status_speed_and_counters(agent: SnmpsimAgent, name: str) -> None:
    """Status, speed and every counter as recorded: 64-bit where the interface has it, else 32-bit, else none."""
    _, raw = await poll(agent, name)
    expected = Recording.load(name).interfaces()
    assert sorted(raw.interfaces) == sorted(expected)
    got = {index: {column: _int(row.get(column)) for column in expected[index]["row"]}
           for index, row in raw.interfaces.items()}
    mismatches = {index: (got[index], e["row"]) for index, e in expected.items() if got[index] != e["row"]}
    assert not mismatches, f"(poller, recording) per ifIndex: {mismatches}"
    for index, row in got.items():
        assert row["oper_status"] in range(1, 8), index
        assert row["speed_mbps"] is None or 0 <= row["speed_mbps"] <= 400_000, index


@pytest.mark.parametrize("name", WITH_HOST_RESOURCES)
async def test_host_resources_cpu_and_storage(agent: SnmpsimAgent, name: str) -> None:
    recording = Recording.load(name)
    tables, raw = await poll(agent, name)
    assert raw.processors == recording.processors()
    assert all(0 <= load <= 100 for load in raw.processors)
    expected = recording.storages()
    assert expected and sorted(raw.storages) == sorted(expected)
    for index, entry in expected.items():
        assert tables.storages[index] == entry["descr"]
        assert {k: _int(v) for k, v in raw.storages[index].items()} == {k: entry[k] for k in ("units", "size", "used")}


@pytest.mark.parametrize("name", [case(JUNIPER), case(CISCO), case(PALOALTO), case(LINUX),
                                  case(WINDOWS)])
async def test_converter_samples(agent: SnmpsimAgent, name: str) -> None:
    recording = Recording.load(name)
    tables, raw = await poll(agent, name)
    converter = PollConverter()
    origin = Origin(device=name)
    converter.history(name).tables = tables  # as collectors/service.py keeps them
    now = time.time()
    samples, events = converter.convert(origin, raw, now)
    assert not events
    by_kind: dict[str, list] = {}
    for sample in samples:
        by_kind.setdefault(sample.measurement, []).append(sample)
    assert by_kind["system"][0].fields["uptime_s"] == recording.get(SYS_UPTIME) / 100
    expected = recording.interfaces()
    interfaces = {int(s.tags["if_index"]): s for s in by_kind.get("interface", [])}
    assert sorted(interfaces) == sorted(expected)
    for index, sample in interfaces.items():
        assert sample.tags.get("if_name") == expected[index]["name"]
        assert sample.fields["oper_status"] == expected[index]["row"]["oper_status"]
    processors = recording.processors()
    if processors:
        assert by_kind["host"][0].fields["cpu_pct"] == pytest.approx(sum(processors) / len(processors))
    storages = {index: e for index, e in recording.storages().items() if e["units"] and e["size"]}
    assert len(by_kind.get("storage", [])) == len(storages)
    for sample in by_kind.get("storage", []):
        assert 0 <= sample.fields["used_pct"] <= 100
    # the same answer a minute later (a static recording): no reboot, no port change, no rate invented
    samples, events = converter.convert(origin, raw, now + SECONDS)
    assert not events
    for sample in samples:
        if sample.measurement == "interface":
            assert sample.fields.get("in_bps", 0) == 0 and sample.fields.get("out_bps", 0) == 0


@pytest.mark.parametrize("name", [case(LINUX), case(WINDOWS)])
async def test_rates_between_two_snapshots(agent: SnmpsimAgent, name: str) -> None:
    """Two polls 60 s apart: 64-bit counters (Linux) and a Counter32 that wrapped in between (Windows)."""
    tables, first = await poll(agent, name)
    _, second = await poll(agent, name + LATER, tables)
    converter = PollConverter()
    origin = Origin(device=name)
    converter.history(name).tables = tables
    now = time.time()
    converter.convert(origin, first, now)
    samples, events = converter.convert(origin, second, now + SECONDS)
    assert not events
    index, expected = RATES[name]
    sample = next((s for s in samples if s.measurement == "interface" and s.tags["if_index"] == str(index)), None)
    assert sample is not None, f"no interface sample for ifIndex {index}: {samples}"
    assert {k: sample.fields.get(k) for k in expected} == pytest.approx(expected)


@pytest.mark.parametrize("name", [case(JUNIPER), case(CISCO), case(WINDOWS)])
def test_jukimon_poll_cli(agent: SnmpsimAgent, name: str) -> None:
    """`jukimon poll` as an operator runs it against a real device's answers."""
    recording = Recording.load(name)
    script = Path(sys.executable).parent / "jukimon"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]
    target = f"{agent.address}:{agent.port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*command, "poll", target, "--community", name, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["system"]["name"] == recording.text(SYS_NAME)
    assert result["system"]["descr"] == recording.text(SYS_DESCR)
    assert [i["index"] for i in result["interfaces"]] == sorted(recording.interfaces())
    assert [i["name"] for i in result["interfaces"]] == [e["name"] for e in recording.interfaces().values()]
    text = subprocess.run([*command, "poll", target, "--community", name], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.splitlines()[0].startswith(f"{recording.text(SYS_NAME)}  ({target}")
