"""Shared test helpers: stores on SQLite and PostgreSQL, a movable clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from weakref import WeakKeyDictionary

import psycopg
import pytest

from engine.application.service import ServiceApplication
from engine.ports.host import Clock
from engine.service_host.bootstrap import ApplicationServices, build_services
from engine.settings import Settings

POSTGRES_ADMIN_DSN = os.environ.get(
    "SOA_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PASSWORD = "Tajne-Hasło-7f3c9e!"


class MovableClock(Clock):
    """Real time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def move_to(self, moment: datetime) -> None:
        """Move the clock forward to ``moment`` (never back)."""
        self.advance(max(0.0, (moment - self.now()).total_seconds()))


def postgres_unavailable_reason() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL server not reachable ({POSTGRES_ADMIN_DSN}): {str(error).strip()}"


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    """Create a database for one test and drop it afterwards; yield its SQLAlchemy URL."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("SOA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SOA_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    name = f"soa_test_{uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(home: Path, database_url: str | None, station: str, **extra: object) -> Settings:
    return Settings(home=home, database_url=database_url, station=station, **extra)


def open_services(
    home: Path, database_url: str | None, station: str, clock: Clock | None = None,
    **extra: Any,
) -> ApplicationServices:
    """The application services of ``station`` (pass ``registry=`` and the like through)."""
    wiring = {key: extra.pop(key) for key in ("registry", "credentials", "processes", "notifier")
              if key in extra}
    services = build_services(settings_for(home, database_url, station, **extra), clock=clock,
                              **wiring)
    _services_of_app[services.service] = services
    return services


_services_of_app: WeakKeyDictionary[ServiceApplication, ApplicationServices] = (
    WeakKeyDictionary()
)


def services_of(app: ServiceApplication) -> ApplicationServices:
    """The services an application of :func:`open_services` belongs to (its store, read
    models and lease, for tests that look behind the application)."""
    return _services_of_app[app]


def open_app(
    home: Path, database_url: str | None, station: str, clock: Clock | None = None,
    **extra: object,
) -> ServiceApplication:
    return open_services(home, database_url, station, clock, **extra).service


def event_count(app: ServiceApplication | ApplicationServices) -> int:
    services = app if isinstance(app, ApplicationServices) else services_of(app)
    return services.store.max_position()
