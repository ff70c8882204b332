"""Who can call the call centre: the municipalities and prefectures of the inventory, found by name or code.

A caller says "小樽市です", "北海道の小樽", "Otaru" or gives a code: the site id
(``muni-01-002``, ``pref-01``), its short form (``01-002``) or a prefecture's JIS
code (``01``). Every word typed must appear in one of those (NFKC, lower case,
so full-width digits and ``ＯＴＡＲＵ`` work). Exact names and codes come first,
then names starting with the words, then the rest; prefectures before their
municipalities on a tie. There are no kana readings in the inventory: "おたる"
finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.tickets.terms import normalise
from dashboards.tickets.workflow import CALLER_TIERS
from monitor.inventory.model import Inventory, Tier

MAX_RESULTS = 20


@dataclass(frozen=True, slots=True)
class Caller:
    site: str  # inventory site id
    name: str
    name_en: str
    tier: Tier
    prefecture: str  # JIS code
    prefecture_name: str

    @property
    def code(self) -> str:
        """The short code people read out: ``01-002`` for a municipality, ``01`` for a prefecture."""
        return self.site.split("-", 1)[1]

    @property
    def label(self) -> str:
        """``北海道 小樽市`` (a prefecture is just its name)."""
        return self.name if self.tier is Tier.PREFECTURE else f"{self.prefecture_name} {self.name}"

    def to_json(self) -> dict[str, str]:
        return {"site": self.site, "code": self.code, "name": self.name, "name_en": self.name_en,
                "tier": self.tier.value, "prefecture": self.prefecture, "label": self.label}


class CallerDirectory:
    """The 1,741 municipalities and 47 prefectures, with a search key each (built once)."""

    def __init__(self, inventory: Inventory) -> None:
        prefectures = {s.prefecture: s for s in inventory.sites_of_tier(Tier.PREFECTURE) if s.prefecture}
        self.callers: dict[str, Caller] = {}
        self._keys: dict[str, tuple[str, ...]] = {}  # site → (name, codes and names ...) normalised
        for site in sorted(inventory.sites.values(), key=lambda s: s.id):
            if site.tier not in CALLER_TIERS or not site.prefecture:
                continue
            prefecture = prefectures.get(site.prefecture)
            caller = Caller(site.id, site.name, site.name_en, site.tier, site.prefecture,
                            prefecture.name if prefecture else "")
            self.callers[site.id] = caller
            self._keys[site.id] = tuple(normalise(k) for k in (caller.name, caller.site, caller.code, caller.name_en,
                                                               caller.prefecture_name, prefecture.name_en
                                                               if prefecture else ""))

    def get(self, site: str) -> Caller | None:
        return self.callers.get(site)

    def find(self, query: str, limit: int = MAX_RESULTS) -> list[Caller]:
        words = normalise(query).split()
        if not words:
            return []
        ranked = []
        for site, keys in self._keys.items():
            if all(any(word in key for key in keys) for word in words):
                ranked.append((self._rank(words, keys), self.callers[site].tier is not Tier.PREFECTURE, site))
        ranked.sort()
        return [self.callers[site] for _, _, site in ranked[:limit]]

    def resolve(self, query: str) -> Caller | None:
        """The one caller a typed text means: a site id, an exact name or code, or the only match."""
        exact = self.callers.get(query.strip())
        if exact is not None:
            return exact
        found = self.find(query, limit=2)
        if len(found) == 1:
            return found[0]
        if found and self._rank(normalise(query).split(), self._keys[found[0].site]) == 0:
            return found[0]
        return None

    @staticmethod
    def _rank(words: list[str], keys: tuple[str, ...]) -> int:
        """0: the text is the name, a code or prefecture + name; 1: the name starts with the last word; 2: other."""
        name, site, code, name_en = keys[0], keys[1], keys[2], keys[3]
        whole = " ".join(words)
        if whole in (name, site, code, name_en) or (len(words) == 2 and words[1] in (name, name_en)
                                                     and words[0] in keys[4:]):
            return 0
        return 1 if name.startswith(words[-1]) or name_en.startswith(words[-1]) else 2
