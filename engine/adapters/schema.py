"""The engine's own tables beside the event store (projections, the host lease, run
checkpoints) and the schema version that lets a process open an existing store without
any DDL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.ports.store import StoreUnavailableError

SCHEMA_VERSION = 2
"""The version of the tables this release writes; a store at this version is opened
without DDL. Older stores are brought to it by creating the tables and adding the
nullable columns they miss (nothing of theirs changes): release 0.1 had no version row;
version 2 added ``soa_service_view.api_url``."""

SCHEMA_LOCK_KEY = 0x50A_E461  # PostgreSQL advisory lock serialising table creation


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

SERVICE_VIEW_ROW_ID = 1
"""The id of the one row of ``soa_service_view``."""

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
    Column("api_url", String(300)),
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

schema_version = Table(
    "soa_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


def ensure_schema(engine: Engine, create_event_tables: Callable[[], None]) -> bool:
    """Create what is missing of the store's tables, unless the store is at
    :data:`SCHEMA_VERSION` already (one query); True if anything was done.

    :param create_event_tables: creates the event store's own tables (if missing).
    :raises StoreUnavailableError: if a newer release wrote the store.
    """
    if _checked_version(engine) == SCHEMA_VERSION:
        return False
    with _schema_lock(engine):
        if _checked_version(engine) == SCHEMA_VERSION:
            return False

        def create() -> None:
            create_event_tables()
            metadata.create_all(engine, checkfirst=True)
            _add_missing_columns(engine)
            _set_version(engine)

        _retrying_races(create)
    return True


def _add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns a table of an older release lacks."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreUnavailableError(
                    f"table {table.name} lacks column {column.name}, which cannot be added "
                    "to existing rows; restore the store or rebuild it"
                )
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as connection:
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                )


def _checked_version(engine: Engine) -> int | None:
    version = _version(engine)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreUnavailableError(
            f"the store has schema version {version}, written by a newer release; this "
            f"release reads version {SCHEMA_VERSION}: upgrade it"
        )
    return version


def _version(engine: Engine) -> int | None:
    """The store's schema version, or None where there is none (new, or release 0.1)."""
    try:
        with engine.connect() as connection:
            version = connection.execute(
                select(schema_version.c.version).where(schema_version.c.id == 1)
            ).scalar()
    except (OperationalError, ProgrammingError):
        return None  # no such table
    return None if version is None else int(version)


def _set_version(engine: Engine) -> None:
    with engine.begin() as connection:
        changed = connection.execute(
            update(schema_version).where(schema_version.c.id == 1)
            .values(version=SCHEMA_VERSION)
        ).rowcount
        if not changed:
            connection.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION))


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Serialise table creation between processes where the database can."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
            connection.commit()


_RACE_ERRORS = ("IntegrityError", "OperationalError", "ProgrammingError")


def _retrying_races(create: Callable[[], None], attempts: int = 5) -> None:
    """Run ``create``, retrying when another process created the same table meanwhile."""
    for attempt in range(attempts):
        try:
            create()
            return
        except Exception as error:
            # SQLAlchemy's and eventsourcing's errors of these names: another process won
            # the race to create a table (or held the SQLite file's lock for a moment).
            message = str(error).lower()
            if (
                type(error).__name__ not in _RACE_ERRORS or attempt == attempts - 1
                or ("exist" not in message and "locked" not in message)
            ):
                raise
