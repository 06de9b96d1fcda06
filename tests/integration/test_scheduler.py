"""The task scheduler in-process, on a movable clock: catch-up policies, overlap, timeouts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from engine.operations.contract import RunContext
from engine.operations.registry import OperationRegistry
from engine.scheduling import parse_schedule
from engine.service_host.bootstrap import ApplicationServices
from tests.integration.scheduling import (
    Recorder,
    add_task,
    new_scheduler,
    scheduled,
    settle,
    wait_for,
)
from tests.support import MovableClock, open_services


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def services(
    soa_home: Path, database_url: str | None, clock: MovableClock, recorder: Recorder
) -> Iterator[ApplicationServices]:
    registry = OperationRegistry({"recorder": lambda: recorder}, load_entry_points=False)
    opened = open_services(soa_home, database_url, "BIURO", clock=clock, registry=registry)
    opened.tasks.add_company("Firma A")
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("policy", "expected_runs"), [("all", 10), ("latest", 1), ("skip", 0)]
)
def test_catch_up_after_downtime_follows_the_policy(
    services: ApplicationServices, clock: MovableClock, policy: str, expected_runs: int
) -> None:
    task_id = add_task(services, clock, catch_up=policy)
    anchor = services.tasks.task(str(task_id)).task.schedule.anchor
    assert anchor is not None
    first = new_scheduler(services)
    first.refresh()
    settle(first, services)
    clock.advance(5 * 3600 + 300)  # 5 h 5 min down: 30 occurrences missed, none on time
    restarted = new_scheduler(services)
    restarted.refresh()
    settle(restarted, services)
    runs = scheduled(services, task_id)
    statuses = {run.status for run in services.runs.runs(task=str(task_id), limit=100)}
    assert statuses <= {"succeeded"}
    # Check the replayed set exactly: the most recent of the 30 missed (sorted here; the
    # order plan_due gives them in is checked in tests/unit/test_catch_up.py).
    missed = [anchor + timedelta(minutes=10 * k) for k in range(1, 31)]
    assert runs == (missed[-expected_runs:] if expected_runs else [])
    entries = services.service.logs(operation="recorder", limit=100)
    catch_up = [entry for entry in entries if entry.message.startswith("Catch-up")]
    assert len(catch_up) == 1
    assert catch_up[0].status == ("warning" if policy == "all" else "ok")
    assert "30 missed" in catch_up[0].message
    # Check that a second restart replays nothing again.
    again = new_scheduler(services)
    again.refresh()
    settle(again, services)
    assert scheduled(services, task_id) == runs


def test_occurrences_missed_while_paused_are_caught_up_but_not_while_disabled(
    services: ApplicationServices, clock: MovableClock
) -> None:
    paused = add_task(services, clock, catch_up="all")
    disabled = add_task(services, clock, catch_up="all")
    scheduler = new_scheduler(services, max_catch_up=100)
    scheduler.refresh()
    services.tasks.set_task_state(str(paused), "pause")
    services.tasks.set_task_state(str(disabled), "disable")
    scheduler.refresh()
    clock.advance(3600 + 120)
    scheduler.fire_all()
    services.tasks.set_task_state(str(paused), "resume")
    services.tasks.set_task_state(str(disabled), "enable")
    scheduler.refresh()
    settle(scheduler, services)
    assert len(scheduled(services, paused)) == 6
    assert scheduled(services, disabled) == []


def test_one_run_of_a_task_at_a_time_and_the_bound_across_tasks(
    services: ApplicationServices, clock: MovableClock, recorder: Recorder
) -> None:
    tasks = [add_task(services, clock, every="1m", seconds=0.3) for _ in range(4)]
    scheduler = new_scheduler(services, max_concurrent_runs=2, max_catch_up=100)
    scheduler.refresh()
    clock.advance(6 * 60 + 1)  # six occurrences of each task due
    scheduler.fire_all()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(recorder.calls) < 24:
        scheduler.dispatch()
        time.sleep(0.05)
    settle(scheduler, services)
    assert len(recorder.calls) == 24
    assert recorder.max_concurrent <= 2
    for task_id in tasks:
        runs = services.runs.runs(task=str(task_id), limit=100)
        assert [run.status for run in runs] == ["succeeded"] * 6
        spans = sorted((run.started_at, run.finished_at) for run in runs)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))


def test_a_run_past_its_timeout_is_cancelled_and_recorded(
    services: ApplicationServices, clock: MovableClock
) -> None:
    task_id = add_task(services, clock, every="1h", seconds=30.0, timeout=0.5)
    scheduler = new_scheduler(services)
    scheduler.refresh()
    run_id = services.runs.run_now(str(task_id))
    scheduler.dispatch()
    wait_for(lambda: services.runs.run(str(run_id))[0].status not in ("scheduled", "running"),
             timeout=15)
    settle(scheduler, services)
    view, history = services.runs.run(str(run_id))
    assert view.status == "failed"
    failed = next(entry for entry in history if entry.event == "AttemptFailed")
    assert failed.details["timed_out"] is True
    assert failed.details["error_class"] == "TimeoutError"


def test_runs_left_running_by_a_dead_host_are_abandoned_and_retried(
    services: ApplicationServices, clock: MovableClock, recorder: Recorder
) -> None:
    task_id = add_task(services, clock, every="1h")
    services.tasks.edit_task(str(task_id), max_attempts=2)
    run_id = services.runs.run_now(str(task_id))
    run = services.store.get(run_id)
    run.start("BIURO", 999, uuid4())  # a host that died during this attempt
    services.store.save(run)
    scheduler = new_scheduler(services)
    scheduler.start(timers=False)
    try:
        clock.advance(120)  # past the retry delay
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not recorder.calls:
            scheduler.dispatch()
            time.sleep(0.05)
    finally:
        settle(scheduler, services)
    view, history = services.runs.run(str(run_id))
    assert view.status == "succeeded" and view.attempts == 2
    assert [entry.event for entry in history] == [
        "Scheduled", "Started", "Abandoned", "RetryScheduled", "Started", "Succeeded",
    ]


def test_many_tasks_due_together_each_occurrence_runs_once_and_the_run_list_is_exact(
    services: ApplicationServices, clock: MovableClock, recorder: Recorder
) -> None:
    tasks = [add_task(services, clock, every="1m") for _ in range(12)]
    scheduler = new_scheduler(services, max_concurrent_runs=4, max_catch_up=100)
    scheduler.refresh()
    clock.advance(5 * 60 + 1)  # five occurrences of each task due: 60 runs at once
    transactions_before = services.writer.transactions
    scheduler.fire_all()
    wait_for(lambda: scheduler.outcomes_recorded >= 60)
    settle(scheduler, services)
    assert sorted(run_id for run_id, _ in recorder.calls) == sorted(
        {run_id for run_id, _ in recorder.calls}
    )
    assert len(recorder.calls) == 60
    assert recorder.max_concurrent <= 4
    # Check: concurrent saves shared transactions (60 runs, 180 events).
    assert services.writer.transactions - transactions_before < 120
    # Check: the run and task lists, written in folded batches, equal a rebuild of them.

    def lists() -> tuple[list[object], list[object]]:
        return (
            sorted((run.as_json() for run in services.runs.runs(limit=None)),
                   key=lambda item: str(item["id"])),
            [(summary.task.id, summary.task.consecutive_failures, summary.task.version)
             for summary in services.tasks.tasks()],
        )

    incremental = lists()
    services.service.rebuild_projections()
    assert lists() == incremental
    for task_id in tasks:
        assert [run.status for run in services.runs.runs(task=str(task_id))] == (
            ["succeeded"] * 5
        )


def test_a_failed_attempt_is_retried_by_the_same_host_after_its_backoff(
    soa_home: Path, database_url: str | None, clock: MovableClock
) -> None:
    class FailsOnce:
        kind = "fails_once"
        params_model = None

        def __init__(self) -> None:
            self.attempts: list[int] = []

        def run(self, ctx: RunContext) -> Mapping[str, int] | None:
            self.attempts.append(ctx.attempt)
            if ctx.attempt == 1:
                raise ConnectionError("partner refused")
            return {"sent": 1}

    operation = FailsOnce()
    registry = OperationRegistry({"fails_once": lambda: operation}, load_entry_points=False)
    built = open_services(soa_home, database_url, "BIURO", clock=clock, registry=registry)
    try:
        built.tasks.add_company("Firma A")
        task_id: UUID = built.tasks.add_task(
            "fails_once", company="Firma A", name="retried",
            schedule=parse_schedule(every="1h", anchor=clock.now()), catch_up="skip",
            max_attempts=2, backoff_seconds=30.0,
        )
        scheduler = new_scheduler(built)
        scheduler.refresh()
        run_id = built.runs.run_now(str(task_id))
        scheduler.dispatch()
        wait_for(lambda: scheduler.outcomes_recorded >= 1, timeout=15)
        assert built.runs.run(str(run_id))[0].status == "retrying"
        clock.advance(60)  # past the backoff (30 s, jitter at most +50 %)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and scheduler.outcomes_recorded < 2:
            scheduler.refresh()
            time.sleep(0.05)
        settle(scheduler, built)
        view, _ = built.runs.run(str(run_id))
        assert (view.status, view.attempts, operation.attempts) == ("succeeded", 2, [1, 2])
    finally:
        built.close()
