"""The scheduler in the real host process, on real time: runs, live changes, SIGKILLs."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.cli import Soa, process_exists, succeeded_per_run, wait_until


def all_succeeded_until(soa: Soa, task_id: str, until: datetime) -> bool:
    """True when every run of the task scheduled up to ``until`` has succeeded."""
    return all(
        run["status"] == "succeeded" for run in runs_of(soa, task_id)
        if datetime.fromisoformat(str(run["scheduled_for"])) <= until
    )


def add_probe(soa: Soa, ledger: str, *args: str, station: str = "BIURO") -> str:
    task = soa.json(station, "tasks", "add", "probe", "--company", "Firma A", "--name", "probe",
                    "--param", f"ledger={ledger}", *args)
    return str(task["id"])


def ledger_rows(ledger: str, table: str) -> list[tuple[str, ...]]:
    if not Path(ledger).exists():
        return []
    with sqlite3.connect(ledger, timeout=60) as connection:
        try:
            return list(connection.execute(f"SELECT * FROM {table}"))
        except sqlite3.OperationalError:
            return []


def runs_of(soa: Soa, task_id: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = soa.json("AUDIT", "runs", "list", "--task", task_id,
                                              "--limit", "100000")
    return runs


def test_every_second_on_real_time_each_occurrence_once(scheduling: tuple[Soa, str]) -> None:
    soa, ledger = scheduling
    soa.start("BIURO")
    task_id = add_probe(soa, ledger, "--every", "1s")
    wait_until(lambda: sum(r["status"] == "succeeded" for r in runs_of(soa, task_id)) >= 4,
               timeout=30)
    soa.ok("BIURO", "stop")
    runs = runs_of(soa, task_id)
    instants = sorted(datetime.fromisoformat(str(run["scheduled_for"])) for run in runs)
    # Check: one run per second, none twice, none missing in between.
    assert len(set(instants)) == len(instants)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(instants))
    effects = ledger_rows(ledger, "effects")
    succeeded = {str(run["id"]) for run in runs if run["status"] == "succeeded"}
    assert {row[0] for row in effects} == succeeded
    entries = soa.json("AUDIT", "logs", "--operation", "probe", "--company", "Firma A")
    assert {entry["run_id"] for entry in entries} == succeeded
    assert all(entry["status"] == "ok" and "effects=1" in entry["message"] for entry in entries)


def test_a_task_added_on_another_station_runs_without_restart(
    scheduling: tuple[Soa, str],
) -> None:
    soa, ledger = scheduling
    soa.start("BIURO")
    added = time.monotonic()
    task_id = add_probe(soa, ledger, "--every", "1s", station="KASA")
    wait_until(lambda: any(r["status"] == "succeeded" for r in runs_of(soa, task_id)), timeout=5)
    assert time.monotonic() - added <= 5 + 2  # 5 s to pick up, plus the command's own time
    # Check that a pause from another station holds further runs.
    soa.ok("KASA", "tasks", "pause", task_id)
    time.sleep(2.5)
    paused_count = len(runs_of(soa, task_id))
    time.sleep(2.5)
    assert len(runs_of(soa, task_id)) == paused_count
    soa.ok("BIURO", "stop")


def test_retries_then_success_and_failure_warning(scheduling: tuple[Soa, str]) -> None:
    soa, ledger = scheduling
    soa.start("BIURO")
    flaky = add_probe(soa, ledger, "--every", "1h", "--max-attempts", "3", "--backoff", "1s",
                      "--param", "fail_attempts=2")
    run_id = soa.json("BIURO", "tasks", "run-now", flaky)["run_id"]
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"] == "succeeded",
               timeout=30)
    shown = soa.json("AUDIT", "runs", "show", run_id)
    assert shown["attempts"] == 3 and shown["manual"] is True
    assert [entry["event"] for entry in shown["history"]] == [
        "Scheduled", "Started", "AttemptFailed", "RetryScheduled", "Started", "AttemptFailed",
        "RetryScheduled", "Started", "Succeeded",
    ]
    broken = add_probe(soa, ledger, "--every", "1s", "--max-attempts", "1",
                       "--param", "fail_attempts=99")
    wait_until(lambda: soa.status("AUDIT")["warnings"] != [], timeout=30)
    assert broken in soa.status("AUDIT")["warnings"][0]
    soa.ok("BIURO", "tasks", "disable", broken)
    soa.ok("BIURO", "stop")


def test_sigkill_during_runs_loses_nothing_and_completes_nothing_twice(
    scheduling: tuple[Soa, str],
) -> None:
    soa, ledger = scheduling
    task_id = add_probe(soa, ledger, "--every", "1s", "--catch-up", "all", "--max-attempts",
                        "10", "--backoff", "1s", "--param", "sleep=0.4")
    rng = random.Random(20261128)
    for _ in range(20):
        pid = soa.start("BIURO")
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: not process_exists(pid), timeout=10)
    soa.start("BIURO")
    until = datetime.now(UTC)  # every occurrence up to now must end succeeded, once
    wait_until(lambda: all_succeeded_until(soa, task_id, until), timeout=120)
    soa.ok("BIURO", "stop")

    runs = [run for run in runs_of(soa, task_id)
            if datetime.fromisoformat(str(run["scheduled_for"])) <= until]
    instants = sorted(datetime.fromisoformat(str(run["scheduled_for"])) for run in runs)
    # Check: nothing lost (every second from the first occurrence to the last) ...
    assert len(instants) == len(set(instants))
    gaps = [b - a for a, b in itertools.pairwise(instants)]
    assert all(gap == timedelta(seconds=1) for gap in gaps), gaps
    # ... and nothing completed twice: one Succeeded per run in the event log,
    succeeded = succeeded_per_run(soa)
    assert succeeded and max(succeeded.values()) == 1
    # ... and one effect per succeeded run, though killed attempts were called again.
    effects = Counter(row[0] for row in ledger_rows(ledger, "effects"))
    done = {str(run["id"]) for run in runs if run["status"] == "succeeded"}
    assert done <= set(effects) and set(effects) == set(succeeded)
    assert max(effects.values()) == 1
    calls = ledger_rows(ledger, "calls")
    assert len(calls) >= len(done)
    assert "crashed" in soa.log_operations()
