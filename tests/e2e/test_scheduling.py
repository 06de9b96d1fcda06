"""The scheduler in the real host process, on real time: runs, live changes, SIGKILLs."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import UTC, datetime, timedelta

from tests.e2e.cli import Soa, process_exists, run_events, wait_until
from tests.e2e.ledger import Ledger, check_each_effect_once

LOADED_MACHINE_SECONDS = 60
"""How long an e2e test waits for something the host does within seconds when idle."""


def add_probe(soa: Soa, *args: str, station: str = "BIURO") -> str:
    task = soa.json(station, "tasks", "add", "probe", "--company", "Firma A", "--name", "probe",
                    *args)
    return str(task["id"])


def runs_of(soa: Soa, task_id: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = soa.json("AUDIT", "runs", "list", "--task", task_id,
                                              "--limit", "100000")
    return runs


def scheduled_instants(runs: list[dict[str, object]]) -> list[datetime]:
    return sorted(datetime.fromisoformat(str(run["scheduled_for"])) for run in runs)


def every_second(after: datetime, until: datetime) -> list[datetime]:
    """The instants of an ``--every 1s`` task counted from ``after``: whole seconds."""
    first = after.replace(microsecond=0) + timedelta(seconds=1)
    return [first + timedelta(seconds=index)
            for index in range(int((until - first).total_seconds()) + 1)]


def schedule_from(soa: Soa, task_id: str) -> datetime:
    return datetime.fromisoformat(str(soa.json("AUDIT", "tasks", "show", task_id)["schedule_from"]))


def all_succeeded_until(soa: Soa, task_id: str, expected: list[datetime]) -> bool:
    """True when the task has a succeeded run for each of ``expected`` (and none of them is
    missing: an empty run list is not "all succeeded")."""
    succeeded = {
        datetime.fromisoformat(str(run["scheduled_for"])) for run in runs_of(soa, task_id)
        if run["status"] == "succeeded"
    }
    return bool(expected) and set(expected) <= succeeded


def test_every_second_on_real_time_each_occurrence_once(scheduling: tuple[Soa, Ledger]) -> None:
    soa, ledger = scheduling
    soa.start("BIURO")
    task_id = add_probe(soa, "--every", "1s")
    wait_until(lambda: sum(r["status"] == "succeeded" for r in runs_of(soa, task_id)) >= 4,
               timeout=LOADED_MACHINE_SECONDS)
    soa.ok("BIURO", "stop")
    runs = runs_of(soa, task_id)
    instants = scheduled_instants(runs)
    # Check: every second from the task's creation on, none twice, none missing.
    assert instants == every_second(schedule_from(soa, task_id), instants[-1])
    succeeded = {str(run["id"]) for run in runs if run["status"] == "succeeded"}
    check_each_effect_once(ledger, run_events(soa), succeeded)
    assert {effect.run_id for effect in ledger.effects()} == succeeded
    entries = soa.json("AUDIT", "logs", "--operation", "probe", "--company", "Firma A")
    assert {entry["run_id"] for entry in entries} == succeeded
    assert all(entry["status"] == "ok" and "effects=1" in entry["message"] for entry in entries)


def test_a_task_added_on_another_station_runs_without_restart(
    scheduling: tuple[Soa, Ledger],
) -> None:
    soa, _ = scheduling
    soa.start("BIURO")
    task_id = add_probe(soa, "--every", "1s", station="KASA")
    wait_until(lambda: any(r["status"] == "succeeded" for r in runs_of(soa, task_id)),
               timeout=LOADED_MACHINE_SECONDS)
    # Check that a pause from another station holds further runs: once the host has
    # picked it up (no run recorded for 3 s), none is recorded for 5 s more.
    soa.ok("KASA", "tasks", "pause", task_id)
    counts = [len(runs_of(soa, task_id))]

    def settled() -> bool:
        time.sleep(3)
        counts.append(len(runs_of(soa, task_id)))
        return counts[-1] == counts[-2]

    wait_until(settled, timeout=LOADED_MACHINE_SECONDS, interval=0)
    time.sleep(5)
    assert len(runs_of(soa, task_id)) == counts[-1]
    soa.ok("BIURO", "stop")


def test_retries_then_success_and_failure_warning(scheduling: tuple[Soa, Ledger]) -> None:
    soa, _ = scheduling
    soa.start("BIURO")
    flaky = add_probe(soa, "--every", "1h", "--max-attempts", "3", "--backoff", "1s",
                      "--param", "fail_attempts=2")
    run_id = soa.json("BIURO", "tasks", "run-now", flaky)["run_id"]
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"] == "succeeded",
               timeout=LOADED_MACHINE_SECONDS)
    shown = soa.json("AUDIT", "runs", "show", run_id)
    assert shown["attempts"] == 3 and shown["manual"] is True
    assert [entry["event"] for entry in shown["history"]] == [
        "Scheduled", "Started", "AttemptFailed", "RetryScheduled", "Started", "AttemptFailed",
        "RetryScheduled", "Started", "Succeeded",
    ]
    broken = add_probe(soa, "--every", "1s", "--max-attempts", "1",
                       "--param", "fail_attempts=99")
    wait_until(lambda: soa.status("AUDIT")["warnings"] != [], timeout=LOADED_MACHINE_SECONDS)
    assert broken in soa.status("AUDIT")["warnings"][0]
    soa.ok("BIURO", "tasks", "disable", broken)
    soa.ok("BIURO", "stop")


def in_progress_call_of(ledger: Ledger, pid: int) -> bool:
    """True while the host ``pid`` is inside an attempt: called, no effect written yet."""
    done = {(effect.run_id, effect.attempt) for effect in ledger.effects()}
    return any(call.pid == pid and (call.run_id, call.attempt) not in done
               for call in ledger.calls())


def test_sigkill_during_runs_loses_nothing_and_completes_nothing_twice(
    scheduling: tuple[Soa, Ledger],
) -> None:
    soa, ledger = scheduling
    task_id = add_probe(soa, "--every", "1s", "--catch-up", "all", "--max-attempts",
                        "10", "--backoff", "1s", "--param", "sleep=0.4")
    created = schedule_from(soa, task_id)
    rng = random.Random(20261128)
    for kill in range(20):
        pid = soa.start("BIURO")
        if kill % 2 == 0:  # aim at an attempt in progress...
            wait_until(lambda pid=pid: in_progress_call_of(ledger, pid),
                       timeout=LOADED_MACHINE_SECONDS, interval=0.02)
            time.sleep(rng.uniform(0, 0.2))
        else:  # ...or at any moment (recording, starting, finishing)
            time.sleep(rng.uniform(0.3, 1.5))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: not process_exists(pid), timeout=LOADED_MACHINE_SECONDS)
    soa.start("BIURO")
    until = datetime.now(UTC)
    expected = every_second(created, until)  # every occurrence since the task was added
    wait_until(lambda: all_succeeded_until(soa, task_id, expected), timeout=180)
    soa.ok("BIURO", "stop")

    runs = [run for run in runs_of(soa, task_id)
            if datetime.fromisoformat(str(run["scheduled_for"])) <= until]
    # Check: nothing lost, nothing recorded twice, from the task's creation to the end.
    assert scheduled_instants(runs) == expected
    # Check: the 20 kills were 20 crashes, and some hit attempts that were running.
    assert soa.log_operations().count("crashed") == 20
    events = run_events(soa)
    abandoned_runs = {str(event.originator_id) for event in events
                      if type(event).__name__ == "Abandoned"}
    assert len(abandoned_runs) >= 5
    calls = ledger.calls()
    assert len(calls) > len(runs)
    # Check: no attempt ran twice, no effect was written twice but after a dead host's
    # attempt, and every succeeded run did its effect.
    check_each_effect_once(ledger, events, {str(run["id"]) for run in runs})
    assert sum(effect.applied for effect in ledger.effects()
               if effect.run_id in {str(run["id"]) for run in runs}) == len(runs)
