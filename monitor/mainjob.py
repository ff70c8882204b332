"""The main job: the watched network (simulated) and the monitor's chain, all on localhost.

    simulated network (child process, its own core)
        │ SNMP polls, TLS checks ▲        │ traps, firewall syslog
        ▼                       │        ▼
    collectors ── samples/events ──► MQTT broker (retained device state), TSDB, short-term history
        │
        ▼
    state engine (monitor/state): states, root causes, conditions ──► store (SQLite/PostgreSQL), MQTT
        │
        ▼
    alerting: alarms, routing, escalation ──► outbox ──► mail (embedded sink unless configured), MQTT,
                                                         webhooks, the console's inbox

The simulation's business terminals also send their operators' audit records (TLS
syslog, simulation CA) to the operation-pattern IDS (``ids.operations``), whose
alerts become alarms beside the monitor's and fill the console's /ids page. With
``ids.live_interface: auto`` (as root) the traffic IDS captures on ``lo`` — the devices'
own traffic (``simnet run --chatter``) and the monitor's polling, which leaves from the
network monitor's address — and its alerts join them.

When the configuration names no broker or TSDB, private Mosquitto and
VictoriaMetrics processes are started under the state directory (Debian's
``mosquitto`` and ``victoria-metrics``), so a fresh machine runs the whole chain
for real; if a binary is missing, that output is off and the log says how to
install it. Everything started here is stopped here, in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alerting.cascade import Cascade, generate_keypair, generate_link_key, load_private_key, open_cascade
from alerting.notify import ConsoleReceiver, DurableOutbox, MailSink, Receiver, SmtpSettings, build_receivers
from alerting.routing import RoutingConfig, default_routing, load_routing
from alerting.service import AlertingService
from collectors.history import History
from dashboards.auth import UserBook, UserRole
from dashboards.context import ConsoleContext
from dashboards.drill_control import DrillControl
from dashboards.server import ConsoleServer, load_secret, serve
from ids.operations import OperationsIds, OpsIdsSettings
from ids.operations.alarms import IdsAlarms
from ids.operations.settings import KEY_ENV
from ids.operations.tls_ingest import AuditListener
from ids.traffic import DEFAULT_RULES, IdsConfig, load_rules
from ids.traffic.alarms import TrafficAlarms
from ids.traffic.matrix import network_monitor
from ids.traffic.sensor import LiveSensor
from ids.traffic.suricata import EveFollower, inbox_path
from collectors.outputs import MqttPublisher, TsdbWriter
from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.traps import TrapListener
from collectors.snmp.udp_client import SnmpUdpClient
from collectors.syslog import SyslogListener
from monitor.config import Config
from monitor.envelope import Event, EventType, Sample
from monitor.inventory.model import Inventory
from monitor.localservers import MOSQUITTO, VICTORIA_METRICS, Mosquitto, VictoriaMetrics, die_with_parent
from monitor.logs import fields
from monitor.mqtt_tls import client_context
from monitor.lifecycle import LifecycleChecker
from monitor.maintenance import MaintenanceBook, MaintenanceWindow
from monitor.schedule.window import OperatingCalendar
from monitor.state.bus import StateBus
from monitor.state.engine import StateEngine
from monitor.state.model import State, SubjectKind
from monitor.store import Store
from simnet.audit_sender import receiver_context
from monitor.files import write_private

log = logging.getLogger("jukimon")

# What the console graphs from memory: the last hour at poll resolution, 24 h as 5-minute means
# (≈2.6 KB a series, ~0.3 GB for the national network); everything else is in the TSDB.
GRAPHED = {"system": ("rtt_ms",), "interface": ("in_bps", "out_bps", "in_errors_ps", "out_errors_ps"),
           "host": ("cpu_pct",), "storage": ("used_pct",), "icmp": ("rtt_avg_ms", "loss"), "tls": ("days_left",)}
LOCAL_MQTT_PORT = 11883
LOCAL_TSDB_PORT = 18428
STATUS_EVERY = 60.0


@dataclass
class SimulationOptions:
    """What the main job passes to ``jukimon simnet run`` in the child process."""

    inventory: Path | None
    snmp_port: int
    tls_port: int
    tls: bool
    clock_speed: float
    state_dir: Path
    control: tuple[str, int]
    trap_version: str = "3"
    chatter: bool = True  # the devices' own traffic to each other (simnet.chatter), over their TLS services

    def argv(self, trap_port: int, syslog_port: int, audit_port: int | None = None) -> list[str]:
        args = [sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "simnet", "run",
                "--snmp-port", str(self.snmp_port), "--tls-port", str(self.tls_port),
                "--clock-speed", str(self.clock_speed), "--state-dir", str(self.state_dir),
                "--control", f"{self.control[0]}:{self.control[1]}",
                "--trap-receiver", f"127.0.0.1:{trap_port}", "--trap-version", self.trap_version,
                "--syslog-target", f"127.0.0.1:{syslog_port}"]
        if audit_port is not None:
            args += ["--audit-target", f"127.0.0.1:{audit_port}"]
        if self.inventory is not None:
            args += ["--inventory", str(self.inventory)]
        if not self.tls:
            args.append("--no-tls")
        elif self.chatter:
            args.append("--chatter")
        return args


def _port_or_free(preferred: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


@dataclass
class MainJob:
    inventory: Inventory
    config: Config
    simulation: SimulationOptions | None  # None: the monitor alone (monitor.monitor_role), fed from the bus
    state_dir: Path
    status_every: float = STATUS_EVERY
    _sim: asyncio.subprocess.Process | None = None
    _servers: list[Mosquitto | VictoriaMetrics] = field(default_factory=list)
    _stoppers: list = field(default_factory=list)  # async callables, run in reverse at stop
    history: History = field(default_factory=lambda: History(coarse_resolution=300, fields=GRAPHED))
    collectors: CollectorService | None = None
    engine: StateEngine | None = None
    alerting: AlertingService | None = None
    console_inbox: ConsoleReceiver | None = None
    cascade: Cascade | None = None
    lifecycle: LifecycleChecker | None = None
    console: ConsoleServer | None = None
    console_context: ConsoleContext | None = None
    opsids: OperationsIds | None = None
    opsids_alarms: IdsAlarms | None = None
    traffic_sensor: LiveSensor | None = None
    traffic_alarms: TrafficAlarms | None = None
    _store: Store | None = None
    _mqtt_publisher: MqttPublisher | None = None
    events: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        snmp = self.config.collectors.snmp
        credentials = Credentials(snmp.version, community=snmp.community, user=snmp.user,
                                  auth_protocol=snmp.auth_protocol, auth_key=snmp.auth_key, priv_key=snmp.priv_key)
        traps = TrapListener(self._on_event, self.inventory, credentials)
        _, trap_port = await traps.start("127.0.0.1", 0)
        self._stoppers.append(traps.stop)
        syslog = SyslogListener(self._on_event, self.inventory, udp=("127.0.0.1", 0))
        await syslog.start()
        self._stoppers.append(syslog.stop)
        syslog_port = syslog.address("udp")[1]
        audit_port = await self._start_opsids()
        await self._start_traffic_ids()

        self.engine = await self._state_engine()
        self.lifecycle = LifecycleChecker(self.inventory, self.config.lifecycle)
        sinks = [self._to_history, self.engine.sink, self._to_lifecycle]
        mqtt = self._mqtt_publisher = await self._mqtt()
        if mqtt is not None:
            sinks.append(mqtt.publish_records)
            self.engine.listeners.append(StateBus(mqtt))
        tsdb = await self._tsdb()
        if tsdb is not None:
            sinks.append(lambda records: tsdb.write_many(r for r in records if isinstance(r, Sample)))
        self._sinks = sinks

        self.simulation.trap_version = "3" if snmp.version == "3" else "2c"
        await self._start_simulation(trap_port, syslog_port, audit_port)
        source = self._poll_source()
        client = SnmpUdpClient(credentials, timeout=self.config.collectors.timeout,
                               retries=self.config.collectors.retries, source=source)
        self.collectors = CollectorService(self.inventory, self.config.collectors, client, sinks,
                                           snmp_port=self.simulation.snmp_port, tls_port=self.simulation.tls_port,
                                           source=source)
        self.engine.recheck = self.collectors.recheck
        self.collectors.start()
        self._stoppers.append(self.collectors.stop)
        await self.engine.start()
        self._stoppers.append(self.engine.stop)
        await self._start_alerting()
        status = asyncio.get_running_loop().create_task(self._report_status(), name="status")
        self._stoppers.append(lambda: _cancel(status))
        log.info("jukimon running", extra=fields(devices=sum(1 for _ in self.inventory.polled_devices()),
                                                 snmp=f"v{snmp.version}"))

    async def run_until_signal(self) -> None:
        """Start, run until SIGINT or SIGTERM, stop (the ``jukimon run`` and ``jukimon monitor run`` commands)."""
        from simnet.service import start_then_wait_for_signal

        started = False
        try:
            started = await start_then_wait_for_signal(self.start)
        finally:
            log.info("stopping" if started else "stopped during start-up")
            await self.stop()  # idempotent: after a start that undid itself there is nothing left to stop

    async def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                await stopper()
            except Exception:
                log.exception("error while stopping")
        if self._sim is not None and self._sim.returncode is None:
            self._sim.send_signal(2)
            try:
                await asyncio.wait_for(self._sim.wait(), 30)
            except asyncio.TimeoutError:
                self._sim.kill()
                await self._sim.wait()
        for server in reversed(self._servers):
            await asyncio.to_thread(server.stop)
        self._servers.clear()

    # --- pieces -----------------------------------------------------------------

    async def _start_opsids(self) -> int:
        """The operation-pattern IDS on its own TLS listener (the simulation's CS sends there); returns the port."""
        settings = OpsIdsSettings() if os.environ.get(KEY_ENV) else _local_pseudonym_key(self.state_dir / "opsids.key")
        self.opsids = OperationsIds(self.inventory, settings, OperatingCalendar(self.config.schedule))
        self.opsids_alarms = IdsAlarms(self.inventory)
        context = await asyncio.to_thread(receiver_context, self.simulation.state_dir)
        listener = AuditListener(self.opsids, self.opsids_alarms, "127.0.0.1", 0, context)
        await listener.start()
        self._stoppers.append(listener.stop)
        return listener.address[1]

    def _poll_source(self) -> str | None:
        """The address the collectors poll from: configured, else the inventory's network monitor (監視装置)."""
        configured = self.config.collectors.source_address
        if configured is not None:
            return configured or None  # "": the kernel's choice
        monitor = network_monitor(self.inventory)
        return monitor.address if monitor is not None else None

    def _monitor_sources(self) -> frozenset[str]:
        """Where the monitor's own traffic comes from, for the traffic IDS: the polling address (SNMP, TLS and
        ICMP checks), and the monitoring host's loopback address (its listeners: store, broker, TSDB, console)."""
        return frozenset(a for a in (self._poll_source(), "127.0.0.1") if a)

    def _ids_config(self) -> IdsConfig:
        """The IDS's thresholds, told where the simulation's agents and TLS services listen (any port)."""
        sim, config = self.simulation, IdsConfig()
        if sim is None:
            return config
        return replace(config, tls_ports=config.tls_ports | {sim.tls_port}, snmp_ports=config.snmp_ports | {sim.snmp_port})

    async def _start_traffic_ids(self) -> None:
        """The traffic IDS's alarms: from external Suricata EVE files and the ``jukimon ids eve-ingest`` inbox, and
        from the live sensor when configured and allowed to capture (raw sockets need root)."""
        self.traffic_alarms = TrafficAlarms(self.inventory)
        for path in (inbox_path(self.state_dir), *map(Path, self.config.ids.eve_files)):
            follower = EveFollower(path, self.traffic_alarms)
            await follower.start()
            self._stoppers.append(follower.stop)
        interface = self.config.ids.live_interface
        if interface == "auto":  # on the loopback where the simulation runs, if we may capture
            interface = "lo" if os.geteuid() == 0 and self.simulation is not None else None
        if interface is None:
            return
        if os.geteuid() != 0:
            log.warning("traffic IDS off: capturing needs root", extra=fields(interface=interface,
                                                                               fix="run as root or unset ids.live_interface"))
            return
        sensor = LiveSensor(interface, self.traffic_alarms, inventory=self.inventory, rules=load_rules(DEFAULT_RULES),
                            monitor_sources=self._monitor_sources(), config=self._ids_config())
        try:
            await sensor.start()
        except OSError as exc:  # e.g. no such interface: the rest of the monitor runs without it
            log.warning("traffic IDS off: cannot capture", extra=fields(interface=interface, reason=str(exc)))
            return
        self.traffic_sensor = sensor
        self._stoppers.append(sensor.stop)
        print(f"traffic IDS: live on {interface}", flush=True)

    async def _start_simulation(self, trap_port: int, syslog_port: int, audit_port: int) -> None:
        self._sim = await asyncio.create_subprocess_exec(*self.simulation.argv(trap_port, syslog_port, audit_port),
                                                         stdout=asyncio.subprocess.PIPE,
                                                         preexec_fn=die_with_parent)
        assert self._sim.stdout is not None
        first = await asyncio.wait_for(self._sim.stdout.readline(), 120)
        if b"devices up" not in first:
            raise RuntimeError("the simulated network did not start (see its messages above)")
        print(first.decode().rstrip(), flush=True)
        relay = asyncio.get_running_loop().create_task(_relay(self._sim.stdout), name="simnet-stdout")
        self._stoppers.append(lambda: _cancel(relay))

    async def _state_engine(self) -> StateEngine:
        store = await Store.open(self.config.store.url)
        self._stoppers.append(store.close)
        maintenance = MaintenanceBook(self.inventory)
        await sync_maintenance(maintenance, store)
        print(f"store: {store.url}", flush=True)
        self._store = store
        return StateEngine(self.inventory, self.config.monitor, calendar=OperatingCalendar(self.config.schedule),
                           maintenance=maintenance, store=store)

    async def _start_alerting(self) -> None:
        routing, smtp, receivers = await self._notification_channels()
        outbox, self.alerting = await self._open_alerting(routing, receivers)
        self._stoppers.append(outbox.stop)
        self._stoppers.append(self.alerting.stop)
        assert self.opsids_alarms is not None
        self.opsids_alarms.attach(self.alerting)  # IDS alerts become alarms from here on
        if self.traffic_alarms is not None:
            self.traffic_alarms.attach(self.alerting)
        await self._start_cascade(smtp.host, smtp.port)
        await self._start_console()

    async def _notification_channels(self) -> tuple[RoutingConfig, SmtpSettings, dict[str, Receiver]]:
        """Routing, mail (the embedded sink unless a relay is configured), the console's inbox: the receivers."""
        config = self.config
        routing = load_routing(config.alerting.routing_file) if config.alerting.routing_file else default_routing()
        smtp = config.notify.smtp
        if smtp.host is None:  # no relay configured: the embedded mail sink keeps every mail as a file
            sink = MailSink(config.notify.mail_sink)
            await sink.start()
            self._stoppers.append(sink.stop)
            smtp = replace(smtp, host=sink.host, port=sink.port)
            print(f"mail: embedded SMTP sink {sink.host}:{sink.port}, messages in {config.notify.mail_sink}/",
                  flush=True)
        self.console_inbox = ConsoleReceiver(config.notify.console_keep)
        mqtt = self._mqtt_publisher
        receivers = build_receivers(routing.receivers, config.notify, smtp=smtp, console=self.console_inbox,
                                    mqtt=(mqtt.host, mqtt.port) if mqtt is not None else None,
                                    mqtt_tls=mqtt.tls if mqtt is not None else None)
        return routing, smtp, receivers

    async def _open_alerting(self, routing: RoutingConfig, receivers: dict[str, Receiver],
                             fence: Callable[[], bool] | None = None, store: Store | None = None
                             ) -> tuple[DurableOutbox, AlertingService]:
        """The durable outbox and the alerting service, started and listening to the engine; the caller stops
        them (alerting first). ``fence``: asked before each tick and each delivery (active/standby); ``store``:
        theirs, when not the job's (the lease holder's fenced view)."""
        assert self.engine is not None and self._store is not None
        store = store or self._store
        notify = self.config.notify
        outbox = DurableOutbox(store, receivers, backoff_initial=notify.retry_initial,
                               backoff_max=notify.retry_max, fence=fence)
        await outbox.start()
        alerting = AlertingService(self.inventory, routing, outbox, store, fence=fence)
        try:
            await alerting.start(self.engine.active())  # catches up with conditions raised while it was down
        except BaseException:
            await outbox.stop()
            raise
        self.engine.listeners.append(alerting.on_changes)
        return outbox, alerting

    async def _start_console(self) -> None:
        assert self.engine is not None and self._store is not None
        first_password = await _first_admin(self._store, self.state_dir / "console-admin-password")
        ctx = ConsoleContext(self.inventory, self.engine, self._store, self.alerting, self.history, self.console_inbox,
                             self.engine.maintenance, secret_key=load_secret(self.state_dir / "console.key"),
                             extra={"cascade": self.cascade, "lifecycle": self.lifecycle,
                                    "simnet_control": self.simulation.control if self.simulation else None,
                                    "drill_reports": self.state_dir / "drills", "opsids": self.opsids,
                                    "opsids_alerts": self.opsids_alarms.recent if self.opsids_alarms else None,
                                    "traffic_ids": self.traffic_sensor.engine if self.traffic_sensor else None,
                                    "traffic_alerts": self.traffic_alarms.recent if self.traffic_alarms else None,
                                    "audit_signing_key": _audit_key(self.state_dir / "audit"),
                                    "audit_head": self.state_dir / "audit" / "head.json"})
        ctx.extra["drill_control"] = drills = DrillControl.from_context(ctx)
        self.console_context = ctx
        settings = self.config.console
        self.console = await serve(ctx, settings.host, _port_or_free(settings.port) if settings.port else 0,
                                   https_only=settings.secure_cookies)
        self._stoppers.append(self.console.stop)
        self._stoppers.append(drills.close)  # runs first: aborts an open drill and clears its faults
        if first_password is not None:
            print(f"console, first start: user admin, password in {first_password} "
                  "(add people with: jukimon console user add NAME --role ROLE)", flush=True)
        print(f"console: http://{self.console.host}:{self.console.port}/", flush=True)

    async def _start_cascade(self, smtp_host: str | None, smtp_port: int) -> None:
        """The incident-report cascade, ready for the console and drills; keys made on the first start."""
        settings = self.config.cascade
        if not settings.private_key.exists():
            generate_keypair(settings.private_key, settings.public_key)
            log.info("cascade signing key created", extra=fields(public_key=str(settings.public_key)))
        if not settings.link_key.exists():
            generate_link_key(settings.link_key)
        if self.config.notify.smtp.host is None and smtp_host is not None:  # the demo: reports into the mail sink
            settings = replace(settings, smtp_host=smtp_host, smtp_port=smtp_port)
        mqtt = self._mqtt_publisher
        self.cascade = await open_cascade(self._store, self.inventory, settings,
                                          mqtt=(mqtt.host, mqtt.port) if mqtt is not None else None,
                                          mqtt_tls=mqtt.tls if mqtt is not None else None)
        self._stoppers.append(self.cascade.close)
        ticker = asyncio.get_running_loop().create_task(self._tick_cascade(), name="cascade-reminders")
        self._stoppers.append(lambda: _cancel(ticker))

    async def _tick_cascade(self) -> None:
        assert self.cascade is not None
        while True:
            await asyncio.sleep(60)
            try:
                await self.cascade.tick()  # reminders to the overdue, forwarding on behalf of prefectures
            except Exception:
                log.exception("cascade tick failed")

    async def _mqtt(self) -> MqttPublisher | None:
        settings = self.config.outputs.mqtt
        if settings is None:
            server = await self._local_server(Mosquitto, MOSQUITTO, "mosquitto", LOCAL_MQTT_PORT)
            if server is None:
                return None
            host, port, prefix = server.host, server.port, "jukimon"
        else:
            host, port, prefix = settings.host, settings.port, settings.topic_prefix
        tls = client_context(settings.tls if settings is not None else None)
        publisher = MqttPublisher(host, port, client_id=f"jukimon-collectors-{os.getpid()}", topic_prefix=prefix,
                                  tls=tls)
        await publisher.start()
        self._stoppers.append(publisher.stop)
        scheme = "mqtts" if tls is not None else "mqtt"
        print(f"MQTT: {scheme}://{host}:{port}/{prefix}/#  (device state retained under …/state)", flush=True)
        return publisher

    async def _tsdb(self) -> TsdbWriter | None:
        settings = self.config.outputs.influx
        if settings is None:
            server = await self._local_server(VictoriaMetrics, VICTORIA_METRICS, "victoria-metrics", LOCAL_TSDB_PORT)
            if server is None:
                return None
            url, org, bucket, token = server.url, "jukimon", "jukimon", ""
        else:
            url, org, bucket, token = settings.url, settings.org, settings.bucket, settings.token
        writer = TsdbWriter(url, token=token, org=org, bucket=bucket,
                            spool_dir=self.config.outputs.spool_dir / "tsdb")
        await writer.start()
        self._stoppers.append(writer.stop)
        print(f"TSDB: {url} (InfluxDB v2 write API, bucket {bucket})", flush=True)
        return writer

    async def _local_server(self, kind: type, binary: str, package: str, port: int):
        if not Path(binary).exists():
            log.warning("output off: server not installed", extra=fields(server=package,
                                                                          fix=f"apt-get install {package}"))
            return None
        server = kind(self.state_dir / package, _port_or_free(port))
        await asyncio.to_thread(server.start)
        self._servers.append(server)
        return server

    # --- sinks --------------------------------------------------------------------

    def _to_history(self, records: list[Sample | Event]) -> None:
        for record in records:
            if isinstance(record, Sample):
                self.history.add(record)
            elif record.event_type in (EventType.TRAP, EventType.POLL) and not record.body.get("first"):
                log.info(record.message, extra=fields(event=record.event_type.value,
                                                      severity=record.severity.value))

    def _to_lifecycle(self, records: list[Sample | Event]) -> None:
        """Certificates as the TLS checks read them: the renewal plan follows the devices, not only the inventory."""
        for record in records:
            if isinstance(record, Sample) and record.measurement == "tls" and record.origin.device:
                self.lifecycle.observe_tls(record.origin.device, record.fields, record.ts)

    def _on_event(self, event: Event) -> None:
        self.events[event.event_type.value] = self.events.get(event.event_type.value, 0) + 1
        for sink in self._sinks:
            sink([event])

    async def _report_status(self) -> None:
        assert self.collectors is not None
        last_completed, last_time = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.status_every)
            stats = self.collectors.scheduler.stats
            now = time.monotonic()
            rate = (stats.completed - last_completed) / (now - last_time)
            last_completed, last_time = stats.completed, now
            log.info("status", extra=fields(polls_per_s=round(rate, 1), not_answering=len(self.collectors.unreachable()),
                                            missed=stats.missed, tasks=len(asyncio.all_tasks()),  # a leak shows here
                                            **self._state_counts(), **self._opsids_counts(),
                                            **self._traffic_counts(),
                                            **{f"{k}_events": v for k, v in self.events.items()}))

    def _opsids_counts(self) -> dict[str, int]:
        """Audit records judged by the operation IDS and the alerts it raised."""
        if self.opsids is None or self.opsids_alarms is None:
            return {}
        return {"audit_records": self.opsids.ingestor.accepted, "opsids_alerts": self.opsids_alarms.count}

    def _traffic_counts(self) -> dict[str, int]:
        """Frames seen by the live traffic sensor and the alerts it raised (nothing when it is off)."""
        if self.traffic_sensor is None:
            return {}
        stats = self.traffic_sensor.engine.stats
        return {"captured_packets": stats.packets, "traffic_alerts": stats.alerts}

    def _state_counts(self) -> dict[str, int]:
        """Devices per state that needs attention, and active conditions (0s left out)."""
        if self.engine is None:
            return {}
        counts: dict[str, int] = {}
        for (kind, _), record in self.engine.states.items():
            if kind is SubjectKind.DEVICE and record.state not in (State.UP, State.UNKNOWN):
                counts[record.state.value] = counts.get(record.state.value, 0) + 1
        return {**counts, "conditions": len(self.engine.conditions)}


