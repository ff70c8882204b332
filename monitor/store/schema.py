"""The relational schema of the monitor's persistent state (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Timestamps are float epoch seconds, as everywhere in the monitor; free-form parts
(details, suppressed subjects, maintenance windows, checkpoints) are JSON columns.
``SCHEMA_VERSION`` is kept in ``schema_version``: a database written by a newer
Jukimon is refused rather than misread (no migrations exist yet; the first one
will start from this number).
"""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, Double, Index, Integer, MetaData, String, Table,
                        Text)

SCHEMA_VERSION = 1

metadata = MetaData()

# Current state of each device, link and site (monitor.state.model.StateRecord).
states = Table(
    "states", metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", Double, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("flapping", Boolean, nullable=False, default=False),
    Column("details", JSON, nullable=False),
)

# Every condition raised, active or cleared, by fingerprint (monitor.state.model.Condition).
conditions = Table(
    "conditions", metadata,
    Column("fingerprint", String(300), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started", Double, nullable=False),
    Column("cleared", Double),
    Column("summary", Text, nullable=False),
    Column("suppressed", JSON, nullable=False),
    Column("in_maintenance", Boolean, nullable=False, default=False),
    Column("details", JSON, nullable=False),
    Index("ix_conditions_status", "status"),
)

# State history (monitor.state.model.Transition). SQLite autoincrements only an INTEGER primary key.
transitions = Table(
    "transitions", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("old", String(16), nullable=False),
    Column("new", String(16), nullable=False),
    Column("at", Double, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_transitions_subject_at", "subject", "at"),
    Index("ix_transitions_at", "at"),  # history across subjects, and pruning
)

# Maintenance windows as their own JSON (MaintenanceWindow.to_json()); start/end copied out for queries.
maintenance = Table(
    "maintenance", metadata,
    Column("id", String(200), primary_key=True),
    Column("payload", JSON, nullable=False),
    Column("start", Double, nullable=False),
    Column("end", Double, nullable=False),
)

# Engine internals that must survive a restart: hysteresis counters, last sysUpTime per device, ...
checkpoints = Table(
    "checkpoints", metadata,
    Column("key", String(300), primary_key=True),
    Column("value", JSON),
    Column("updated", Double, nullable=False),
)

# Active/standby leases (monitor.lease): one row per lease name. Times are the database's own (now()), not
# epoch floats, so that no monitor's clock matters; epoch is the fencing number, +1 on every takeover.
leases = Table(
    "leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)
