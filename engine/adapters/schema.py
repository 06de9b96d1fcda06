"""The engine's own tables beside the event store: projections and the host lease."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, stored the same way on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


IdType = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

projection_positions = Table(
    "soa_projection_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

service_view = Table(
    "soa_service_view",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account", String(100)),
    Column("log_retention_days", Integer, nullable=False),
    Column("station", String(64)),
    Column("session_id", String(36)),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("since", UtcDateTime()),
)

log_entries = Table(
    "soa_log_entries",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("notification_id", BigInteger, nullable=False, unique=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("station", String(64)),
    Column("operation", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("company", String(100)),
    Column("run_id", String(64)),
    Index("soa_log_entries_time_idx", "time"),
)

host_lease = Table(
    "soa_host_lease",
    metadata,
    Column("service", String(16), primary_key=True),
    Column("session_id", String(36), nullable=False),
    Column("station", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)


def create_tables(engine: Engine) -> None:
    """Create the tables that do not exist yet."""
    metadata.create_all(engine, checkfirst=True)


companies = Table(
    "soa_companies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("database_url", Text, nullable=False),
    Column("task_count", Integer, nullable=False),
    Column("removed", Boolean, nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
)

tasks = Table(
    "soa_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(36), nullable=False),
    Column("company", String(100), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("schedule", JSON, nullable=False),
    Column("catch_up", String(10), nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("backoff_seconds", Float, nullable=False),
    Column("timeout_seconds", Float),
    Column("params", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("removed", Boolean, nullable=False),
    Column("schedule_from", UtcDateTime(), nullable=False),
    Column("considered_through", UtcDateTime()),
    Column("consecutive_failures", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Index("soa_tasks_company_idx", "company_id"),
)

runs = Table(
    "soa_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("company", String(100), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("scheduled_for", UtcDateTime(), nullable=False),
    Column("manual", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("retry_at", UtcDateTime()),
    Column("session_id", String(36)),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("duration_seconds", Float),
    Column("counts", JSON),
    Column("error", Text),
    Index("soa_runs_task_idx", "task_id", "scheduled_for"),
    Index("soa_runs_status_idx", "status"),
)

run_checkpoints = Table(
    "soa_run_checkpoints",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)