async def sync_maintenance(book: MaintenanceBook, store: Store, skipped: set[str] | None = None) -> None:
    """Make the book hold the store's windows: at start, and — with active/standby monitors, whose consoles
    both add and remove windows — again and again. ``skipped``: ids already warned about (warned once)."""
    skipped = set() if skipped is None else skipped
    stored: dict[str, MaintenanceWindow] = {}
    for payload in await store.load_maintenance():
        try:
            window = MaintenanceWindow.from_json(payload)
        except ValueError as exc:
            _skip(payload.get("id"), exc, skipped)
            continue
        stored[window.id] = window
    for window in book.windows():
        if stored.get(window.id) != window:  # deleted or changed in the store
            book.remove(window.id)
    known = {window.id for window in book.windows()}
    for window in stored.values():
        if window.id not in known:
            try:
                book.add(window)
            except ValueError as exc:  # e.g. a window on a device no longer in the inventory
                _skip(window.id, exc, skipped)


def _skip(window_id: object, exc: Exception, skipped: set[str]) -> None:
    if str(window_id) not in skipped:
        skipped.add(str(window_id))
        log.warning("maintenance window skipped", extra=fields(window=window_id, reason=str(exc)))


def _audit_key(directory: Path) -> Ed25519PrivateKey:
    """The key that signs every audit-trail entry, made on the first start (public half beside it, for
    ``jukimon audit verify``)."""
    private = directory / "ed25519.pem"
    if not private.exists():
        generate_keypair(private, directory / "ed25519.pub.pem")
        log.info("audit trail signing key created", extra=fields(public_key=str(directory / "ed25519.pub.pem")))
    return load_private_key(private)


async def _first_admin(store: Store, password_file: Path) -> Path | None:
    """A fresh installation has no console user: make ``admin`` with a random password kept in a 0600 file."""
    users = await UserBook(store).open()
    if await users.accounts():
        return None
    password = secrets.token_urlsafe(12)
    await users.add("admin", UserRole.ADMIN, password)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(password_file, (password + "\n").encode())
    log.warning("console: first admin account created", extra=fields(user="admin", password_file=str(password_file)))
    return password_file


def _local_pseudonym_key(key_file: Path) -> OpsIdsSettings:
    """Without ``JUKIMON_OPSIDS_KEY``: a random key kept in a 0600 file, so pseudonyms link across restarts."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(key_file, secrets.token_hex(32).encode())
        log.warning("operation IDS: pseudonym key created", extra=fields(key_file=str(key_file), env=KEY_ENV))
    return OpsIdsSettings(pseudonym_key_id="local", pseudonym_keys={"local": key_file.read_text().strip()})


async def _relay(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        print(line.decode().rstrip(), flush=True)


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
