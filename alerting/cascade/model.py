"""The incident report cascade (障害連絡: 初報・第2報・終報) as data: incidents, reports, recipients, settings.

An ``Incident`` (e.g. the annual drill's "virus suspected at the aggregation centre")
gets a numbered series of ``Report`` s: 1 is the first report (初報), 2.. the later
reports (第N報), and the one flagged ``final`` is the final report (終報). Each report
goes to the 47 prefectures (or a chosen set) and, through each prefecture, to its
municipalities; optionally also to the connected agencies. The ``Directory`` lists
those recipient ``Organisation`` s, built from the inventory's sites, with a contact
address each. ``Delivery`` is one report to one organisation: sent, delivered
(SMTP accepted), confirmed (how, when, by whom), reminded.

Who forwards to the municipalities is set per prefecture (``Forwarding``): the
prefecture itself (it presses "forward" in the console) or Jukimon on its behalf,
at the same time as the prefecture's own message.

Identifiers are restricted to ``[A-Za-z0-9_.-]`` so that they fit unchanged in
Message-IDs, link tokens and MQTT topic levels.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from monitor.configerror import ConfigError
from monitor.inventory.model import Inventory, Tier
from monitor.japan_time import JST

_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")
NATIONAL = "national"  # the sender of every report (全国センター)
DEFAULT_ADDRESS_TEMPLATE = "cs-admin@{site}.lg.jp.example"


def jst_text(ts: float) -> str:
    """A time as people in the cascade read it: 2021年12月08日 09:30（JST）."""
    return dt.datetime.fromtimestamp(ts, JST).strftime("%Y年%m月%d日 %H:%M（JST）")


def check_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{kind} id {value!r}: only letters, digits, '_', '.', '-' (at most 100)")
    return value


class Forwarding(StrEnum):
    """Who sends a report on from a prefecture to its municipalities (都道府県→市区町村の転送)."""

    SYSTEM = "system"  # Jukimon forwards on the prefecture's behalf, together with the prefecture's message
    PREFECTURE = "prefecture"  # the prefecture forwards itself (in the console), when it has read the report


class Channel(StrEnum):
    """How a recipient confirmed receipt (受信確認)."""

    LINK = "link"  # the signed one-click link in the mail
    CONSOLE = "console"  # an operator recorded it (e.g. after a phone call)
    MQTT = "mqtt"  # a reply on jukimon/cascade/<org>/ack


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str  # Japanese, one line: appears in every subject
    drill: bool = False  # 訓練: marked in every subject, body and page
    opened: float = 0.0

    def __post_init__(self) -> None:
        check_id("incident", self.id)


@dataclass(frozen=True, slots=True)
class Report:
    incident: str
    sequence: int  # 1 = 初報, 2.. = 第N報; the final one also has its number
    body: str  # Japanese text written by the national centre
    issued_at: float
    final: bool = False  # 終報
    scope: tuple[str, ...] = ()  # prefecture JIS codes ("01".."47"); empty = every prefecture (and agencies)

    def __post_init__(self) -> None:
        if self.sequence < 1:
            raise ValueError(f"report sequence must be 1 or more, got {self.sequence}")

    @property
    def id(self) -> str:
        return f"{self.incident}.{self.sequence}"

    @property
    def label(self) -> str:
        """初報 / 第N報 / 終報, as the national centre names them."""
        if self.final:
            return "終報"
        return "初報" if self.sequence == 1 else f"第{self.sequence}報"


class OrgTier(StrEnum):
    PREFECTURE = "prefecture"
    MUNICIPALITY = "municipality"
    AGENCY = "agency"


@dataclass(frozen=True, slots=True)
class Organisation:
    """A recipient: one prefecture, municipality or agency (its inventory site id is its id)."""

    id: str
    name: str
    tier: OrgTier
    address: str  # contact e-mail address of its 住基ネット担当者
    prefecture: str | None = None  # JIS code (prefectures and municipalities)


@dataclass(slots=True)
class Delivery:
    """One report to one organisation, from planned to confirmed. Mutable: the tracker updates it."""

    report: str
    org: str
    sent_by: str  # NATIONAL, or the prefecture's org id when it is a forward to a municipality
    on_behalf: bool = False  # Jukimon forwarded for the prefecture (Forwarding.SYSTEM)
    planned_at: float = 0.0
    sent_at: float | None = None  # handed to SMTP (first attempt)
    delivered_at: float | None = None  # SMTP accepted
    attempts: int = 0
    error: str = ""  # last delivery error, "" once delivered
    confirmed_at: float | None = None
    confirmed_via: str | None = None  # Channel value
    confirmed_by: str | None = None
    reminders: int = 0
    reminded_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.report, self.org)

    @property
    def message_id(self) -> str:
        """Deterministic, so a resend after a restart carries the same id and the recipient's MTA can drop it."""
        return f"<{self.report}.{self.org}@cascade.jukimon>"

    def reminder_message_id(self, number: int) -> str:
        return f"<{self.report}.{self.org}.r{number}@cascade.jukimon>"


