"""A smaller network cut from a larger inventory: the centres plus chosen prefectures.

For a lighter demo (``--prefectures 01,47``) and for tests that need the real
shape without 9,000 sockets. The result is a valid inventory on its own.
"""

from __future__ import annotations

from typing import Iterable

from monitor.inventory.model import Inventory, Tier


def subset_by_prefecture(inventory: Inventory, prefectures: Iterable[str],
                         *, max_municipalities: int | None = None) -> Inventory:
    """Keep the national centre, aggregation centre and agencies, the given prefectures
    (JIS codes) and, per prefecture, at most ``max_municipalities`` municipalities."""
    wanted = {code.zfill(2) for code in prefectures}
    sites = {}
    per_prefecture: dict[str, int] = {}
    for site in inventory.sites.values():
        if site.prefecture is not None and site.prefecture not in wanted:
            continue
        if site.tier is Tier.MUNICIPALITY and max_municipalities is not None:
            seen = per_prefecture.get(site.prefecture or "", 0)
            if seen >= max_municipalities:
                continue
            per_prefecture[site.prefecture or ""] = seen + 1
        sites[site.id] = site
    devices = {
        d.id: d for d in inventory.devices.values()
        if d.site in sites and (d.prefecture is None or d.prefecture in wanted)
    }
    links = {l.id: l for l in inventory.links.values() if l.a in devices and l.b in devices}
    return Inventory(sites, devices, links, name=f"{inventory.name} ({','.join(sorted(wanted))})")
