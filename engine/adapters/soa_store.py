"""The engine's eventsourcing application: the event store's tables and settings."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import Environment
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from engine.adapters.sql import with_session_options
from engine.domain.company import Company
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership

STORE_NAME = "soa"  # names the tables (soa_events, soa_snapshots); never change it
SNAPSHOT_INTERVAL = 100


class SoaStore(Application[UUID]):
    """The engine's event store: the one source of truth."""

    name = STORE_NAME
    snapshotting_intervals: ClassVar[dict[Any, int]] = {
        ServiceConfiguration: SNAPSHOT_INTERVAL,
        StationOwnership: SNAPSHOT_INTERVAL,
        Company: SNAPSHOT_INTERVAL,
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
    def sql_engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database."""
        engine = self.recorder.datastore.engine  # type: ignore[attr-defined]
        assert isinstance(engine, Engine)
        return engine

    def create_tables(self) -> None:
        """Create the event and snapshot tables if they do not exist."""
        self.recorder.create_table()  # type: ignore[attr-defined]
        assert self.snapshots is not None
        self.snapshots.recorder.create_table()  # type: ignore[attr-defined]


def memory_soa_store() -> SoaStore:
    """A store that keeps events in memory (unit tests, examples)."""
    return SoaStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def sql_soa_store(url: str, sql_engine: Engine | None = None) -> SoaStore:
    """A store on the database at SQLAlchemy ``url`` (its tables are not created here).

    With ``sql_engine`` (an engine on the same URL), the store uses that engine's pool
    instead of a pool of its own, so a process holds one pool per database.
    """
    store = SoaStore(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": with_session_options(url),
            "CREATE_TABLE": "no",
        }
    )
    if sql_engine is not None:
        # eventsourcing-sqlalchemy 1.0 takes a URL, not an engine: point its datastore
        # (shared by the event and snapshot recorders) at ``sql_engine`` before first use.
        datastore: Any = store.recorder.datastore  # type: ignore[attr-defined]
        own = datastore.engine
        datastore.engine = sql_engine
        datastore.session_maker = sessionmaker(bind=sql_engine, autoflush=True)
        own.dispose()
    return store
