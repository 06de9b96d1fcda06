"""The event store: an eventsourcing application persisted with eventsourcing-sqlalchemy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership

STORE_NAME = "soa"  # names the tables (soa_events, soa_snapshots); never change it
SNAPSHOT_INTERVAL = 100
SCHEMA_LOCK_KEY = 0x50A_E461  # PostgreSQL advisory lock serialising table creation


class SoaStore(Application[UUID]):
    """The engine's event store: the one source of truth."""

    name = STORE_NAME
    snapshotting_intervals: ClassVar[dict[Any, int]] = {
        ServiceConfiguration: SNAPSHOT_INTERVAL,
        StationOwnership: SNAPSHOT_INTERVAL,
    }

    def construct_env(self, name: str, env: Any = None) -> Environment:
        """Configure the store only from ``env``, never from ``os.environ``.

        eventsourcing would read ``SOA_*`` variables (its prefix from the name
        ``soa``), which would collide with the engine's own settings.
        """
        settings = dict(env or {})
        if self.snapshotting_intervals:
            settings["IS_SNAPSHOTTING_ENABLED"] = "y"
        return Environment(name, settings)

    @property
    def events_table(self) -> str:
        """The name of the table holding the events (the notification log)."""
        return f"{STORE_NAME}_events"

    @property
    def sql_engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database (also used for projections)."""
        engine = self.recorder.datastore.engine  # type: ignore[attr-defined]
        assert isinstance(engine, Engine)
        return engine


def open_memory_store() -> SoaStore:
    """Return a store that keeps events in memory (unit tests, examples)."""
    return SoaStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
"""PostgreSQL ends a session idle inside a transaction this long, so a host that hangs
(or is suspended) mid-transaction cannot block the other stations for longer."""


def with_session_options(url: str) -> str:
    """``url`` with the engine's PostgreSQL session options, unless it sets its own."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "options" in parsed.query:
        return url
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def open_sql_store(url: str, create_schema: Any = None) -> SoaStore:
    """Return a store on the database at SQLAlchemy ``url``, creating its tables.

    :param create_schema: called with the SQLAlchemy engine, under the same lock,
        to create the engine's other tables (projections, lease).
    """
    url = with_session_options(url)
    store = SoaStore(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": url,
            "CREATE_TABLE": "no",
        }
    )

    def create_all() -> None:
        store.recorder.create_table()  # type: ignore[attr-defined]
        assert store.snapshots is not None
        store.snapshots.recorder.create_table()  # type: ignore[attr-defined]
        if create_schema is not None:
            create_schema(store.sql_engine)

    with _schema_lock(store.sql_engine):
        _retrying_races(create_all)
    return store


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


def _retrying_races(create: Any, attempts: int = 5) -> None:
    """Run ``create``, retrying when another process created the same table meanwhile."""
    for attempt in range(attempts):
        try:
            create()
            return
        except (OperationalError, ProgrammingError, SQLIntegrityError, IntegrityError) as error:
            message = str(error).lower()
            if attempt == attempts - 1 or ("exist" not in message and "locked" not in message):
                raise
