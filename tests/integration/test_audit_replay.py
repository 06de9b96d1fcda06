"""``soa replay --check``: the read models rebuilt from the events equal the live ones, on
a store of 100,000 events; tampering, live tables ahead and the log retention."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from engine.adapters.schema import companies, log_entries, projection_positions, runs, tasks
from engine.application.audit import AuditService
from engine.projections.comparison import ReplayError
from engine.service_host.bootstrap import ApplicationServices
from engine.service_host.cli_audit import audit_service_of
from tests.integration.audit_events import record_history
from tests.support import MovableClock, open_services, temporary_postgres_database

BIG = 100_000


def open_store(kind: str, home: Path) -> Any:
    """A context giving the services over a fresh store of ``kind``."""
    urls = temporary_postgres_database() if kind == "postgres" else nullcontext(None)

    class Opened:
        def __enter__(self) -> ApplicationServices:
            url = urls.__enter__()
            self.services = open_services(home, url, "BENCH", clock=MovableClock())
            return self.services

        def __exit__(self, *exc: object) -> None:
            self.services.close()
            urls.__exit__(None, None, None)

    return Opened()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def big_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[ApplicationServices]:
    """A store of 100,000 events with its live projections caught up, shared by the module."""
    with open_store(request.param, tmp_path_factory.mktemp("big")) as services:
        started = time.perf_counter()
        recorded = record_history(services.store, BIG)
        recorded_at = time.perf_counter()
        services.read_models.catch_up()
        print(f"\n{request.param}: {recorded} events recorded in "
              f"{recorded_at - started:.1f} s, caught up in "
              f"{time.perf_counter() - recorded_at:.1f} s")
        yield services


@pytest.fixture
def small_store(store_kind: str, tmp_path: Path) -> Iterator[ApplicationServices]:
    with open_store(store_kind, tmp_path / "home") as services:
        record_history(services.store, 600, tasks=5, companies=2)
        services.read_models.catch_up()
        yield services


def live_rows(services: ApplicationServices) -> dict[str, int]:
    with services.sql_engine.connect() as connection:
        return {table.name: int(connection.execute(
                    select(func.count()).select_from(table)).scalar_one())
                for table in (companies, tasks, runs, log_entries)}


def test_the_replay_of_100000_events_equals_the_live_read_models(
    big_store: ApplicationServices
) -> None:
    audit = audit_service_of(big_store)
    started = time.perf_counter()
    report = audit.replay(check=True)
    seconds = time.perf_counter() - started
    print(f"replay --check of {report.events} events in one process: {seconds:.1f} s")
    assert report.events >= BIG
    assert [difference.describe() for difference in report.differences] == []
    assert report.checked_at is not None and min(report.checked_at.values()) == report.position
    # Check: every row was compared (the replay holds as many as the live tables).
    assert {name: report.rows[name] for name in live_rows(big_store)} == live_rows(big_store)
    assert report.rows["soa_runs"] > BIG // 4


def test_the_replay_of_100000_events_in_two_processes_gives_the_same_tables(
    big_store: ApplicationServices
) -> None:
    audit = audit_service_of(big_store)
    audit._replays._parallel_from = BIG  # type: ignore[attr-defined]
    started = time.perf_counter()
    report = audit.replay(check=True)
    print(f"replay --check in two processes: {time.perf_counter() - started:.1f} s")
    assert report.differences == [] and report.events >= BIG


def tamper(services: ApplicationServices) -> tuple[str, int]:
    """Change a run's status, delete a log entry and add a company, behind the
    projections' back; return the tampered run's id and the entry's notification id."""
    with services.sql_engine.begin() as connection:
        run_id = connection.execute(
            select(runs.c.id).where(runs.c.status == "succeeded").limit(1)).scalar_one()
        connection.execute(update(runs).where(runs.c.id == run_id).values(status="failed"))
        first_log = connection.execute(select(func.min(log_entries.c.notification_id))
                                       ).scalar_one()
        connection.execute(delete(log_entries)
                           .where(log_entries.c.notification_id == first_log))
        connection.execute(insert(companies).values(
            id="00000000-0000-0000-0000-00000000beef", name="Podrzucona", task_count=0,
            database_url="sqlite:////tmp/x.db", removed=False,
            added_at=services.clock.now()))
    return str(run_id), int(first_log)