class Directory:
    """The recipients of reports, by id, with each prefecture's municipalities in inventory order."""

    def __init__(self, organisations: Mapping[str, Organisation],
                 forwarding: Mapping[str, Forwarding] | None = None) -> None:
        self.organisations = dict(organisations)
        self.forwarding = dict(forwarding or {})  # prefecture org id → mode (default SYSTEM)
        self._municipalities: dict[str, list[Organisation]] = {}
        self._prefecture_by_code: dict[str, Organisation] = {}
        for org in self.organisations.values():
            if org.tier is OrgTier.MUNICIPALITY:
                self._municipalities.setdefault(org.prefecture or "", []).append(org)
            elif org.tier is OrgTier.PREFECTURE and org.prefecture:
                self._prefecture_by_code[org.prefecture] = org

    @classmethod
    def from_inventory(cls, inventory: Inventory, *, addresses: Mapping[str, str] | None = None,
                       address_template: str = DEFAULT_ADDRESS_TEMPLATE, include_agencies: bool = False,
                       forwarding: Forwarding = Forwarding.SYSTEM,
                       forwarding_overrides: Mapping[str, Forwarding] | None = None) -> Directory:
        """Prefectures and municipalities (and agencies if asked) of the inventory; addresses from the
        mapping where given, else from the template (the simulation's generated addresses)."""
        tiers = {Tier.PREFECTURE: OrgTier.PREFECTURE, Tier.MUNICIPALITY: OrgTier.MUNICIPALITY}
        if include_agencies:
            tiers[Tier.AGENCY] = OrgTier.AGENCY
        addresses = addresses or {}
        orgs = {site.id: Organisation(check_id("organisation", site.id), site.name, tiers[site.tier],
                                      addresses.get(site.id) or address_template.format(site=site.id),
                                      site.prefecture)
                for site in inventory.sites.values() if site.tier in tiers}
        unknown = sorted(set(addresses) - set(orgs))
        if unknown:
            raise ConfigError(f"cascade addresses: {unknown[0]}: not a recipient organisation of the inventory")
        modes = {org.id: forwarding for org in orgs.values() if org.tier is OrgTier.PREFECTURE}
        for key, mode in (forwarding_overrides or {}).items():
            pref = _prefecture_id(orgs, key)
            if pref is None:
                raise ConfigError(f"cascade.forwarding_overrides.{key}: not a prefecture (site id or JIS code)")
            modes[pref] = mode
        return cls(orgs, modes)

    def __len__(self) -> int:
        return len(self.organisations)

    def __getitem__(self, org_id: str) -> Organisation:
        return self.organisations[org_id]

    def __contains__(self, org_id: object) -> bool:
        return org_id in self.organisations

    def prefectures(self, scope: Iterable[str] = ()) -> list[Organisation]:
        """Prefectures in scope (JIS codes; empty = all), by JIS code."""
        wanted = set(scope)
        return sorted((o for code, o in self._prefecture_by_code.items() if not wanted or code in wanted),
                      key=lambda o: o.prefecture or "")

    def municipalities(self, prefecture: Organisation) -> list[Organisation]:
        return self._municipalities.get(prefecture.prefecture or "", [])

    def agencies(self) -> list[Organisation]:
        return [o for o in self.organisations.values() if o.tier is OrgTier.AGENCY]

    def prefecture_of(self, org: Organisation) -> Organisation | None:
        """A municipality's (or prefecture's own) prefecture organisation; None for agencies."""
        return self._prefecture_by_code.get(org.prefecture or "")

    def forwarding_of(self, prefecture: Organisation) -> Forwarding:
        return self.forwarding.get(prefecture.id, Forwarding.SYSTEM)

    def targets(self, report: Report) -> list[Organisation]:
        """Every organisation the report is for: prefectures in scope, their municipalities, and the
        agencies when the report goes to the whole country."""
        found: list[Organisation] = []
        for pref in self.prefectures(report.scope):
            found.append(pref)
            found.extend(self.municipalities(pref))
        if not report.scope:
            found.extend(self.agencies())
        return found


