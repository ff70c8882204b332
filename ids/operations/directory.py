"""What the IDS knows about organisations and terminals, taken from the inventory.

Organisations are inventory sites (municipality, prefecture, national centre,
agency); known terminals are the 業務端末 of a site and, for an agency, its
情報提供サーバ, which makes the agency's provisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.inventory import Inventory, Role

_TERMINAL_ROLES = frozenset({Role.TERMINAL, Role.AGENCY_SERVER})


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    tier: str
    prefecture: str | None


class Directory:
    def __init__(self, inventory: Inventory):
        self.organisations = {s.id: Organisation(s.id, s.tier.value, s.prefecture) for s in inventory.sites.values()}
        self.terminals: dict[str, str] = {
            d.id: d.site for d in inventory.devices.values() if d.role in _TERMINAL_ROLES
        }  # terminal → its organisation

    def prefecture_of(self, organisation: str | None) -> str | None:
        found = self.organisations.get(organisation) if organisation else None
        return found.prefecture if found else None
