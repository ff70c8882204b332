"""The purpose table (利用事務): which 事務 a look-up may be made under, by whom, for which residents.

Every look-up, update or provision names the 事務 (administrative task) it serves.
The 住民基本台帳法 lists the tasks each kind of organisation may use resident
identity information (本人確認情報) for — 別表 for national agencies, 別表第5 and
prefectural ordinances for prefectures (seed 001: Yamaguchi uses 19 of the 37
別表第5 tasks plus 56 ordinance tasks). This table is the simulation's selection;
``entitled`` names organisation tiers (``municipality``, ``prefecture``,
``national``) or single organisations (``agency-01``), and ``scope`` says whose
residents the task may reach:

- ``own``: residents of the organisation's own municipality;
- ``prefecture``: residents of the organisation's prefecture;
- ``national``: any resident.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    OWN = "own"
    PREFECTURE = "prefecture"
    NATIONAL = "national"


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    name: str  # the 事務 as the law names it
    entitled: frozenset[str]  # tiers or organisation ids
    scope: Scope


def _p(code: str, name: str, scope: Scope, *entitled: str) -> Purpose:
    return Purpose(code, name, frozenset(entitled), scope)


PURPOSES: dict[str, Purpose] = {p.code: p for p in (
    _p("M01", "住民票の記載等に関する事務", Scope.OWN, "municipality"),
    _p("M02", "転入通知に関する事務", Scope.NATIONAL, "municipality"),
    _p("M03", "住民票の写しの広域交付に関する事務", Scope.NATIONAL, "municipality"),
    _p("M04", "住民基本台帳カードの交付に関する事務", Scope.OWN, "municipality"),
    _p("M05", "国民健康保険に関する事務", Scope.OWN, "municipality"),
    _p("P01", "旅券発給に関する事務", Scope.PREFECTURE, "prefecture"),
    _p("P02", "職員の恩給支給に関する事務", Scope.PREFECTURE, "prefecture"),
    _p("P03", "建設業の許可に関する事務", Scope.PREFECTURE, "prefecture"),
    _p("N01", "本人確認情報の開示に関する事務", Scope.NATIONAL, "national"),
    _p("A01", "国民年金法による年金である給付の支給に関する事務", Scope.NATIONAL, "agency-01"),
    _p("A02", "地方公務員等共済組合法による年金である給付の支給に関する事務", Scope.NATIONAL, "agency-02"),
    _p("A03", "国家公務員共済組合法による年金である給付の支給に関する事務", Scope.NATIONAL, "agency-03"),
    _p("A04", "戸籍に関する事務", Scope.NATIONAL, "agency-04"),
    _p("A05", "労働者災害補償保険法による保険給付の支給に関する事務", Scope.NATIONAL, "agency-05"),
    _p("A06", "宅地建物取引業の免許に関する事務", Scope.NATIONAL, "agency-06"),
    _p("A07", "放射性同位元素等による放射線障害の防止に関する事務", Scope.NATIONAL, "agency-07"),
    _p("A08", "恩給法による年金である給付の支給に関する事務", Scope.NATIONAL, "agency-08"),
)}


def entitled(purpose: Purpose, organisation: str, tier: str) -> bool:
    return tier in purpose.entitled or organisation in purpose.entitled


def purposes_of(organisation: str, tier: str) -> list[Purpose]:
    """The purposes an organisation may use, in table order (the simulation draws from these)."""
    return [p for p in PURPOSES.values() if entitled(p, organisation, tier)]
