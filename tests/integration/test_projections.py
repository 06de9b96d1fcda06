"""Projections: each event applied exactly once, also with concurrent catch-ups; rebuildable."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select

from engine.adapters.schema import log_entries
from engine.application.service import ServiceApplication
from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration
from tests.support import PASSWORD, event_count, services_of

OpenStation = Callable[[str], ServiceApplication]
CHANGES = 600


def record_retention_changes(app: ServiceApplication, count: int) -> None:
    """Append ``count`` retention changes (one log entry each) without catching up."""
    configuration = services_of(app).store.get(SERVICE_CONFIGURATION_ID)
    assert isinstance(configuration, ServiceConfiguration)
    for index in range(count):
        configuration.set_log_retention(11 + index % 2, "BIURO")
        if index % 100 == 99:
            services_of(app).store.save(configuration)
    services_of(app).store.save(configuration)


def log_rows(app: ServiceApplication) -> tuple[int, int]:
    with services_of(app).sql_engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(log_entries)).scalar_one()
        distinct = connection.execute(
            select(func.count(func.distinct(log_entries.c.notification_id)))
        ).scalar_one()
    return int(total), int(distinct)


def test_concurrent_catch_ups_apply_every_event_exactly_once(station_app: OpenStation) -> None:
    writer = station_app("BIURO")
    writer.set_account("FIRMA\\soa", PASSWORD)
    record_retention_changes(writer, CHANGES)
    readers = [station_app(f"KASA-{index}") for index in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(readers))

    def catch_up(reader: ServiceApplication) -> None:
        try:
            barrier.wait()
            services_of(reader).read_models.runner.catch_up()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=catch_up, args=(reader,)) for reader in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Check: one entry per log-worthy event (configured + the changes), none twice.
    assert log_rows(writer) == (1 + CHANGES, 1 + CHANGES)
    for reader in readers:
        assert services_of(reader).read_models.runner.position("log_list") == event_count(writer)
    assert writer.view().log_retention_days == 11 + (CHANGES - 1) % 2


def test_rebuild_from_scratch_gives_the_same_read_models(station_app: OpenStation) -> None:
    app = station_app("BIURO")
    app.set_account("FIRMA\\soa", PASSWORD)
    record_retention_changes(app, 50)
    before = (app.view(), [entry.as_json() for entry in app.logs(limit=1000)])
    services_of(app).read_models.runner.rebuild()
    assert (app.view(), [entry.as_json() for entry in app.logs(limit=1000)]) == before
    assert log_rows(app) == (51, 51)


def test_events_unknown_to_a_projection_are_skipped(station_app: OpenStation) -> None:
    app = station_app("BIURO")
    app.set_account("FIRMA\\soa", PASSWORD)
    # Created and Assigned(first station) events make no log entry; Configured does.
    assert event_count(app) == 4
    services_of(app).read_models.catch_up()  # commands leave that to the next reader
    assert log_rows(app) == (1, 1)


def test_a_catch_up_ends_while_another_process_keeps_recording(
    station_app: OpenStation,
) -> None:
    writer = station_app("BIURO")
    writer.set_account("FIRMA\\soa", PASSWORD)
    record_retention_changes(writer, 200)
    reader = station_app("KASA")
    recorded_before = event_count(writer)
    runner = services_of(reader).read_models.runner
    read_positions = runner._positions_and_head
    rounds = {"count": 0}

    def another_event_each_round() -> tuple[dict[str, int], int]:
        # Another process records an event between any two rounds of the catch-up
        # (bounded, so that a catch-up chasing the head fails the check, not hangs).
        rounds["count"] += 1
        if rounds["count"] <= 50:
            configuration = services_of(writer).store.get(SERVICE_CONFIGURATION_ID)
            configuration.set_log_retention(5 + rounds["count"] % 2, "BIURO")
            services_of(writer).store.save(configuration)
        return read_positions()

    runner._positions_and_head = another_event_each_round  # type: ignore[method-assign]
    runner.catch_up()
    assert rounds["count"] <= 3
    assert runner.position("log_list") >= recorded_before
