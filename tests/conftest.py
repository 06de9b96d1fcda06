from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.application.service import ServiceApplication
from tests.support import MovableClock, open_app, services_of, temporary_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str, tmp_path: Path) -> Iterator[str | None]:
    """None for the embedded SQLite file under the test's SOA_HOME, else a fresh PostgreSQL DB."""
    if store_kind == "sqlite":
        yield None
    else:
        with temporary_postgres_database() as url:
            yield url


@pytest.fixture
def soa_home(tmp_path: Path) -> Path:
    return tmp_path / "soa-home"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def station_app(
    soa_home: Path, database_url: str | None, clock: MovableClock
) -> Iterator[Callable[[str], ServiceApplication]]:
    """Open the service as seen from a named station; all share one store and clock."""
    opened: list[ServiceApplication] = []

    def open_station(station: str) -> ServiceApplication:
        app = open_app(soa_home, database_url, station, clock=clock, lease_seconds=15.0)
        opened.append(app)
        return app

    yield open_station
    for app in opened:
        services_of(app).close()
