"""Semantic checks of an inventory, usable on one built in memory as well as on a loaded file.

Everything downstream (root-cause analysis, the simulator, the poller) assumes these hold: ids
resolve, addresses are unique loopback addresses, parent edges form no cycles, every leased line
runs along a parent edge. Checking once at load lets those packages stay simple.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

from monitor.inventory.model import Inventory, InventoryProblem, Tier

__all__ = ["Finding", "findings", "validate"]

T = TypeVar("T")
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_JIS = re.compile(r"(0[1-9]|[1-3][0-9]|4[0-7])")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with the kind of entry it is about, so a loader can locate it."""

    kind: str  # "site" | "device" | "link"
    entry: str
    message: str
    missing: str | None = None  # for unknown references: the id that does not exist

    def problem(self, line: int | None = None) -> InventoryProblem:
        return InventoryProblem(self.message, self.entry, line)


def validate(inv: Inventory) -> list[InventoryProblem]:
    """Every semantic problem of ``inv``; an empty list means it is consistent."""
    return [f.problem() for f in findings(inv)]


def findings(inv: Inventory) -> list[Finding]:
    """Like :func:`validate` but keeping the entry kind and the missing id of bad references."""
    out: list[Finding] = []
    out += _check_sites(inv)
    out += _cycles("site", inv.sites, lambda s: [s.parent] if s.parent in inv.sites and s.parent else [], "parent site")
    out += _check_devices(inv)
    out += _cycles("device", inv.devices, lambda d: [p for p in d.parents if p in inv.devices], "parent")
    out += _check_links(inv)
    return out


def _check_sites(inv: Inventory) -> Iterator[Finding]:
    for key, site in inv.sites.items():
        if key != site.id:
            yield Finding("site", key, f"stored under key {key!r} but its id is {site.id!r}")
        if site.parent is None:
            if site.tier is not Tier.NATIONAL:
                yield Finding("site", site.id, "has no parent site; only the national centre may have none")
        elif site.parent not in inv.sites:
            yield Finding("site", site.id, f"unknown parent site {site.parent!r}", site.parent)
        if site.prefecture is not None and not _JIS.fullmatch(site.prefecture):
            yield Finding("site", site.id, f"prefecture {site.prefecture!r} is not a JIS code 01–47")


def _check_devices(inv: Inventory) -> Iterator[Finding]:
    owner_of_address: dict[str, str] = {}
    for key, device in inv.devices.items():
        did = device.id
        if key != did:
            yield Finding("device", key, f"stored under key {key!r} but its id is {did!r}")
        if device.site not in inv.sites:
            yield Finding("device", did, f"unknown site {device.site!r}", device.site)
        seen: set[str] = set()
        for parent in device.parents:
            if parent in seen:
                yield Finding("device", did, f"parent {parent!r} listed twice")
            elif parent not in inv.devices:
                yield Finding("device", did, f"unknown parent {parent!r}", parent)
            seen.add(parent)
        if device.prefecture is not None and not _JIS.fullmatch(device.prefecture):
            yield Finding("device", did, f"prefecture {device.prefecture!r} is not a JIS code 01–47")
        life = device.lifecycle
        if life.hw_support_end < life.installed:
            yield Finding("device", did, "hw_support_end is before installed")
        if device.address is None:
            if device.role.answers_snmp:
                yield Finding("device", did, f"role {device.role.value} is polled but has no address")
            continue
        problem = _address_problem(device.address)
        if problem:
            yield Finding("device", did, problem)
            continue
        first = owner_of_address.setdefault(device.address, did)
        if first != did:
            yield Finding("device", did, f"duplicate address {device.address} (also {first!r})")


_PLAIN_LOOPBACK = re.compile(r"127(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")


def _address_problem(address: str) -> str | None:
    if _PLAIN_LOOPBACK.fullmatch(address):  # the common case, without building an address object
        return None
    try:
        parsed = ipaddress.IPv4Address(address)
    except ValueError:
        return f"address {address!r} is not an IPv4 address"
    if parsed not in _LOOPBACK:
        return f"address {address} is outside 127.0.0.0/8 (the simulated network lives on loopback)"
    return None


def _check_links(inv: Inventory) -> Iterator[Finding]:
    link_of_edge: dict[tuple[str, str], str] = {}
    for key, link in inv.links.items():
        lid = link.id
        if key != lid:
            yield Finding("link", key, f"stored under key {key!r} but its id is {lid!r}")
        if link.bandwidth_mbps <= 0:
            yield Finding("link", lid, f"bandwidth_mbps must be positive, not {link.bandwidth_mbps}")
        ends_known = True
        for end, device_id in (("a", link.a), ("b", link.b)):
            if device_id not in inv.devices:
                ends_known = False
                yield Finding("link", lid, f"unknown device {device_id!r} at end {end}", device_id)
        if not ends_known:
            continue
        if link.b not in inv.devices[link.a].parents:
            hint = " (ends reversed? a is the downstream child)" if link.a in inv.devices[link.b].parents else ""
            yield Finding("link", lid, f"{link.b!r} is not a parent of {link.a!r}: a line must follow a parent edge{hint}")
            continue
        other = link_of_edge.setdefault((link.a, link.b), lid)
        if other != lid:
            yield Finding("link", lid, f"second line on edge {link.a} → {link.b} (also {other!r})")


def _cycles(
    kind: str,
    entries: Mapping[str, T],
    parents_of: Callable[[T], Iterable[str]],
    what: str,
) -> list[Finding]:
    """Each cycle found by an iterative depth-first search (no recursion limit at 20k nodes)."""
    order = {key: i for i, key in enumerate(entries)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    out: list[Finding] = []
    for root in entries:
        if root in state:
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(parents_of(entries[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                cycle = cycle[start:] + cycle[:start]
                shown = " → ".join([*cycle, cycle[0]])
                out.append(Finding(kind, cycle[0], f"{what} cycle: {shown}"))
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(parents_of(entries[nxt])))
    return out
