"""Two stations race to claim and start the service, 200 times, from two real processes."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from pathlib import Path
from typing import Any

from engine.domain.errors import DomainError
from engine.domain.station_ownership import StationOwnership
from tests.support import PASSWORD, open_app, open_services

ROUNDS = 200


def contend(home: str, database_url: str | None, station: str, barrier: Any, results: Any) -> None:
    """Each round: set the account here (claim) and start; the winner then stops."""
    try:
        app = open_app(Path(home), database_url, station)
        pid = os.getpid()
        for round_number in range(ROUNDS):
            barrier.wait()
            session = None
            try:
                app.set_account("FIRMA\\soa", PASSWORD)
                session = app.begin_host_session(pid, station)
                outcome = "started"
            except DomainError as refusal:
                outcome = f"refused: {refusal.message}"
            barrier.wait()
            results.put((round_number, station, outcome))
            if session is not None:
                app.end_host_session(session, pid)
            barrier.wait()
    except Exception:
        results.put((-1, station, traceback.format_exc()))
        barrier.abort()


def test_exactly_one_station_owns_and_runs_the_service_after_every_round(
    soa_home: Path, database_url: str | None
) -> None:
    soa_home.mkdir(parents=True)
    open_services(soa_home, database_url, "SETUP").close()  # tables exist before the race
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2, timeout=60)
    results = context.Queue()
    workers = [
        context.Process(target=contend, args=(str(soa_home), database_url, station, barrier, results))
        for station in ("BIURO", "KASA")
    ]
    for worker in workers:
        worker.start()
    outcomes: dict[int, dict[str, str]] = {}
    for _ in range(2 * ROUNDS):
        round_number, station, outcome = results.get(timeout=120)
        assert round_number >= 0, outcome
        outcomes.setdefault(round_number, {})[station] = outcome
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    # Check that every round had exactly one winner, and the loser a clear refusal.
    for round_number, by_station in outcomes.items():
        winners = [station for station, outcome in by_station.items() if outcome == "started"]
        assert len(winners) == 1, (round_number, by_station)
        loser = next(outcome for outcome in by_station.values() if outcome != "started")
        assert loser.startswith("refused: ") and "\n" not in loser

    # Check the event log: 200 starts, each followed by its stop, never two running at once.
    audit = open_services(soa_home, database_url, "AUDIT")
    running = None
    starts = 0
    for _, event in audit.store.events_after(0, limit=100_000, stop=audit.store.max_position()):
        if isinstance(event, StationOwnership.Started):
            assert running is None
            running = event.session_id
            starts += 1
        elif isinstance(event, StationOwnership.Stopped | StationOwnership.Crashed):
            assert event.session_id == running
            running = None
    assert starts == ROUNDS
    assert running is None
    audit.close()
