"""The task scheduler in-process, on a movable clock: catch-up policies, overlap, timeouts."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from engine.adapters.notifier_log import LoggingNotifier
from engine.domain.task_definition import RetryPolicy
from engine.operations.contract import RunContext
from engine.operations.registry import OperationRegistry
from engine.scheduling import parse_schedule
from engine.service_host.bootstrap import Engine, build_engine
from engine.service_host.scheduler import SchedulerSettings, TaskScheduler
from tests.support import MovableClock, settings_for


class SleepParams(BaseModel):
    seconds: float = 0.0


class Recorder:
    """An in-process operation that remembers its calls (run id, scheduled instant)."""

    kind = "recorder"
    params_model = SleepParams

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.lock = threading.Lock()
        self.concurrent = 0
        self.max_concurrent = 0

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        with self.lock:
            self.calls.append((ctx.run_id, ctx.scheduled_for))
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        deadline = time.monotonic() + ctx.params.seconds
        while time.monotonic() < deadline and not ctx.is_cancelled():
            time.sleep(0.005)
        with self.lock:
            self.concurrent -= 1
        return {"calls": 1}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def engine(
    soa_home: Path, database_url: str | None, clock: MovableClock, recorder: Recorder
) -> Iterator[Engine]:
    registry = OperationRegistry({"recorder": lambda: recorder}, load_entry_points=False)
    built = build_engine(settings_for(soa_home, database_url, "BIURO"), clock=clock,
                         registry=registry)
    built.tasks.add_company("Firma A")
    yield built
    built.service.engine.dispose()


def new_scheduler(engine: Engine, **settings: int) -> TaskScheduler:
    """A scheduler as a freshly started host builds it (its timers are not started here)."""
    return TaskScheduler(
        service=engine.tasks, session_id=uuid4(), pid=1,
        settings=SchedulerSettings(**{"max_concurrent_runs": 4, "max_catch_up": 10,
                                      "stop_grace_seconds": 10.0, **settings}),
        notifier=LoggingNotifier(logging.getLogger("test")), logger=logging.getLogger("test"),
        may_run=lambda: True,
    )


def add_task(engine: Engine, clock: MovableClock, *, every: str = "10m", catch_up: str = "all",
             seconds: float = 0.0, timeout: float | None = None) -> UUID:
    schedule = parse_schedule(every=every, anchor=clock.now().replace(microsecond=0))
    return engine.tasks.add_task(
        "recorder", company="Firma A", name=f"every {every}", schedule=schedule,
        catch_up=catch_up, retry=RetryPolicy(1, 1.0), timeout_seconds=timeout,
        params={"seconds": seconds},
    )


def scheduled(engine: Engine, task_id: UUID) -> list[datetime]:
    return sorted(run.scheduled_for for run in engine.tasks.runs(task=str(task_id), limit=10_000))


def settle(scheduler: TaskScheduler) -> None:
    """Run every due run to its end (one per task at a time), then stop the scheduler."""
    service = scheduler.service
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        service.projections.catch_up()
        pending = [run for run in service.runs(limit=10_000)
                   if run.status in ("scheduled", "running", "retrying")
                   and run.due_at <= service.clock.now()]
        if not pending:
            break
        scheduler.dispatch()
        time.sleep(0.02)
    scheduler.stop()


@pytest.mark.parametrize(
    ("policy", "expected_runs"), [("all", 10), ("latest", 1), ("skip", 0)]
)
def test_catch_up_after_downtime_follows_the_policy(
    engine: Engine, clock: MovableClock, policy: str, expected_runs: int
) -> None:
    task_id = add_task(engine, clock, catch_up=policy)
    first = new_scheduler(engine)
    first.refresh()
    settle(first)
    clock.advance(5 * 3600 + 300)  # 5 h 5 min down: 30 occurrences missed, none on time
    restarted = new_scheduler(engine)
    restarted.refresh()
    settle(restarted)
    runs = scheduled(engine, task_id)
    statuses = {run.status for run in engine.tasks.runs(task=str(task_id), limit=100)}
    assert statuses <= {"succeeded"}
    # Check the replayed set: the most recent ones, oldest first, never more than the bound.
    assert len(runs) == expected_runs
    if runs:
        assert runs[-1] == clock.now().replace(microsecond=0) - timedelta(minutes=5) or (
            runs[-1] <= clock.now()
        )
        assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(runs))
    entries = engine.service.logs(operation="recorder", limit=100)
    catch_up = [entry for entry in entries if entry.message.startswith("Catch-up")]
    assert len(catch_up) == 1
    assert catch_up[0].status == ("warning" if policy == "all" else "ok")
    assert "30 missed" in catch_up[0].message
    # Check that a second restart replays nothing again.
    again = new_scheduler(engine)
    again.refresh()
    settle(again)
    assert scheduled(engine, task_id) == runs


def test_occurrences_missed_while_paused_are_caught_up_but_not_while_disabled(
    engine: Engine, clock: MovableClock
) -> None:
    paused = add_task(engine, clock, catch_up="all")
    disabled = add_task(engine, clock, catch_up="all")
    scheduler = new_scheduler(engine, max_catch_up=100)
    scheduler.refresh()
    engine.tasks.set_task_state(str(paused), "pause")
    engine.tasks.set_task_state(str(disabled), "disable")
    scheduler.refresh()
    clock.advance(3600 + 120)
    scheduler.fire_all()
    engine.tasks.set_task_state(str(paused), "resume")
    engine.tasks.set_task_state(str(disabled), "enable")
    scheduler.refresh()
    settle(scheduler)
    assert len(scheduled(engine, paused)) == 6
    assert scheduled(engine, disabled) == []


def test_one_run_of_a_task_at_a_time_and_the_bound_across_tasks(
    engine: Engine, clock: MovableClock, recorder: Recorder
) -> None:
    tasks = [add_task(engine, clock, every="1m", seconds=0.3) for _ in range(4)]
    scheduler = new_scheduler(engine, max_concurrent_runs=2, max_catch_up=100)
    scheduler.refresh()
    clock.advance(6 * 60 + 1)  # six occurrences of each task due (five of them missed)
    scheduler.fire_all()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(recorder.calls) < 24:
        scheduler.dispatch()
        time.sleep(0.05)
    settle(scheduler)
    assert len(recorder.calls) == 24
    assert recorder.max_concurrent <= 2
    for task_id in tasks:
        runs = engine.tasks.runs(task=str(task_id), limit=100)
        assert [run.status for run in runs] == ["succeeded"] * 6
        spans = sorted((run.started_at, run.finished_at) for run in runs)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))


def test_a_run_past_its_timeout_is_cancelled_and_recorded(
    engine: Engine, clock: MovableClock
) -> None:
    task_id = add_task(engine, clock, every="1h", seconds=30.0, timeout=0.5)
    scheduler = new_scheduler(engine)
    scheduler.refresh()
    run_id = engine.tasks.run_now(str(task_id))
    scheduler.dispatch()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and engine.tasks.run(str(run_id))[0].status == "scheduled":
        time.sleep(0.05)
    while time.monotonic() < deadline and engine.tasks.run(str(run_id))[0].status == "running":
        time.sleep(0.05)
    settle(scheduler)
    view, history = engine.tasks.run(str(run_id))
    assert view.status == "failed"
    failed = next(entry for entry in history if entry.event == "AttemptFailed")
    assert failed.details["timed_out"] is True
    assert failed.details["error_class"] == "TimeoutError"


def test_runs_left_running_by_a_dead_host_are_abandoned_and_retried(
    engine: Engine, clock: MovableClock, recorder: Recorder
) -> None:
    task_id = add_task(engine, clock, every="1h")
    engine.tasks.edit_task(str(task_id), max_attempts=2)
    run_id = engine.tasks.run_now(str(task_id))
    run = engine.tasks.store.repository.get(run_id)
    run.start("BIURO", 999, uuid4())  # a host that died during this attempt
    engine.tasks.store.save(run)
    scheduler = new_scheduler(engine)
    scheduler.start()
    try:
        clock.advance(120)  # past the retry delay
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not recorder.calls:
            scheduler.dispatch()
            time.sleep(0.05)
    finally:
        settle(scheduler)
    view, history = engine.tasks.run(str(run_id))
    assert view.status == "succeeded" and view.attempts == 2
    assert [entry.event for entry in history] == [
        "Scheduled", "Started", "Abandoned", "RetryScheduled", "Started", "Succeeded",
    ]


def test_many_tasks_due_together_each_occurrence_runs_once_and_the_run_list_is_exact(
    engine: Engine, clock: MovableClock, recorder: Recorder
) -> None:
    tasks = [add_task(engine, clock, every="1m") for _ in range(12)]
    scheduler = new_scheduler(engine, max_concurrent_runs=4, max_catch_up=100)
    scheduler.refresh()
    clock.advance(5 * 60 + 1)  # five occurrences of each task due: 60 runs at once
    scheduler.fire_all()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and scheduler.outcomes_recorded < 60:
        time.sleep(0.02)
    settle(scheduler)
    assert sorted(run_id for run_id, _ in recorder.calls) == sorted(
        {run_id for run_id, _ in recorder.calls}
    )
    assert len(recorder.calls) == 60
    assert recorder.max_concurrent <= 4
    # Check: concurrent saves shared transactions (60 runs, 180 events).
    assert scheduler._committer.transactions < 120
    # Check: the run and task lists, written in folded batches, equal a rebuild of them.
    def lists() -> tuple[list[object], list[object]]:
        return (
            sorted((run.as_json() for run in engine.tasks.runs(limit=None)),
                   key=lambda item: str(item["id"])),
            [(task.id, task.consecutive_failures, task.version) for task in engine.tasks.tasks()],
        )

    incremental = lists()
    engine.service.rebuild_projections()
    assert lists() == incremental
    for task_id in tasks:
        assert [run.status for run in engine.tasks.runs(task=str(task_id))] == ["succeeded"] * 5


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
    built = build_engine(settings_for(soa_home, database_url, "BIURO"), clock=clock,
                         registry=registry)
    try:
        built.tasks.add_company("Firma A")
        task_id = built.tasks.add_task(
            "fails_once", company="Firma A", name="retried",
            schedule=parse_schedule(every="1h", anchor=clock.now()), catch_up="skip",
            retry=RetryPolicy(2, 30.0),
        )
        scheduler = new_scheduler(built)
        scheduler.refresh()
        run_id = built.tasks.run_now(str(task_id))
        scheduler.dispatch()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and scheduler.outcomes_recorded < 1:
            time.sleep(0.02)
        assert built.tasks.run(str(run_id))[0].status == "retrying"
        clock.advance(60)  # past the backoff (30 s, jitter at most +50 %)
        while time.monotonic() < deadline and scheduler.outcomes_recorded < 2:
            scheduler.refresh()
            time.sleep(0.05)
        settle(scheduler)
        view, _ = built.tasks.run(str(run_id))
        assert (view.status, view.attempts, operation.attempts) == ("succeeded", 2, [1, 2])
    finally:
        built.service.engine.dispose()
