"""The engine's own tables beside the event store: projections and the host lease."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Engine,
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
