"""Jukimon's configuration: typed, with embedded defaults, validated once at load.

A YAML file overrides any part of the defaults; every error names the file and
the dotted key (``collectors.intervals.router: must be a number > 0``). Secrets
may be given as ``env:NAME`` so that they stay out of the file.

    collectors:
      concurrency: 256
      timeout: 2.0
      retries: 1
      intervals: {router: 10, fw: 10, cs: 10}      # seconds, per role
      device_intervals: {muni-01-001-cs1: 5}        # per device
      tls_interval: 300
      snmp: {version: "3", user: jukimon, auth_protocol: SHA, auth_key: env:JUKIMON_SNMP_AUTH, ...}
    outputs:
      mqtt: {host: 127.0.0.1, port: 1883}          # null disables
      mqtt: {host: mqtt.noc.example, port: 8883, tls: {ca: …/ca.crt, cert: …/monitor.crt, key: …/monitor.key}}
      influx: {url: http://127.0.0.1:8428, bucket: jukimon, org: jukimon, token: env:INFLUX_TOKEN}
      spool_dir: state/spool
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from alerting.cascade.model import CascadeSettings
from alerting.notify.settings import NotifySettings
from monitor.configerror import ConfigError
from monitor.inventory.model import Role
from monitor.lifecycle import LifecycleSettings
from monitor.mqtt_tls import MqttTls
from monitor.schedule.window import WindowSettings
from monitor.state.settings import MonitorSettings
from monitor.yaml_nodes import SAFE_LOADER


@dataclass(frozen=True)
class SnmpSettings:
    version: str = "3"  # "2c" or "3"
    community: str = "public"
    user: str = "jukimon"
    auth_protocol: str = "SHA"
    auth_key: str = "jukimon-auth-key"  # the simulation's own; production sets env:NAME
    priv_protocol: str = "AES"
    priv_key: str = "jukimon-priv-key"
    port: int = 161

    def check(self, key: str) -> None:
        if self.version not in ("2c", "3"):
            raise ConfigError(f"{key}.version: must be \"2c\" or \"3\"")
        if self.version == "3" and (len(self.auth_key) < 8 or len(self.priv_key) < 8):
            raise ConfigError(f"{key}: SNMPv3 keys must be at least 8 characters")
        if self.auth_protocol not in ("SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"):
            raise ConfigError(f"{key}.auth_protocol: one of SHA, SHA-224, SHA-256, SHA-384, SHA-512")
        if self.priv_protocol != "AES":
            raise ConfigError(f"{key}.priv_protocol: only AES (AES-128-CFB) is supported")


DEFAULT_INTERVALS = {
    **{role.value: 30.0 for role in Role if role.serves_tls},
    **{role: 10.0 for role in ("router", "fw", "prefecture_core", "prefecture_fw", "aggregation_fw", "national_fw")},
}


@dataclass(frozen=True)
class ShardSettings:
    """Sharded collector processes (``jukimon collector run``): membership over MQTT, see collectors/shard/.

    Defaults fit the 10 s router/firewall cadence: a collector whose process dies is announced by the
    broker at once (its Will), one whose host or link dies after 1.5 × keepalive (6 s), a hung one
    expires after expire_after × heartbeat (6 s), so its devices are polled by the others within 2 intervals.
    """

    heartbeat: float = 2.0  # seconds between a collector's retained "alive" messages
    keepalive: int = 4  # MQTT keepalive, whole seconds: the broker publishes the Will after 1.5 ×
    expire_after: float = 3.0  # heartbeats missed before a member still connected counts as gone
    weight: float = 1.0  # this collector's capacity relative to the others

    def check(self, key: str) -> None:
        for name in ("heartbeat", "weight"):
            _positive(f"{key}.{name}", getattr(self, name))
        if self.keepalive < 1:
            raise ConfigError(f"{key}.keepalive: whole seconds, at least 1")
        if self.expire_after < 2:
            raise ConfigError(f"{key}.expire_after: at least 2 heartbeats")


@dataclass(frozen=True)
class CollectorSettings:
    concurrency: int = 256
    timeout: float = 2.0
    retries: int = 1
    # A device whose last poll failed is asked again soon, with one quick question (sysUpTime, no retry),
    # so the monitor can confirm a fault within a couple of seconds of the first failed poll.
    recheck_interval: float = 0.5
    recheck_timeout: float = 1.0
    # role → seconds. Lines (routers) and firewalls every 10 s, as the NOC needs to confirm a cut within
    # seconds; servers every 30 s (their faults also show on the firewall and lines in front of them).
    intervals: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    device_intervals: dict[str, float] = field(default_factory=dict)  # device id → seconds
    default_interval: float = 10.0
    tls_interval: float = 300.0
    tls_port: int = 443
    icmp: bool = False  # ICMP echo says nothing in the loopback simulation; on for real networks
    icmp_interval: float = 10.0
    # The local address polls leave from. null: the inventory's network monitor (監視装置), so the traffic
    # IDS sees polling where the communication matrix expects it; "": the kernel's choice.
    source_address: str | None = None
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    shard: ShardSettings = field(default_factory=ShardSettings)

    def interval_for(self, device_id: str, role: Role) -> float:
        return self.device_intervals.get(device_id, self.intervals.get(role.value, self.default_interval))

    def check(self, key: str) -> None:
        roles = {r.value for r in Role}
        for name, seconds in self.intervals.items():
            if name not in roles:
                raise ConfigError(f"{key}.intervals.{name}: unknown role (one of {', '.join(sorted(roles))})")
            _positive(f"{key}.intervals.{name}", seconds)
        for name, seconds in self.device_intervals.items():
            _positive(f"{key}.device_intervals.{name}", seconds)
        for name in ("timeout", "default_interval", "tls_interval", "icmp_interval", "recheck_interval",
                     "recheck_timeout"):
            _positive(f"{key}.{name}", getattr(self, name))
        if self.concurrency < 1:
            raise ConfigError(f"{key}.concurrency: must be at least 1")
        if self.source_address:
            try:
                ipaddress.IPv4Address(self.source_address)
            except ValueError:
                raise ConfigError(f"{key}.source_address: not an IPv4 address") from None
        self.snmp.check(f"{key}.snmp")
        self.shard.check(f"{key}.shard")


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "jukimon"
    tls: MqttTls | None = None  # {ca, cert, key}: TLS with this component's client certificate (jukimon pki)

    def check(self, key: str) -> None:
        if self.tls is not None:
            self.tls.check(f"{key}.tls")


@dataclass(frozen=True)
class InfluxSettings:
    url: str = "http://127.0.0.1:8428"
    org: str = "jukimon"
    bucket: str = "jukimon"
    token: str = ""


@dataclass(frozen=True)
class OutputSettings:
    mqtt: MqttSettings | None = None
    influx: InfluxSettings | None = None
    spool_dir: Path = Path("state/spool")

    def check(self, key: str) -> None:
        if self.mqtt is not None:
            self.mqtt.check(f"{key}.mqtt")


STORE_URLS = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


@dataclass(frozen=True)
class StoreSettings:
    """Where the monitor keeps state, conditions, maintenance and history across restarts."""

    url: str = "sqlite+aiosqlite:///state/jukimon.db"  # or postgresql+asyncpg://user:env-resolved-pw@host/db
    transitions_keep_days: float = 90.0

    def check(self, key: str) -> None:
        if not self.url.startswith(STORE_URLS):
            raise ConfigError(f"{key}.url: must start with {' or '.join(STORE_URLS)}")
        _positive(f"{key}.transitions_keep_days", self.transitions_keep_days)


@dataclass(frozen=True)
class AlertingSettings:
    routing_file: Path | None = None  # routing tree and receivers (YAML); None: the built-in tree

    def check(self, key: str) -> None:
        if self.routing_file is not None and not self.routing_file.is_file():
            raise ConfigError(f"{key}.routing_file: {self.routing_file} is not a file")


@dataclass(frozen=True)
class ConsoleSettings:
    host: str = "127.0.0.1"  # loopback by default: put a TLS reverse proxy in front to serve others
    port: int = 8080
    # Mark the session cookie Secure: on when the console is served over TLS (a reverse proxy in front),
    # so the browser never sends it over plain HTTP. HttpOnly and SameSite=Lax are always set.
    secure_cookies: bool = False

    def check(self, key: str) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{key}.port: must be 0..65535")


@dataclass(frozen=True)
class IdsSettings:
    """The traffic IDS's live sensor in the main job. "auto": on ``lo`` when the simulation runs on this host and
    we are root (capturing needs it), off otherwise; an interface name: that one (a warning without root); null (the
    default): off. Not on by default because the loopback is the whole host's: beside other simulations (tests,
    benches) a sensor judges their traffic too."""

    live_interface: str | None = None
    # Suricata eve.json files the main job follows as extra alert sources (beside the eve-ingest inbox).
    eve_files: tuple[str, ...] = ()

    def check(self, key: str) -> None:
        for i, path in enumerate(self.eve_files):
            if not path:
                raise ConfigError(f"{key}.eve_files[{i}]: an empty path")
        name = self.live_interface
        if name is not None and not (0 < len(name) < 16 and name.isprintable() and not any(c in name for c in " /")):
            raise ConfigError(f"{key}.live_interface: not an interface name (1-15 characters, no space or /), "
                              "or null for off")


@dataclass(frozen=True)
class LeaseSettings:
    """Active/standby monitors (``jukimon monitor run``, monitor.lease): the lease in the PostgreSQL store."""

    name: str = "monitor"  # monitors sharing one lease name take turns; a second pair may use another
    ttl: float = 15.0  # seconds: a standby takes over at most this long after the active's last renewal
    margin: float = 3.0  # the active stops acting this much before its lease can expire

    def check(self, key: str) -> None:
        if not self.name or len(self.name) > 100:
            raise ConfigError(f"{key}.name: 1 to 100 characters")
        _positive(f"{key}.ttl", self.ttl)
        _positive(f"{key}.margin", self.margin)
        if self.margin >= self.ttl * 2 / 3:  # renewed every ttl/3: a renewal must land before the deadline
            raise ConfigError(f"{key}.margin: must be less than two thirds of ttl ({self.ttl:g})")


@dataclass(frozen=True)
class Config:
    collectors: CollectorSettings = field(default_factory=CollectorSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    schedule: WindowSettings = field(default_factory=WindowSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    cascade: CascadeSettings = field(default_factory=CascadeSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    ids: IdsSettings = field(default_factory=IdsSettings)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    source: str = "<defaults>"

    def check(self) -> "Config":
        self.collectors.check("collectors")
        self.outputs.check("outputs")
        self.monitor.check("monitor")
        self.schedule.check("schedule")
        self.lifecycle.check("lifecycle")
        self.store.check("store")
        self.alerting.check("alerting")
        self.notify.check("notify")
        self.cascade.check("cascade")
        self.console.check("console")
        self.ids.check("ids")
        self.lease.check("lease")
        return self


def _positive(key: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{key}: must be a number > 0, got {value!r}")


def load_config(path: Path | None) -> Config:
    """Defaults, overridden by the file if one is given. Raises ConfigError naming file and key."""
    if path is None:
        return Config().check()
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    try:
        config = _merge(Config(), raw, "")
        return replace(config, source=str(path)).check()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


DEFAULT_STATE_DIR = Path("state")


def under_state_dir(config: Config, state_dir: Path) -> Config:
    """The defaults that live in ``state/`` moved into ``state_dir``; what the configuration sets stays.

    Two jobs started with different ``--state-dir`` from one directory must share nothing — once they
    shared the SQLite store, and the second restored the first one's thousands of conditions.
    """
    if state_dir == DEFAULT_STATE_DIR:
        return config
    defaults = Config()

    def moved(path: Path, default: Path) -> Path:
        return state_dir / path.relative_to(DEFAULT_STATE_DIR) if path == default else path

    store = config.store
    if store.url == defaults.store.url:
        store = replace(store, url=f"sqlite+aiosqlite:///{state_dir / 'jukimon.db'}")
    cascade = config.cascade
    cascade = replace(cascade, **{name: moved(getattr(cascade, name), getattr(defaults.cascade, name))
                                  for name in ("private_key", "public_key", "link_key")})
    return replace(config, store=store, cascade=cascade,
                   outputs=replace(config.outputs, spool_dir=moved(config.outputs.spool_dir,
                                                                   defaults.outputs.spool_dir)),
                   notify=replace(config.notify, mail_sink=moved(config.notify.mail_sink, defaults.notify.mail_sink)))


def _merge(default: Any, raw: Any, key: str) -> Any:
    """Overlay a parsed YAML mapping on a dataclass of defaults, checking names and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{key or 'top level'}: expected a mapping")
    hints = get_type_hints(type(default))
    known = {f.name for f in fields(default) if f.name != "source"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{_join(key, sorted(unknown)[0])}: unknown setting (known: {', '.join(sorted(known))})")
    changes = {}
    for name, value in raw.items():
        changes[name] = _coerce(getattr(default, name), hints[name], value, _join(key, name))
    return replace(default, **changes)


def _coerce(default: Any, hint: Any, value: Any, key: str) -> Any:
    optional = type(None) in get_args(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: may not be empty")
    target = next((a for a in get_args(hint) if a is not type(None)), hint) if optional else hint
    if is_dataclass(target):
        return _merge(default if default is not None else target(), value, key)
    if get_origin(target) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping")
        kind = get_args(target)[1]
        return {str(k): _scalar(kind, v, f"{key}.{k}") for k, v in value.items()}
    if get_origin(target) is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        return tuple(_scalar(get_args(target)[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    return _scalar(target, value, key)


def _scalar(kind: Any, value: Any, key: str) -> Any:
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        value = os.environ[name]
    if kind is Path:
        return Path(str(value))
    if kind is str and isinstance(value, dt.date):  # YAML reads an unquoted 2026-12-29 as a date
        return value.isoformat()
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
