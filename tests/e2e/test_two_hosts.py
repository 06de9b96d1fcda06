"""Two hosts on two stations sharing one database: no occurrence runs twice."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest

from tests.e2e.cli import Soa, process_exists, run_events, wait_until
from tests.e2e.ledger import Ledger, check_each_effect_once
from tests.e2e.test_scheduling import (
    LOADED_MACHINE_SECONDS,
    add_probe,
    all_succeeded_until,
    every_second,
    runs_of,
    schedule_from,
    scheduled_instants,
)
from tests.support import PASSWORD


def hang_mid_attempt(ledger: Ledger, pid: int) -> tuple[str, int]:
    """SIGSTOP the host ``pid`` while it is inside an attempt; return that attempt."""
    while True:
        wait_until(lambda: in_progress(ledger, pid) is not None, timeout=LOADED_MACHINE_SECONDS,
                   interval=0.02)
        os.kill(pid, signal.SIGSTOP)
        attempt = in_progress(ledger, pid)
        if attempt is not None:
            return attempt
        os.kill(pid, signal.SIGCONT)  # it finished just before the stop: try again


def in_progress(ledger: Ledger, pid: int) -> tuple[str, int] | None:
    done = {(effect.run_id, effect.attempt) for effect in ledger.effects()}
    for call in ledger.calls():
        if call.pid == pid and (call.run_id, call.attempt) not in done:
            return call.run_id, call.attempt
    return None


@pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_hung_host_and_its_successor_never_complete_an_occurrence_twice(
    scheduling: tuple[Soa, Ledger],
) -> None:
    """On PostgreSQL: a suspended host's open transaction is ended by the server after
    10 s, so the other station can take over. (On SQLite a process suspended inside a
    write transaction holds the file's lock; SQLite serves one machine, see operations.)"""
    soa, ledger = scheduling
    task_id = add_probe(soa, "--every", "1s", "--catch-up", "all", "--max-attempts",
                        "5", "--backoff", "1s", "--param", "sleep=1.0")
    created = schedule_from(soa, task_id)
    hung: list[tuple[int, str, int]] = []
    for _ in range(3):
        old = soa.start("BIURO")
        run_id, attempt = hang_mid_attempt(ledger, old)  # BIURO's host hangs mid-attempt
        hung.append((old, run_id, attempt))
        try:
            wait_until(lambda: soa.status("KASA")["state"] == "stopped", timeout=90)
            soa.configure("KASA", PASSWORD)  # KASA takes over
            new = soa.start("KASA")
            wait_until(lambda new=new: in_progress(ledger, new) is not None
                       or any(effect.pid == new for effect in ledger.effects()),
                       timeout=LOADED_MACHINE_SECONDS)
        finally:
            os.kill(old, signal.SIGCONT)  # the old host wakes up, finds its lease lost
        wait_until(lambda old=old: not process_exists(old), timeout=LOADED_MACHINE_SECONDS)
        assert soa.status("BIURO")["host"]["pid"] == new
        soa.ok("KASA", "stop")
        soa.configure("BIURO", PASSWORD)  # back to BIURO for the next round
    soa.start("BIURO")
    until = datetime.now(UTC)
    expected = every_second(created, until)
    wait_until(lambda: all_succeeded_until(soa, task_id, expected), timeout=180)
    soa.ok("BIURO", "stop")

    runs = [run for run in runs_of(soa, task_id)
            if datetime.fromisoformat(str(run["scheduled_for"])) <= until]
    # Check the scheduled instants: every second since the task was added, none twice.
    assert scheduled_instants(runs) == expected
    events = run_events(soa)
    # Check that each old host really hung inside an attempt: its successor abandoned it.
    abandoned = {(str(event.originator_id), event.attempt) for event in events
                 if type(event).__name__ == "Abandoned"}
    assert all((run_id, attempt) in abandoned for _, run_id, attempt in hung)
    # Check that no old host called the operation after its lease was lost (the crash
    # recorded by the other station), and that nothing ran twice.
    crashed_at = {
        int(entry["message"].split("process ")[1].split()[0]): datetime.fromisoformat(
            entry["time"]).timestamp()
        for entry in soa.json("AUDIT", "logs", "--operation", "crashed")
    }
    for old, _, _ in hung:
        assert [call for call in ledger.calls()
                if call.pid == old and call.at > crashed_at[old]] == []
    check_each_effect_once(ledger, events, {str(run["id"]) for run in runs})
    assert soa.log_operations().count("lease_lost") == 3
