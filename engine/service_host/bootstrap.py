"""The composition root: the only place that builds concrete adapters."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from engine.adapters.credentials import LazyCredentialChecker
from engine.adapters.event_store import open_sql_store
from engine.adapters.lease_sqlalchemy import SqlHostLeases
from engine.adapters.notifier_log import LoggingNotifier
from engine.adapters.schema import create_tables
from engine.application import Connection, ServiceApplication
from engine.domain.errors import DomainError
from engine.operations.registry import OperationRegistry
from engine.ports import Clock, CredentialChecker, SystemClock
from engine.projections import all_projections
from engine.projections.runner import ProjectionRunner
from engine.service_host.host import SchedulerFactory
from engine.settings import Settings
from engine.tasks import TaskService

SUPPORTED_URLS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"


class InvalidDatabaseUrlError(DomainError):
    """Signals a database URL the engine cannot use."""


def parse_database_url(url: str) -> URL:
    """Return ``url`` parsed.

    :raises InvalidDatabaseUrlError: unless it is a SQLite or psycopg 3 PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidDatabaseUrlError(
            f"database URL {_redacted(url)!r} is not a URL; expected {SUPPORTED_URLS}"
        ) from None
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise InvalidDatabaseUrlError(
            f"database URL scheme {parsed.drivername!r} is not supported; expected {SUPPORTED_URLS}"
        )
    return parsed


def _redacted(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


def connection_fields(settings: Settings) -> Connection:
    """The read-only connection fields, filled from the engine's own settings."""
    url = parse_database_url(settings.store_url)
    if url.drivername.startswith("sqlite"):
        sql_server = "embedded SQLite"
        database = url.database or ":memory:"
    else:
        sql_server = f"{url.host or 'localhost'}:{url.port or 5432}"
        database = url.database or ""
    return Connection(
        sql_server=sql_server,
        config_database=database,
        key_server=settings.key_server or None,
        edition=settings.edition,
    )


@dataclass(frozen=True)
class Engine:
    """The engine as one station uses it: the service lifecycle and the tasks."""

    service: ServiceApplication
    tasks: TaskService


def build_engine(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credentials: CredentialChecker | None = None,
    registry: OperationRegistry | None = None,
) -> Engine:
    """Open the store named by ``settings``; wire every adapter the engine uses."""
    connection = connection_fields(settings)
    if settings.uses_embedded_store:
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_sql_store(settings.store_url, create_schema=create_tables)
    engine = store.sql_engine
    clock = clock or SystemClock()
    projections = ProjectionRunner(
        engine, store.recorder, store.mapper, all_projections(), events_table=store.events_table
    )
    service = ServiceApplication(
        store=store,
        engine=engine,
        leases=SqlHostLeases(engine),
        credentials=credentials or LazyCredentialChecker(settings.credential_checker),
        clock=clock,
        station=settings.station,
        connection=connection,
        lease_seconds=settings.lease_seconds,
        projections=projections,
        failure_warning_threshold=settings.failure_warning_threshold,
    )
    tasks = TaskService(
        store=store, engine=engine, projections=projections,
        registry=registry or OperationRegistry(), clock=clock, station=service.station,
        home=settings.home,
    )
    return Engine(service=service, tasks=tasks)


def scheduler_factory(
    engine: Engine, settings: Settings, logger: logging.Logger
) -> SchedulerFactory:
    """How the host builds its task scheduler for a session."""
    from engine.service_host.scheduler import SchedulerSettings, TaskScheduler

    scheduler_settings = SchedulerSettings(
        max_concurrent_runs=settings.max_concurrent_runs,
        max_catch_up=settings.max_catch_up,
        failure_warning_threshold=settings.failure_warning_threshold,
        stop_grace_seconds=settings.stop_grace_seconds,
    )

    def build(session_id: UUID, may_run: Callable[[], bool]) -> TaskScheduler:
        return TaskScheduler(
            service=engine.tasks, session_id=session_id, pid=os.getpid(),
            settings=scheduler_settings, notifier=LoggingNotifier(logger), logger=logger,
            may_run=may_run,
        )

    return build


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credentials: CredentialChecker | None = None,
) -> ServiceApplication:
    """Open the store named by ``settings`` and return the service as seen from its station."""
    return build_engine(settings, clock=clock, credentials=credentials).service
