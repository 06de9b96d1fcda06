"""The service's use cases on the real stores (SQLite file and PostgreSQL), with a movable clock."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine.adapters.schema import log_entries
from engine.application.errors import CloudEditionError, ConcurrentChangeError
from engine.application.service import ServiceApplication
from engine.domain.account import InvalidAccountError
from engine.domain.errors import DomainError
from engine.domain.log_retention import InvalidLogRetentionError
from engine.domain.station_ownership import (
    STATION_OWNERSHIP_ID,
    ConfiguredElsewhereError,
    NotConfiguredError,
    NotRunningError,
    RunningElsewhereError,
)
from engine.ports import CredentialRejectedError
from tests.support import PASSWORD, MovableClock, event_count, services_of

OpenStation = Callable[[str], ServiceApplication]


def operations(app: ServiceApplication) -> list[str]:
    return [entry.operation for entry in reversed(app.logs(limit=1000))]


def test_off_after_installation_then_configured_started_and_stopped(station_app: OpenStation) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    assert biuro.status().text == "Usługa nie jest skonfigurowana."
    with pytest.raises(NotConfiguredError):
        biuro.begin_host_session(pid=os.getpid(), host="m")

    biuro.set_account("FIRMA\\soa", PASSWORD)
    assert kasa.status().text == "Usługa skonfigurowana na stanowisku BIURO jest aktualnie zatrzymana."
    session = biuro.begin_host_session(pid=os.getpid(), host="m")
    # Check the texts from the owning station and from another one, in both languages.
    assert biuro.status().text == "Usługa jest uruchomiona na stanowisku BIURO."
    assert kasa.status("en").text == (
        "The service is running on station BIURO. You can stop it only on that station."
    )
    status = kasa.status()
    assert status.state == "running" and status.host is not None
    assert status.host.pid == os.getpid()
    with pytest.raises(RunningElsewhereError):
        kasa.running_session_to_stop()
    assert biuro.running_session_to_stop().session_id == session
    assert biuro.end_host_session(session, os.getpid()) is True
    assert biuro.status("en").text == "The service configured on station BIURO is currently stopped."
    assert operations(kasa) == ["configured", "started", "stopped"]
    assert services_of(biuro).leases.current() is None


def test_refusals_record_nothing(station_app: OpenStation) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    refused: list[Callable[[], object]] = [
        lambda: biuro.set_account("no-backslash", PASSWORD),
        lambda: biuro.set_account("FIRMA\\soa", ""),
        lambda: biuro.set_log_retention(4),
        lambda: biuro.set_log_retention(31),
        lambda: biuro.begin_host_session(1, "m"),
        lambda: biuro.running_session_to_stop(),
    ]
    for attempt in refused:
        with pytest.raises(DomainError):
            attempt()
    assert event_count(biuro) == 0
    biuro.set_account("FIRMA\\soa", PASSWORD)
    biuro.begin_host_session(1, "m")
    before = event_count(biuro)
    for attempt in [
        lambda: kasa.set_account("FIRMA\\soa", PASSWORD),
        lambda: kasa.begin_host_session(2, "m"),
        lambda: biuro.begin_host_session(3, "m"),
        lambda: kasa.running_session_to_stop(),
    ]:
        with pytest.raises(DomainError):
            attempt()
    # Check that nothing was appended by any refusal.
    assert event_count(biuro) == before


def test_error_types_and_messages(station_app: OpenStation) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    with pytest.raises(InvalidAccountError):
        biuro.set_account("FIRMA\\", PASSWORD)
    with pytest.raises(CredentialRejectedError) as rejected:
        biuro.set_account("FIRMA\\soa", "")
    assert PASSWORD not in rejected.value.message
    with pytest.raises(InvalidLogRetentionError, match="5 to 30"):
        biuro.set_log_retention(3)
    biuro.set_account("FIRMA\\soa", PASSWORD)
    with pytest.raises(ConfiguredElsewhereError, match="set the account on KASA"):
        kasa.begin_host_session(1, "m")
    with pytest.raises(NotRunningError):
        biuro.running_session_to_stop()


def test_account_on_another_station_moves_a_stopped_service(station_app: OpenStation) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    kasa.set_account("FIRMA\\soa2", PASSWORD)
    assert biuro.status().text == "Usługa skonfigurowana na stanowisku KASA jest aktualnie zatrzymana."
    assert biuro.configuration().account == "FIRMA\\soa2"
    assert operations(biuro) == ["configured", "account_changed", "moved"] or operations(
        biuro
    ) == ["configured", "moved", "account_changed"]


def age_log_entries(app: ServiceApplication, days: int) -> None:
    """Make every log entry so far ``days`` days older."""
    services_of(app).read_models.catch_up()  # the entries of the commands so far exist
    with services_of(app).sql_engine.begin() as connection:
        for row in connection.execute(select(log_entries.c.id, log_entries.c.time)).all():
            connection.execute(
                update(log_entries).where(log_entries.c.id == row.id)
                .values(time=row.time - timedelta(days=days))
            )


def stored_log_entries(app: ServiceApplication) -> int:
    with services_of(app).sql_engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(log_entries)).scalar_one())


def test_retention_from_any_station_deletes_and_hides_older_entries(
    station_app: OpenStation,
) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    assert biuro.configuration().log_retention_days == 10
    age_log_entries(biuro, 6)
    # Check that a 6-day-old entry is shown with the default 10 days...
    assert operations(kasa) == ["configured"]
    assert kasa.set_log_retention(5) is True
    # ...and is deleted from the database once the retention is 5 days.
    assert operations(biuro) == ["log_retention_changed"]
    assert stored_log_entries(biuro) == 1
    assert biuro.set_log_retention(5) is False


def test_entries_older_than_the_retention_are_never_shown_even_before_deletion(
    station_app: OpenStation,
) -> None:
    biuro = station_app("BIURO")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    age_log_entries(biuro, 11)
    assert operations(biuro) == []
    assert stored_log_entries(biuro) == 1
    assert biuro.prune_logs() == 1
    assert stored_log_entries(biuro) == 0


def test_dead_host_shows_stopped_and_its_crash_is_recorded_once(
    station_app: OpenStation, clock: MovableClock
) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    session = biuro.begin_host_session(4242, "m")
    clock.advance(10)
    assert biuro.heartbeat(session) is True
    clock.advance(16)  # the lease (15 s) has expired: the host died
    assert kasa.status().state == "stopped"
    assert biuro.status().state == "stopped"
    assert services_of(biuro).leases.current() is None  # the dead host's lease row went with it
    kasa.logs()
    assert operations(biuro).count("crashed") == 1
    crashed = biuro.logs(status="error")
    assert len(crashed) == 1 and "4242" in crashed[0].message
    # Check that the old host learns it lost the lease and records that.
    assert biuro.heartbeat(session) is False
    biuro.record_lease_lost(session, 4242)
    assert operations(biuro)[-2:] == ["crashed", "lease_lost"]


def test_takeover_after_a_crash_and_the_old_host_loses_its_lease(
    station_app: OpenStation, clock: MovableClock
) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    old_session = biuro.begin_host_session(1, "m")
    with pytest.raises(RunningElsewhereError):
        kasa.check_can_set_account("FIRMA\\soa")
    clock.advance(20)
    # Setting the account on KASA records the crash and moves the service in one save.
    kasa.set_account("FIRMA\\soa", PASSWORD)
    new_session = kasa.begin_host_session(2, "m")
    assert biuro.status().text == (
        "Usługa jest uruchomiona na stanowisku KASA. Możesz ją zatrzymać tylko na tym stanowisku."
    )
    assert biuro.heartbeat(old_session) is False
    assert biuro.end_host_session(old_session, 1) is False
    assert kasa.heartbeat(new_session) is True
    assert operations(kasa) == [
        "configured", "started", "crashed", "moved", "account_changed", "started", "lease_lost",
    ] or operations(kasa) == [
        "configured", "started", "crashed", "account_changed", "moved", "started", "lease_lost",
    ]


def test_start_records_the_crash_of_the_previous_host(
    station_app: OpenStation, clock: MovableClock
) -> None:
    biuro = station_app("BIURO")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    biuro.begin_host_session(1, "m")
    clock.advance(30)
    biuro.begin_host_session(2, "m")
    assert operations(biuro) == ["configured", "started", "crashed", "started"]


def test_stale_writer_is_refused_not_retried(station_app: OpenStation) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    stale = services_of(kasa).store.get(STATION_OWNERSHIP_ID)
    biuro.begin_host_session(1, "m")
    stale.assign("KASA")
    with pytest.raises(ConcurrentChangeError, match="run the command again"):
        services_of(kasa).uow.save(stale)


def test_projections_rebuild_to_the_same_rows(station_app: OpenStation, clock: MovableClock) -> None:
    biuro, kasa = station_app("BIURO"), station_app("KASA")
    biuro.set_account("FIRMA\\soa", PASSWORD)
    session = biuro.begin_host_session(1, "m")
    kasa.set_log_retention(20)
    biuro.end_host_session(session, 1)
    kasa.set_account("FIRMA\\soa", PASSWORD)
    before = (biuro.view(), [entry.as_json() for entry in biuro.logs(limit=100)])
    runner = services_of(biuro).read_models.runner
    applied = runner.rebuild()
    assert applied == len(runner.projections) * event_count(biuro)
    after = (kasa.view(), [entry.as_json() for entry in kasa.logs(limit=100)])
    assert before == after


def test_cloud_edition_has_no_service_configuration(
    soa_home: object, database_url: str | None, clock: MovableClock
) -> None:
    from pathlib import Path

    from tests.support import open_app

    app = open_app(Path(str(soa_home)), database_url, "BIURO", clock=clock, edition="cloud")
    for command in [
        lambda: app.status(),
        lambda: app.set_account("FIRMA\\soa", PASSWORD),
        lambda: app.set_log_retention(12),
        lambda: app.configuration(),
        lambda: app.begin_host_session(1, "m"),
        lambda: app.running_session_to_stop(),
    ]:
        with pytest.raises(CloudEditionError, match="does not exist in the cloud edition"):
            command()
    assert event_count(app) == 0
    services_of(app).close()
