"""Events stored by the previous code (version 1: no ``caused_by``) load through the
upcaster and replay into the same read models as that code built, on SQLite and, with
the same stored rows, on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, Text, insert
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from engine.adapters.event_log_sql import SqlEventLog
from engine.service_host.bootstrap import ApplicationServices
from engine.service_host.cli_audit import audit_service_of
from tests.support import open_services

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
V1 = FIXTURES / "events_v1"


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(
            "SELECT id, originator_id, originator_version, topic, state FROM soa_events "
            "ORDER BY id"))


def copy_events(rows: list[tuple[Any, ...]], services: ApplicationServices) -> None:
    """Insert the stored rows as they are (state untouched) into ``services``' store."""
    postgres = services.sql_engine.dialect.name == "postgresql"
    events = Table("soa_events", MetaData(), Column("id", Integer, primary_key=True),
                   Column("originator_id", PgUUID(as_uuid=True) if postgres else LargeBinary),
                   Column("originator_version", Integer), Column("topic", Text),
                   Column("state", LargeBinary))
    with services.sql_engine.begin() as connection:
        connection.execute(insert(events), [
            {"id": row[0], "originator_id": UUID(bytes=row[1]) if postgres else row[1],
             "originator_version": row[2], "topic": row[3], "state": row[4]}
            for row in rows
        ])


@pytest.fixture
def v1_store(store_kind: str, database_url: str | None, tmp_path: Path
             ) -> Iterator[ApplicationServices]:
    """The version 1 store: the fixture file on SQLite (with the live tables the previous
    code built), or its stored rows copied into a fresh PostgreSQL database."""
    home = tmp_path / "home"
    home.mkdir()
    if store_kind == "sqlite":
        shutil.copy(V1 / "soa.db", home / "soa.db")
    services = open_services(home, database_url, "BIURO")
    if store_kind == "postgres":
        copy_events(stored_rows(V1 / "soa.db"), services)
    yield services
    services.close()


def test_version_1_events_load_with_caused_by_none_and_replay_as_before(
    v1_store: ApplicationServices
) -> None:
    expected = json.loads((V1 / "expected.json").read_text())
    head = v1_store.store.max_position()
    assert head == expected["events"]
    through_store = v1_store.store.events_after(0, limit=head, stop=head)
    assert b'"class_version"' not in stored_rows(V1 / "soa.db")[0][4]
    # Check: every class written, every event version 2 once read, nobody named.
    assert sorted({type(event).__qualname__ for _, event in through_store}) == \
        expected["event_types"]
    assert {event.caused_by for _, event in through_store} == {None}
    # Check: the bulk reader of the replay decodes them exactly as the store's mapper.
    bulk = SqlEventLog(v1_store.sql_engine, v1_store.store.app.mapper)
    assert [(position, type(event), vars(event)) for position, event
            in bulk.events_after(0, limit=head, stop=head)] == \
        [(position, type(event), vars(event)) for position, event in through_store]
    # Check: every aggregate loads (from its version 1 events).
    for aggregate_id in {event.originator_id for _, event in through_store}:
        assert v1_store.store.get(aggregate_id) is not None
    # Check: the read models rebuilt by this code equal those of the previous code
    # (SQLite: the fixture's own tables; PostgreSQL: caught up from the copied rows).
    v1_store.read_models.catch_up()
    report = audit_service_of(v1_store).replay(check=True)
    assert [difference.describe() for difference in report.differences] == []
    assert report.rows["soa_runs"] == 4 and report.rows["soa_companies"] == 1


def test_history_of_version_1_events(v1_store: ApplicationServices) -> None:
    events = v1_store.store.events_after(0, limit=100, stop=100)
    started = next(event for _, event in events if type(event).__name__ == "Started")
    history = audit_service_of(v1_store).history(started.timestamp, lang="en")
    assert history.status.state == "running" and history.status.station == "BIURO"
    assert history.account == "FIRMA\\soa2" and history.log_retention_days == 14
    now = audit_service_of(v1_store).history(v1_store.clock.now(), lang="en")
    assert now.status.text == "The service configured on station KASA is currently stopped."
    assert [company.database_url for company in now.companies] == [
        "sqlite:////tmp/firma-a-2.db"]
    assert now.tasks == []


def test_the_store_of_release_0_1_replays_into_its_own_read_models(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(FIXTURES / "release_0_1" / "soa.db", home / "soa.db")
    services = open_services(home, None, "BIURO")
    try:
        report = audit_service_of(services).replay(check=True)
        assert [difference.describe() for difference in report.differences] == []
        assert report.events == services.store.max_position() > 0
    finally:
        services.close()
