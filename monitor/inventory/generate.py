"""A deterministic, full-scale inventory of 住基ネット for the simulator, the tests and demos.

The real inventory is confidential; this one has the real shape (47 prefectures, 1,741
municipalities, the national centre, the aggregation centre, connected agencies) and a fixed
loopback addressing plan that ``simnet`` and the collectors rely on:

- national centre ``127.1.0.N``, aggregation centre ``127.1.1.N``, agency K ``127.2.K.N``
- prefecture p ``127.(10+p).0.N``, its municipality m ``127.(10+p).m.N``

The same seed and ``as_of`` always give the same inventory.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import random
from dataclasses import dataclass
from importlib import resources

from monitor.inventory.model import (
    CryptoProfile,
    Device,
    Inventory,
    Lifecycle,
    Link,
    PrefectureNetwork,
    Role,
    Site,
    Subsystem,
    Tier,
)

__all__ = ["Prefecture", "default_inventory", "generate_inventory", "load_prefectures"]


@dataclass(frozen=True, slots=True)
class Prefecture:
    """One row of ``monitor/data/prefectures.csv``."""

    code: str  # JIS code "01".."47"
    name_ja: str
    name_en: str
    municipalities: int

    @property
    def number(self) -> int:
        return int(self.code)


@functools.cache
def load_prefectures() -> tuple[Prefecture, ...]:
    """The 47 prefectures with their municipality counts (1,741 in total)."""
    text = resources.files("monitor").joinpath("data", "prefectures.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return tuple(
        Prefecture(r["jis_code"].zfill(2), r["name_ja"], r["name_en"], int(r["municipalities"]))
        for r in rows
    )


# 県庁所在地 (m=1): the largest municipality of each prefecture. Tokyo's is 新宿区 (都庁).
_CAPITALS: dict[str, tuple[str, str]] = {
    "01": ("札幌市", "Sapporo"), "02": ("青森市", "Aomori"), "03": ("盛岡市", "Morioka"),
    "04": ("仙台市", "Sendai"), "05": ("秋田市", "Akita"), "06": ("山形市", "Yamagata"),
    "07": ("福島市", "Fukushima"), "08": ("水戸市", "Mito"), "09": ("宇都宮市", "Utsunomiya"),
    "10": ("前橋市", "Maebashi"), "11": ("さいたま市", "Saitama"), "12": ("千葉市", "Chiba"),
    "13": ("新宿区", "Shinjuku"), "14": ("横浜市", "Yokohama"), "15": ("新潟市", "Niigata"),
    "16": ("富山市", "Toyama"), "17": ("金沢市", "Kanazawa"), "18": ("福井市", "Fukui"),
    "19": ("甲府市", "Kofu"), "20": ("長野市", "Nagano"), "21": ("岐阜市", "Gifu"),
    "22": ("静岡市", "Shizuoka"), "23": ("名古屋市", "Nagoya"), "24": ("津市", "Tsu"),
    "25": ("大津市", "Otsu"), "26": ("京都市", "Kyoto"), "27": ("大阪市", "Osaka"),
    "28": ("神戸市", "Kobe"), "29": ("奈良市", "Nara"), "30": ("和歌山市", "Wakayama"),
    "31": ("鳥取市", "Tottori"), "32": ("松江市", "Matsue"), "33": ("岡山市", "Okayama"),
    "34": ("広島市", "Hiroshima"), "35": ("山口市", "Yamaguchi"), "36": ("徳島市", "Tokushima"),
    "37": ("高松市", "Takamatsu"), "38": ("松山市", "Matsuyama"), "39": ("高知市", "Kochi"),
    "40": ("福岡市", "Fukuoka"), "41": ("佐賀市", "Saga"), "42": ("長崎市", "Nagasaki"),
    "43": ("熊本市", "Kumamoto"), "44": ("大分市", "Oita"), "45": ("宮崎市", "Miyazaki"),
    "46": ("鹿児島市", "Kagoshima"), "47": ("那覇市", "Naha"),
}

# Well-known municipalities as m=2, 3, … (Otaru is muni-01-002: the operators' stock example).
_KNOWN: dict[str, tuple[tuple[str, str], ...]] = {
    "01": (("小樽市", "Otaru"), ("函館市", "Hakodate"), ("旭川市", "Asahikawa"),
           ("釧路市", "Kushiro"), ("帯広市", "Obihiro")),
    "02": (("弘前市", "Hirosaki"), ("八戸市", "Hachinohe")),
    "03": (("花巻市", "Hanamaki"),),
    "04": (("石巻市", "Ishinomaki"),),
    "07": (("郡山市", "Koriyama"), ("いわき市", "Iwaki"), ("会津若松市", "Aizuwakamatsu")),
    "08": (("つくば市", "Tsukuba"), ("日立市", "Hitachi")),
    "09": (("日光市", "Nikko"),),
    "10": (("高崎市", "Takasaki"),),
    "11": (("川越市", "Kawagoe"), ("川口市", "Kawaguchi")),
    "12": (("船橋市", "Funabashi"), ("柏市", "Kashiwa")),
    "13": (("千代田区", "Chiyoda"), ("中央区", "Chuo"), ("港区", "Minato"), ("八王子市", "Hachioji")),
    "14": (("川崎市", "Kawasaki"), ("相模原市", "Sagamihara"), ("鎌倉市", "Kamakura")),
    "15": (("長岡市", "Nagaoka"),),
    "16": (("高岡市", "Takaoka"),),
    "17": (("小松市", "Komatsu"),),
    "20": (("松本市", "Matsumoto"),),
    "21": (("高山市", "Takayama"),),
    "22": (("浜松市", "Hamamatsu"), ("沼津市", "Numazu")),
    "23": (("豊田市", "Toyota"), ("岡崎市", "Okazaki")),
    "24": (("四日市市", "Yokkaichi"), ("伊勢市", "Ise")),
    "25": (("彦根市", "Hikone"),),
    "26": (("宇治市", "Uji"),),
    "27": (("堺市", "Sakai"), ("豊中市", "Toyonaka")),
    "28": (("姫路市", "Himeji"), ("西宮市", "Nishinomiya")),
    "29": (("橿原市", "Kashihara"),),
    "31": (("米子市", "Yonago"),),
    "32": (("出雲市", "Izumo"),),
    "33": (("倉敷市", "Kurashiki"),),
    "34": (("福山市", "Fukuyama"), ("呉市", "Kure")),
    "35": (("下関市", "Shimonoseki"),),
    "36": (("鳴門市", "Naruto"),),
    "37": (("丸亀市", "Marugame"),),
    "38": (("今治市", "Imabari"),),
    "39": (("四万十市", "Shimanto"),),
    "40": (("北九州市", "Kitakyushu"), ("久留米市", "Kurume")),
    "41": (("唐津市", "Karatsu"),),
    "42": (("佐世保市", "Sasebo"),),
    "43": (("八代市", "Yatsushiro"),),
    "44": (("別府市", "Beppu"),),
    "45": (("都城市", "Miyakonojo"),),
    "46": (("鹿屋市", "Kanoya"),),
    "47": (("沖縄市", "Okinawa"), ("宜野湾市", "Ginowan")),
}

# 国の機関等: agency K is site agency-KK at 127.2.K.0/24.
_AGENCIES: tuple[tuple[str, str], ...] = (
    ("日本年金機構", "Japan Pension Service"),
    ("地方公務員共済組合連合会", "Pension Fund Association for Local Government Officials"),
    ("国家公務員共済組合連合会", "Federation of National Public Service Personnel Mutual Aid Associations"),
    ("法務省", "Ministry of Justice"),
    ("厚生労働省", "Ministry of Health, Labour and Welfare"),
    ("国土交通省", "Ministry of Land, Infrastructure, Transport and Tourism"),
    ("文部科学省", "Ministry of Education, Culture, Sports, Science and Technology"),
    ("総務省", "Ministry of Internal Affairs and Communications"),
)

_SUBSYSTEM_JA = {
    Subsystem.DATABASE: "データベース",
    Subsystem.PROVISION: "情報提供",
    Subsystem.BUSINESS: "業務",
    Subsystem.OPERATIONS: "運用管理",
    Subsystem.SEARCH: "検索",
}

# (older generation, current generation) model names per role; vendor-neutral on purpose.
_MODELS: dict[Role, tuple[str, str]] = {
    Role.CS: ("CS-SV3100", "CS-SV4200"),
    Role.CS_RECOVERY: ("CS-RS3100", "CS-RS4200"),
    Role.FW: ("SG-FW520", "SG-FW860"),
    Role.ROUTER: ("LR-1210", "LR-2400"),
    Role.TERMINAL: ("WT-PC7", "WT-PC9"),
    Role.PREFECTURE_CORE: ("CR-8300", "CR-9500"),
    Role.PREFECTURE_FW: ("SG-FW3200", "SG-FW5400"),
    Role.PREFECTURE_UNIT: ("PU-BL600", "PU-BL800"),
    Role.AGGREGATION_FW: ("SG-FW7200", "SG-FW9600"),
    Role.NATIONAL_FW: ("SG-FW7200", "SG-FW9600"),
    Role.NATIONAL_SERVER: ("NS-MX7000", "NS-MX9000"),
    Role.IDS_SENSOR: ("ID-SN400", "ID-SN600"),
    Role.NETWORK_MONITOR: ("NM-OP300", "NM-OP500"),
    Role.CALL_CENTER: ("CC-SV200", "CC-SV300"),
    Role.CARD_ISSUING: ("CI-PR100", "CI-PR200"),
    Role.AGENCY_SERVER: ("AG-SV500", "AG-SV700"),
}

# NTT東日本 serves Hokkaido, Tohoku, Kanto, Niigata, Yamanashi and Nagano; NTT西日本 the rest.
_EAST = frozenset({f"{n:02d}" for n in (*range(1, 16), 19, 20)})
_CARRIER_PREFIX = {"NTT東日本": "NTTE", "NTT西日本": "NTTW", "KDDI": "KDDI", "ソフトバンク": "SBNK"}

RENEWAL_YEARS = 6  # 六年周期の機器更新


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Builder:
    """Accumulates sites, devices and links; owns the one random stream."""

    def __init__(self, seed: int, as_of: dt.date) -> None:
        self.rng = random.Random(seed)
        self.as_of = as_of
        self.sites: dict[str, Site] = {}
        self.devices: dict[str, Device] = {}
        self.links: dict[str, Link] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def site_installed(self) -> dt.date:
        """Equipment of one site is renewed together, some time in the last seven years."""
        return self.as_of - dt.timedelta(days=self.rng.randint(0, 7 * 365))

    def lifecycle(self, role: Role, site_installed: dt.date) -> Lifecycle:
        rng = self.rng
        installed = site_installed
        if rng.random() < 0.1:  # replaced individually after a fault
            installed += dt.timedelta(days=rng.randint(0, (self.as_of - site_installed).days))
        older, newer = _MODELS[role]
        model = older if (self.as_of - installed).days > 3 * 365 + 180 else newer
        hw_end = _add_years(installed, RENEWAL_YEARS)
        sw_end = hw_end + dt.timedelta(days=rng.randint(-180, 365))
        if not role.serves_tls:
            return Lifecycle(model, installed, hw_end, sw_end)
        return Lifecycle(model, installed, hw_end, sw_end, self.crypto(), self.cert_not_after())

    def crypto(self) -> CryptoProfile:
        draw = self.rng.random()
        if draw < 0.03:
            return CryptoProfile("rsa", 1024, "sha1")  # 暗号危殆化: must be renewed
        if draw < 0.13:
            return CryptoProfile("ecdsa", 256, "sha256")
        return CryptoProfile("rsa", 2048, "sha256")

    def cert_not_after(self) -> dt.date:
        draw = self.rng.random()
        if draw < 0.01:
            days = -self.rng.randint(1, 90)  # already expired
        elif draw < 0.04:
            days = self.rng.randint(0, 30)  # expiring within 30 days
        else:
            days = self.rng.randint(183, 913)  # 6–30 months
        return self.as_of + dt.timedelta(days=days)

    # -- entries ---------------------------------------------------------------------------

    def site(self, site: Site) -> None:
        self.sites[site.id] = site

    def device(
        self,
        id: str,
        site: str,
        role: Role,
        name: str,
        address: str | None,
        parents: tuple[str, ...],
        installed: dt.date,
        **extra: object,
    ) -> None:
        lifecycle = self.lifecycle(role, installed)
        self.devices[id] = Device(id, site, role, name, address, parents, lifecycle, **extra)  # type: ignore[arg-type]

    def line(self, router: str, upstream: str, circuit_id: str, carrier: str, mbps: int) -> None:
        link_id = f"line-{router}"
        self.links[link_id] = Link(link_id, circuit_id, carrier, mbps, router, upstream)

    def carrier(self, pref_code: str | None, *, alternate: bool = False) -> str:
        """Regional NTT mostly; a share (and most second lines) via KDDI or SoftBank."""
        draw = self.rng.random()
        if draw < (0.5 if alternate else 0.12):
            return "KDDI" if self.rng.random() < 0.7 else "ソフトバンク"
        if pref_code is None or pref_code in _EAST:
            return "NTT東日本"
        return "NTT西日本"


def _pick(rng: random.Random, candidates: list[str], share: float, of: int) -> set[str]:
    """Exactly ``round(share * of)`` of the candidates (as many as there are at most)."""
    k = max(0, min(len(candidates), round(share * of)))
    return set(rng.sample(candidates, k))


def generate_inventory(
    *,
    seed: int = 1,
    as_of: dt.date | None = None,
    single_line_share: float = 0.1,
    single_cs_share: float = 0.3,
    outsourced_share: float = 0.3,
) -> Inventory:
    """Build the full national inventory (about 8,800 polled devices plus terminals).

    The shares are of municipalities (single leased line, single CS with a recovery server)
    and of prefectures (outsourced network); capitals and well-known cities stay fully
    redundant so that stock scenarios (e.g. cutting both lines of Otaru) always apply.
    """
    as_of = as_of or dt.date.today()
    b = _Builder(seed, as_of)
    prefectures = load_prefectures()

    _national(b)
    _aggregation(b, prefectures)
    _agencies(b)

    muni_ids = [f"muni-{p.code}-{m:03d}" for p in prefectures for m in range(1, p.municipalities + 1)]
    ordinary = [mid for mid in muni_ids if int(mid[-3:]) > 1 + len(_KNOWN.get(mid[5:7], ()))]
    single_line = _pick(b.rng, ordinary, single_line_share, len(muni_ids))
    single_cs = _pick(b.rng, ordinary, single_cs_share, len(muni_ids))
    outsourced = _pick(b.rng, [p.code for p in prefectures], outsourced_share, len(prefectures))

    for pref in prefectures:
        _prefecture(b, pref, pref.code in outsourced)
        for m in range(1, pref.municipalities + 1):
            mid = f"muni-{pref.code}-{m:03d}"
            _municipality(b, pref, m, redundant=mid not in single_line, clustered=mid not in single_cs)

    return Inventory(b.sites, b.devices, b.links, name=f"jukimon-seed{seed}-{as_of.isoformat()}")


@functools.cache
def default_inventory() -> Inventory:
    """``generate_inventory(seed=1)``, built once per process and shared (also past midnight)."""
    return generate_inventory(seed=1)


def _national(b: _Builder) -> None:
    b.site(Site("national", Tier.NATIONAL, "全国センター", "National Centre (J-LIS)", None))
    when = b.site_installed()
    b.device("national-fw", "national", Role.NATIONAL_FW, "全国ネットワークFW", "127.1.0.1", (), when)
    up = ("national-fw",)
    singles = (
        (2, "national-nms", Role.NETWORK_MONITOR, "ネットワーク監視装置"),
        (3, "national-ids", Role.IDS_SENSOR, "IDS (侵入検知装置)"),
        (4, "national-callcenter", Role.CALL_CENTER, "コールセンターサーバ"),
        (5, "national-card", Role.CARD_ISSUING, "カード発行装置"),
    )
    for n, did, role, name in singles:
        b.device(did, "national", role, name, f"127.1.0.{n}", up, when)
    n = 10
    for subsystem in Subsystem:
        for node in (1, 2):
            b.device(
                f"national-{subsystem.value}-{node}", "national", Role.NATIONAL_SERVER,
                f"全国サーバ {_SUBSYSTEM_JA[subsystem]}サブシステム #{node}", f"127.1.0.{n}", up, when,
                subsystem=subsystem, cluster=f"national-{subsystem.value}",
            )
            n += 1


def _aggregation(b: _Builder, prefectures: tuple[Prefecture, ...]) -> None:
    b.site(Site("aggregation", Tier.AGGREGATION, "都道府県サーバ集約センター",
                "Prefecture Server Aggregation Centre", "national"))
    when = b.site_installed()
    b.device("aggregation-fw", "aggregation", Role.AGGREGATION_FW, "集約センターFW", "127.1.1.1",
             ("national-fw",), when)
    for pref in prefectures:
        b.device(f"aggregation-pu-{pref.code}", "aggregation", Role.PREFECTURE_UNIT,
                 f"{pref.name_ja}サーバ処理装置", f"127.1.1.{10 + pref.number}", ("aggregation-fw",),
                 when, prefecture=pref.code)


def _agencies(b: _Builder) -> None:
    for k, (name_ja, name_en) in enumerate(_AGENCIES, start=1):
        sid = f"agency-{k:02d}"
        b.site(Site(sid, Tier.AGENCY, name_ja, name_en, "national"))
        when = b.site_installed()
        router = f"{sid}-rt1"
        b.device(router, sid, Role.ROUTER, f"{name_ja} 回線ルータ", f"127.2.{k}.1", ("national-fw",), when)
        carrier = b.carrier(None)
        b.line(router, "national-fw", f"{_CARRIER_PREFIX[carrier]}-AG-{k:03d}-A", carrier,
               1000 if k == 1 else 100)  # 年金機構: bulk provision of ~38M records a month
        b.device(f"{sid}-server", sid, Role.AGENCY_SERVER, f"{name_ja} 情報提供サーバ", f"127.2.{k}.2",
                 (router,), when)


def _prefecture(b: _Builder, pref: Prefecture, outsourced: bool) -> None:
    sid = f"pref-{pref.code}"
    network = PrefectureNetwork.OUTSOURCED if outsourced else PrefectureNetwork.SELF_OPERATED
    b.site(Site(sid, Tier.PREFECTURE, pref.name_ja, pref.name_en, "aggregation",
                prefecture=pref.code, network=network))
    when = b.site_installed()
    net = f"127.{10 + pref.number}.0"
    routers = (f"{sid}-rt1", f"{sid}-rt2")
    for i, router in enumerate(routers, start=1):
        b.device(router, sid, Role.ROUTER, f"{pref.name_ja} 回線ルータ{i}", f"{net}.{1 + i}",
                 ("aggregation-fw",), when, prefecture=pref.code)
        carrier = b.carrier(pref.code, alternate=i == 2)
        b.line(router, "aggregation-fw", f"{_CARRIER_PREFIX[carrier]}-{pref.code}-000-{'AB'[i - 1]}",
               carrier, 1000)
    b.device(f"{sid}-fw", sid, Role.PREFECTURE_FW, f"{pref.name_ja} FW", f"{net}.1", routers, when,
             prefecture=pref.code)
    b.device(f"{sid}-core", sid, Role.PREFECTURE_CORE, f"{pref.name_ja} コアルータ", f"{net}.4",
             (f"{sid}-fw",), when, prefecture=pref.code)


def _municipality_name(b: _Builder, pref: Prefecture, m: int) -> tuple[str, str, str]:
    """(name_ja, name_en, kind) — kind is 市, 町, 村 or 区; drawn only for generated names."""
    if m == 1:
        ja, en = _CAPITALS[pref.code]
        return ja, en, ja[-1]
    known = _KNOWN.get(pref.code, ())
    if m - 2 < len(known):
        ja, en = known[m - 2]
        return ja, en, ja[-1]
    draw = b.rng.random()
    kind, kind_en = ("市", "City") if draw < 0.45 else ("町", "Town") if draw < 0.85 else ("村", "Village")
    return f"{pref.name_ja}第{m:03d}{kind}", f"{pref.name_en} {kind_en} {m:03d}", kind


def _terminal_count(b: _Builder, m: int, kind: str) -> int:
    if m == 1:
        return b.rng.randint(24, 40)
    if kind in "市区":
        return b.rng.randint(3, 12)
    if kind == "町":
        return b.rng.randint(2, 4)
    return 2


def _municipality(b: _Builder, pref: Prefecture, m: int, *, redundant: bool, clustered: bool) -> None:
    sid = f"muni-{pref.code}-{m:03d}"
    name_ja, name_en, kind = _municipality_name(b, pref, m)
    b.site(Site(sid, Tier.MUNICIPALITY, name_ja, name_en, f"pref-{pref.code}", prefecture=pref.code,
                redundant_lines=redundant))
    when = b.site_installed()
    net = f"127.{10 + pref.number}.{m}"
    pc = pref.code
    core = f"pref-{pc}-core"
    mbps = 100 if kind in "市区" else 10
    routers = (f"{sid}-rt1", f"{sid}-rt2") if redundant else (f"{sid}-rt1",)
    for i, router in enumerate(routers, start=1):
        b.device(router, sid, Role.ROUTER, f"{name_ja} 回線ルータ{i}", f"{net}.{1 + i}", (core,), when,
                 prefecture=pc)
        carrier = b.carrier(pc, alternate=i == 2)
        b.line(router, core, f"{_CARRIER_PREFIX[carrier]}-{pc}-{m:03d}-{'AB'[i - 1]}", carrier, mbps)
    fw = f"{sid}-fw"
    b.device(fw, sid, Role.FW, f"{name_ja} FW", f"{net}.1", routers, when, prefecture=pc)
    if clustered:
        for i in (1, 2):
            b.device(f"{sid}-cs{i}", sid, Role.CS, f"{name_ja} CS{i}", f"{net}.{3 + i}", (fw,), when,
                     prefecture=pc, cluster=f"{sid}-cs")
    else:
        b.device(f"{sid}-cs1", sid, Role.CS, f"{name_ja} CS", f"{net}.4", (fw,), when, prefecture=pc)
        b.device(f"{sid}-csr", sid, Role.CS_RECOVERY, f"{name_ja} 復旧用サーバ", f"{net}.5", (fw,), when,
                 prefecture=pc)
    # 静脈認証: every terminal bought since the switch has a reader; some older ones do not yet.
    old_site = (b.as_of - when).days > 5 * 365
    for t in range(1, _terminal_count(b, m, kind) + 1):
        vein = b.rng.random() >= (0.2 if old_site else 0.01)
        b.device(f"{sid}-term{t:02d}", sid, Role.TERMINAL, f"{name_ja} 業務端末{t:02d}", None, (fw,), when,
                 prefecture=pc, vein_reader=vein)