def test_check_reports_each_tampered_live_row(small_store: ApplicationServices) -> None:
    audit = audit_service_of(small_store)
    assert audit.replay(check=True).differences == []
    run_id, entry = tamper(small_store)
    described = [difference.describe() for difference in audit.replay(check=True).differences]
    assert described == [
        "soa_companies id=00000000-0000-0000-0000-00000000beef: in the live table, not in "
        "the replay",
        f"soa_runs id={run_id}: status is 'failed' live, 'succeeded' replayed",
        f"soa_log_entries notification_id={entry}: in the replay, not in the live table",
    ]


def test_live_tables_ahead_of_the_replay_are_compared_at_their_position(
    small_store: ApplicationServices
) -> None:
    audit = audit_service_of(small_store)
    appended: list[int] = []

    def host_keeps_recording(position: int, last: int) -> None:
        if not appended:  # after the first batch: more runs recorded and applied live
            appended.append(record_history(small_store.store, 300, tasks=3, companies=1,
                                           company_prefix="Nowa"))
            small_store.read_models.catch_up()

    report = audit.replay(check=True, progress=host_keeps_recording)
    assert appended and report.differences == []
    assert report.checked_at is not None
    assert min(report.checked_at.values()) >= report.position + appended[0]


def test_a_live_projection_rebuilt_during_the_check_stops_it(
    small_store: ApplicationServices
) -> None:
    def rebuilt_meanwhile(position: int, last: int) -> None:
        with small_store.sql_engine.begin() as connection:
            connection.execute(update(projection_positions).values(position=0))

    with pytest.raises(ReplayError, match=r"is at event 0, behind the replay at .*check again"):
        audit_service_of(small_store).replay(check=True, progress=rebuilt_meanwhile)


def test_log_entries_older_than_the_retention_are_left_out_on_both_sides(
    small_store: ApplicationServices
) -> None:
    audit = audit_service_of(small_store)
    clock = small_store.clock
    assert isinstance(clock, MovableClock)
    before = audit.replay(check=True)
    assert before.rows["soa_log_entries"] > 0
    clock.advance(11 * 86_400)  # every entry is now older than the 10 days kept
    # Check: not pruned yet, the live table still holds them; neither side is compared.
    assert live_rows(small_store)["soa_log_entries"] == before.rows["soa_log_entries"]
    after = audit.replay(check=True)
    assert after.differences == [] and after.rows["soa_log_entries"] == 0
    small_store.service.prune_logs()
    assert live_rows(small_store)["soa_log_entries"] == 0
    assert audit.replay(check=True).differences == []


def test_a_replay_kept_in_a_file_holds_the_rebuilt_tables(
    small_store: ApplicationServices, tmp_path: Path
) -> None:
    audit: AuditService = audit_service_of(small_store)
    output = tmp_path / "replay.db"
    report = audit.replay(output=output)
    import sqlite3

    with sqlite3.connect(output) as kept:
        assert kept.execute("SELECT count(*) FROM soa_runs").fetchone()[0] == \
            report.rows["soa_runs"]
        positions = dict(kept.execute("SELECT name, position FROM soa_projection_positions"))
    assert set(positions.values()) == {report.position}
    with pytest.raises(Exception, match="exists; give a new file"):
        audit.replay(output=output)


def the_second_process_dies() -> Any:
    os._exit(3)


@pytest.mark.parametrize("second", ["runs", "dies"])
def test_a_rebuild_in_two_processes_gives_the_same_tables(
    small_store: ApplicationServices, second: str
) -> None:
    """A small store rebuilt the way a big one is; a second process that dies leaves the
    whole rebuild to this one."""
    audit = audit_service_of(small_store)
    replays: Any = audit._replays  # type: ignore[attr-defined]
    replays._parallel_from = 1
    if second == "dies":
        replays._open_log = the_second_process_dies
    report = audit.replay(check=True)
    assert report.differences == [] and report.events == small_store.store.max_position()
    assert report.rows["soa_log_entries"] > 0 and report.rows["soa_runs"] > 0
