from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from engine.adapters.soa_store import memory_soa_store
from engine.domain.station_ownership import (
    STATION_OWNERSHIP_ID,
    AlreadyRunningError,
    ConfiguredElsewhereError,
    NotConfiguredError,
    NotRunningError,
    OwnershipError,
    RunningElsewhereError,
    StationOwnership,
)


def configured_on(station: str) -> StationOwnership:
    ownership = StationOwnership()
    ownership.assign(station)
    return ownership


def test_off_after_installation_so_it_cannot_start_until_configured() -> None:
    ownership = StationOwnership()
    with pytest.raises(NotConfiguredError):
        ownership.start("A", uuid4(), 1, "host")
    assert not ownership.is_running


def test_starts_only_on_its_own_station_and_only_once() -> None:
    ownership = configured_on("A")
    with pytest.raises(ConfiguredElsewhereError, match="configured on station A"):
        ownership.start("B", uuid4(), 1, "host")
    ownership.start("A", uuid4(), 1, "host")
    with pytest.raises(AlreadyRunningError):
        ownership.start("A", uuid4(), 2, "host")
    with pytest.raises(RunningElsewhereError):
        ownership.start("B", uuid4(), 2, "host")


def test_account_from_another_station_is_refused_while_running_and_moves_it_when_stopped() -> None:
    ownership = configured_on("A")
    session = uuid4()
    ownership.start("A", session, 1, "host")
    with pytest.raises(RunningElsewhereError, match="running on station A"):
        ownership.assign("B")
    # Check that the owner may set it while running, without moving anything.
    ownership.assign("A")
    ownership.stop(session)
    ownership.assign("B")
    assert ownership.station == "B"
    moved = ownership.collect_events()[-1]
    assert isinstance(moved, StationOwnership.Assigned)
    assert (moved.previous_station, moved.station) == ("A", "B")


def test_stop_crash_and_lease_lost_need_the_right_session() -> None:
    ownership = configured_on("A")
    session = uuid4()
    with pytest.raises(NotRunningError):
        ownership.stop(session)
    ownership.start("A", session, 7, "host")
    with pytest.raises(NotRunningError):
        ownership.stop(uuid4())
    with pytest.raises(OwnershipError):
        ownership.record_lease_lost("A", session, 7)
    ownership.record_crash(session, last_heartbeat=None)
    assert not ownership.is_running
    # Check that a host of the crashed session can still record that it lost the lease.
    ownership.record_lease_lost("A", session, 7)
    names = [type(event).__name__ for event in ownership.collect_events()]
    assert names == ["Created", "Assigned", "Started", "Crashed", "LeaseLost"]


def test_two_claims_from_the_same_version_cannot_both_be_recorded() -> None:
    store = memory_soa_store()
    store.save(configured_on("A"))
    first = store.repository.get(STATION_OWNERSHIP_ID)
    second = store.repository.get(STATION_OWNERSHIP_ID)
    first.start("A", uuid4(), 1, "host")
    second.assign("B")
    store.save(first)
    # Check that the store's optimistic concurrency refuses the second claim.
    with pytest.raises(IntegrityError):
        store.save(second)
    assert store.repository.get(STATION_OWNERSHIP_ID).station == "A"


def test_the_start_time_is_the_started_event_s_own_also_when_loaded() -> None:
    # It was once the previous event's time: a host started long after the service was
    # configured then looked like a reused pid and was recorded as crashed.
    import time

    store = memory_soa_store()
    ownership = configured_on("A")
    configured_at = ownership.modified_on
    time.sleep(0.01)
    ownership.start("A", uuid4(), 1, "host")
    assert ownership.started_at == ownership.modified_on > configured_at
    store.save(ownership)
    loaded = store.repository.get(ownership.id)
    assert loaded.started_at == loaded.modified_on == ownership.started_at
