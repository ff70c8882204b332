"""Counts that tell an operator at a glance what an inventory holds and where renewal is due."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from monitor.inventory.model import CryptoProfile, Inventory, PrefectureNetwork, Role, Tier
from monitor.terminal import display_width

__all__ = ["EXPIRY_WARNING_DAYS", "inventory_stats", "is_weak_crypto", "render_stats"]

EXPIRY_WARNING_DAYS = 30


def is_weak_crypto(crypto: CryptoProfile) -> bool:
    """暗号危殆化: SHA-1 signatures, RSA below 2048 bits, EC below 256 bits."""
    if crypto.signature_hash.lower() in ("sha1", "md5"):
        return True
    if crypto.algorithm == "rsa":
        return crypto.key_size < 2048
    return crypto.key_size < 256


def inventory_stats(inv: Inventory, *, as_of: dt.date | None = None) -> dict[str, Any]:
    """A JSON-ready summary; certificate and support dates are judged against ``as_of`` (today)."""
    as_of = as_of or dt.date.today()
    devices = inv.devices.values()
    munis = inv.sites_of_tier(Tier.MUNICIPALITY)
    by_site = inv.devices_by_site
    single_cs = sum(
        1 for s in munis if any(d.role is Role.CS_RECOVERY for d in by_site.get(s.id, ()))
    )
    tls = [d for d in devices if d.role.serves_tls]
    with_cert = [d.lifecycle.cert_not_after for d in tls if d.lifecycle.cert_not_after is not None]
    soon = as_of + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    networks = Counter(s.network.value for s in inv.sites_of_tier(Tier.PREFECTURE) if s.network)
    return {
        "name": inv.name,
        "as_of": as_of.isoformat(),
        "sites": {"total": len(inv.sites), "by_tier": _ordered(Counter(s.tier.value for s in inv.sites.values()), Tier)},
        "devices": {
            "total": len(inv.devices),
            "polled": sum(1 for d in devices if d.role.answers_snmp),
            "by_role": _ordered(Counter(d.role.value for d in devices), Role),
        },
        "links": {"total": len(inv.links), "by_carrier": dict(Counter(l.carrier for l in inv.links.values()).most_common())},
        "prefectures": {"total": networks.total(), "by_network": _ordered(networks, PrefectureNetwork)},
        "municipalities": {
            "total": len(munis),
            "single_line": sum(1 for s in munis if not s.redundant_lines),
            "single_cs": single_cs,
        },
        "lifecycle": {
            "tls_devices": len(tls),
            "weak_crypto": sum(1 for d in tls if d.lifecycle.crypto and is_weak_crypto(d.lifecycle.crypto)),
            "cert_expiring": sum(1 for day in with_cert if as_of <= day <= soon),
            "cert_expired": sum(1 for day in with_cert if day < as_of),
            "hw_support_ended": sum(1 for d in devices if d.lifecycle.hw_support_end < as_of),
            "sw_support_ended": sum(1 for d in devices if d.lifecycle.sw_support_end < as_of),
        },
    }


def _ordered(counts: Counter[str], kind: Any) -> dict[str, int]:
    """Enum order (the order of the domain), skipping zeros."""
    return {m.value: counts[m.value] for m in kind if counts[m.value]}


_LABELS: dict[str, str] = {
    "sites": "拠点 sites",
    "devices": "機器 devices",
    "polled": "監視対象 polled (SNMP)",
    "links": "専用回線 leased lines",
    "prefectures": "都道府県 prefectures",
    "municipalities": "市区町村 municipalities",
    "single_line": "回線非二重化 single line",
    "single_cs": "CS単独構成 single CS + recovery",
    "tls_devices": "TLSサーバ TLS servers",
    "weak_crypto": "危殆化暗号 weak crypto",
    "cert_expiring": f"証明書期限{EXPIRY_WARNING_DAYS}日以内 cert expiring ≤{EXPIRY_WARNING_DAYS}d",
    "cert_expired": "証明書期限切れ cert expired",
    "hw_support_ended": "HWサポート終了 HW support ended",
    "sw_support_ended": "SWサポート終了 SW support ended",
    Tier.NATIONAL.value: "全国センター national",
    Tier.AGGREGATION.value: "集約センター aggregation",
    Tier.AGENCY.value: "国の機関等 agency",
    Tier.PREFECTURE.value: "都道府県 prefecture",
    Tier.MUNICIPALITY.value: "市区町村 municipality",
    PrefectureNetwork.SELF_OPERATED.value: "自営網 self-operated",
    PrefectureNetwork.OUTSOURCED.value: "委託網 outsourced",
    Role.CS.value: "CS cs",
    Role.CS_RECOVERY.value: "復旧用サーバ cs_recovery",
    Role.FW.value: "市区町村FW fw",
    Role.ROUTER.value: "回線ルータ router",
    Role.TERMINAL.value: "業務端末 terminal",
    Role.PREFECTURE_CORE.value: "都道府県コア prefecture_core",
    Role.PREFECTURE_FW.value: "都道府県FW prefecture_fw",
    Role.PREFECTURE_UNIT.value: "処理装置 prefecture_unit",
    Role.AGGREGATION_FW.value: "集約センターFW aggregation_fw",
    Role.NATIONAL_FW.value: "全国ネットワークFW national_fw",
    Role.NATIONAL_SERVER.value: "全国サーバ national_server",
    Role.IDS_SENSOR.value: "IDS ids_sensor",
    Role.NETWORK_MONITOR.value: "ネットワーク監視装置 network_monitor",
    Role.CALL_CENTER.value: "コールセンター call_center",
    Role.CARD_ISSUING.value: "カード発行装置 card_issuing",
    Role.AGENCY_SERVER.value: "情報提供サーバ agency_server",
}



def render_stats(stats: dict[str, Any]) -> str:
    """Aligned text, Japanese label first, for a terminal."""
    rows: list[tuple[int, str, int | str]] = []

    def row(depth: int, key: str, value: int | str) -> None:
        rows.append((depth, _LABELS.get(key, key), value))

    row(0, "sites", stats["sites"]["total"])
    for tier, n in stats["sites"]["by_tier"].items():
        row(1, tier, n)
    row(0, "prefectures", stats["prefectures"]["total"])
    for network, n in stats["prefectures"]["by_network"].items():
        row(1, network, n)
    row(0, "municipalities", stats["municipalities"]["total"])
    row(1, "single_line", stats["municipalities"]["single_line"])
    row(1, "single_cs", stats["municipalities"]["single_cs"])
    row(0, "devices", stats["devices"]["total"])
    row(1, "polled", stats["devices"]["polled"])
    for role, n in stats["devices"]["by_role"].items():
        row(1, role, n)
    row(0, "links", stats["links"]["total"])
    for carrier, n in stats["links"]["by_carrier"].items():
        row(1, carrier, n)
    for key, n in stats["lifecycle"].items():
        row(0, key, n)

    label_width = max(display_width("  " * d + label) for d, label, _ in rows)
    value_width = max(len(f"{v:,}" if isinstance(v, int) else str(v)) for _, _, v in rows)
    out = [f"インベントリ inventory: {stats['name']}  (基準日 as of {stats['as_of']})"]
    for depth, label, value in rows:
        text = "  " * depth + label
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        out.append(f"{text}{' ' * (label_width - display_width(text))}  {shown:>{value_width}}")
    return "\n".join(out) + "\n"