def _prefecture_id(orgs: Mapping[str, Organisation], key: str) -> str | None:
    for org in orgs.values():
        if org.tier is OrgTier.PREFECTURE and key in (org.id, org.prefecture):
            return org.id
    return None


def load_addresses(path: Path) -> dict[str, str]:
    """The contact-address mapping file: YAML ``site-id: address`` lines. Errors name file and key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of site id to address")
    for key, value in raw.items():
        if not isinstance(value, str) or not value.isascii() or value.count("@") != 1 \
                or any(c in value for c in " <>\r\n,"):
            raise ConfigError(f"{path}: {key}: not an e-mail address: {value!r}")
    return {str(k): v for k, v in raw.items()}


@dataclass(frozen=True)
class CascadeSettings:
    """``cascade:`` in the configuration file (see ``monitor.config``)."""

    confirm_within: float = 1800.0  # seconds after sending by which a receipt is expected (then: overdue)
    reminder_interval: float = 900.0  # seconds between reminders to an overdue recipient
    max_reminders: int = 3
    link_ttl: float = 7 * 86400.0  # how long a one-click confirm link stays valid
    base_url: str = "http://127.0.0.1:8080"  # where the console serves /cascade/confirm
    sender_address: str = "cascade@j-lis.lg.jp.example"
    sender_name: str = "地方公共団体情報システム機構 全国センター"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_connections: int = 4  # parallel SMTP sessions; each sends many messages
    smtp_batch: int = 50  # messages per hand-over to a session (one tracker write per batch)
    smtp_timeout: float = 30.0
    address_template: str = DEFAULT_ADDRESS_TEMPLATE
    addresses_file: Path | None = None
    include_agencies: bool = False
    forwarding: str = Forwarding.SYSTEM.value
    forwarding_overrides: dict[str, str] = field(default_factory=dict)  # prefecture id or JIS code → mode
    private_key: Path = Path("state/cascade/ed25519.pem")
    public_key: Path = Path("state/cascade/ed25519.pub.pem")
    link_key: Path = Path("state/cascade/link.key")
    mqtt: bool = True  # also publish reports on jukimon/cascade/<org>/report and take acks

    def check(self, key: str) -> None:
        for name in ("confirm_within", "reminder_interval", "link_ttl", "smtp_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{key}.{name}: must be a number > 0, got {value!r}")
        for name in ("smtp_connections", "smtp_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1")
        if self.max_reminders < 0:
            raise ConfigError(f"{key}.max_reminders: must be 0 or more")
        if "{site}" not in self.address_template:
            raise ConfigError(f"{key}.address_template: must contain {{site}}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url: must start with http:// or https://")
        modes = {m.value for m in Forwarding}
        for name, mode in {"forwarding": self.forwarding, **{f"forwarding_overrides.{k}": v for k, v in
                                                               self.forwarding_overrides.items()}}.items():
            if mode not in modes:
                raise ConfigError(f"{key}.{name}: one of {', '.join(sorted(modes))}, got {mode!r}")

    def directory(self, inventory: Inventory) -> Directory:
        """The recipient directory these settings describe, for this inventory."""
        return Directory.from_inventory(
            inventory, addresses=load_addresses(self.addresses_file) if self.addresses_file else None,
            address_template=self.address_template, include_agencies=self.include_agencies,
            forwarding=Forwarding(self.forwarding),
            forwarding_overrides={k: Forwarding(v) for k, v in self.forwarding_overrides.items()})
