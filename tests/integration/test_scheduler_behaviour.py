"""What the docs promise of the running scheduler, each claim on its own: checkpoints across
attempts, the operator notification, the lease-safety guard, skipped runs, the stop grace
period, a timed-out operation keeping its place, late timers, and clock changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import BaseModel

from engine.operations.contract import RunContext
from engine.operations.registry import OperationRegistry
from engine.scheduling import ScheduleSpec, parse_schedule
from engine.service_host.bootstrap import ApplicationServices
from engine.service_host.scheduler import TaskScheduler
from engine.service_host.timers import OccurrenceTrigger
from tests.integration.scheduling import (
    Notifications,
    Recorder,
    add_task,
    new_scheduler,
    scheduled,
    settle,
    wait_for,
)
from tests.support import MovableClock, open_services


class Resumable:
    """Saves its progress in a checkpoint, and fails the first attempt after step 2."""

    kind = "resumable"
    params_model = None

    def __init__(self) -> None:
        self.resumed_at: list[int] = []

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        done = int(ctx.checkpoints.get("done") or 0)
        self.resumed_at.append(done)
        for step in range(done, 4):
            ctx.checkpoints.put("done", str(step + 1))
            if ctx.attempt == 1 and step == 1:
                raise ConnectionError("the partner went away after step 2")
        return {"steps": 4 - done}


class Failing:
    kind = "failing"
    params_model = None

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        raise RuntimeError("always")


class StubbornParams(BaseModel):
    seconds: float = 2.0


class Stubborn:
    """Ignores cancellation: runs its full time, then records when it ended."""

    kind = "stubborn"
    params_model = StubbornParams

    def __init__(self) -> None:
        self.ended: list[float] = []
        self.cancelled_seen: list[bool] = []

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        time.sleep(ctx.params.seconds)
        self.cancelled_seen.append(ctx.is_cancelled())
        self.ended.append(time.time())
        return {"done": 1}


class Polite:
    """Runs until cancelled, checking the flag; records whether it saw the cancellation."""

    kind = "polite"
    params_model = None

    def __init__(self) -> None:
        self.started = threading.Event()
        self.saw_cancel: list[bool] = []

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        self.started.set()
        deadline = time.monotonic() + 60
        while not ctx.is_cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.saw_cancel.append(ctx.is_cancelled())
        raise TimeoutError("cancelled")


@pytest.fixture
def operations() -> dict[str, object]:
    return {"recorder": Recorder(), "resumable": Resumable(), "failing": Failing(),
            "stubborn": Stubborn(), "polite": Polite()}


@pytest.fixture
def notifications() -> Notifications:
    return Notifications()


@pytest.fixture
def services(
    soa_home: Path, database_url: str | None, clock: MovableClock,
    operations: dict[str, object], notifications: Notifications,
) -> Iterator[ApplicationServices]:
    registry = OperationRegistry(
        {kind: (lambda operation=operation: operation) for kind, operation in operations.items()},
        load_entry_points=False,
    )
    opened = open_services(soa_home, database_url, "BIURO", clock=clock, registry=registry,
                           notifier=notifications, failure_warning_threshold=3)
    opened.tasks.add_company("Firma A")
    yield opened
    opened.close()


def test_a_retry_resumes_from_the_checkpoint_of_the_failed_attempt(
    services: ApplicationServices, clock: MovableClock, operations: dict[str, object]
) -> None:
    task_id = add_task(services, clock, kind="resumable", every="1h", max_attempts=2)
    scheduler = new_scheduler(services)
    scheduler.refresh()
    run_id = services.runs.run_now(str(task_id))
    scheduler.dispatch()
    wait_for(lambda: services.runs.run(str(run_id))[0].status == "retrying")
    clock.advance(10)  # past the backoff (1 s with jitter)
    wait_for(lambda: (scheduler.dispatch(), services.runs.run(str(run_id))[0])[1].status
             == "succeeded")
    settle(scheduler, services)
    resumable = operations["resumable"]
    assert isinstance(resumable, Resumable)
    # Check: attempt 2 began where attempt 1 stopped (2 steps done) and did the other 2.
    assert resumable.resumed_at == [0, 2]
    assert services.runs.run(str(run_id))[0].counts == {"steps": 2}


def test_the_operator_is_notified_once_when_a_task_reaches_the_failure_threshold(
    services: ApplicationServices, clock: MovableClock, notifications: Notifications
) -> None:
    task_id = add_task(services, clock, kind="failing", every="1h", max_attempts=1)
    scheduler = new_scheduler(services)
    scheduler.refresh()
    for failures in range(1, 6):
        run_id = services.runs.run_now(str(task_id))
        scheduler.dispatch()
        wait_for(lambda run_id=run_id: services.runs.run(str(run_id))[0].status == "failed")
        wait_for(lambda failures=failures: scheduler.outcomes_recorded == failures)
        # Check: the notification comes with the 3rd failure in a row (it is sent before
        # the outcome counts as recorded), never before, and once.
        assert len(notifications.received) == (1 if failures >= 3 else 0), failures
        clock.advance(1)  # the next manual run gets another instant
    settle(scheduler, services)
    assert len(notifications.received) == 1
    subject, message = notifications.received[0]
    assert "keeps failing" in subject and "last 3 runs failed" in message
    assert str(task_id) in message
    warnings = services.service.status().warnings
    assert len(warnings) == 1 and "failed 5 time(s) in a row" in warnings[0]


def test_nothing_is_recorded_or_started_while_the_lease_is_not_safe(
    services: ApplicationServices, clock: MovableClock, operations: dict[str, object]
) -> None:
    safe = threading.Event()
    task_id = add_task(services, clock, every="1m")
    scheduler = new_scheduler(services, may_run=safe.is_set)
    scheduler.refresh()
    clock.advance(3 * 60 + 1)
    scheduler.fire_all()
    scheduler.refresh()
    manual = services.runs.run_now(str(task_id))
    scheduler.dispatch()
    time.sleep(0.3)
    recorder = operations["recorder"]
    assert isinstance(recorder, Recorder)
    # Check: no occurrence recorded, the manual run not started, nothing called.
    assert scheduled(services, task_id) == [services.runs.run(str(manual))[0].scheduled_for]
    assert services.runs.run(str(manual))[0].status == "scheduled"
    assert recorder.calls == []
    safe.set()
    scheduler.refresh()
    wait_for(lambda: services.runs.run(str(manual))[0].status == "succeeded")
    settle(scheduler, services)
    # Once safe again, what fell due meanwhile follows the catch-up policy (all, limit 10).
    assert len(scheduled(services, task_id)) == 1 + 3


def test_runs_of_disabled_and_removed_tasks_are_skipped(
    services: ApplicationServices, clock: MovableClock, operations: dict[str, object]
) -> None:
    disabled = add_task(services, clock, every="1h")
    removed = add_task(services, clock, every="1h")
    scheduler = new_scheduler(services)
    scheduler.refresh()
    held = services.runs.run_now(str(disabled))
    gone = services.runs.run_now(str(removed))
    services.tasks.set_task_state(str(disabled), "disable")
    services.tasks.remove_task(str(removed))
    scheduler.refresh()
    wait_for(lambda: services.runs.run(str(held))[0].status == "skipped"
             and services.runs.run(str(gone))[0].status == "skipped")
    settle(scheduler, services)
    assert services.runs.run(str(held))[0].error == "its task is disabled"
    assert services.runs.run(str(gone))[0].error == "its task was removed"
    recorder = operations["recorder"]
    assert isinstance(recorder, Recorder) and recorder.calls == []
    skipped = [entry for entry in services.service.logs(status="warning")
               if entry.message.startswith("Run skipped")]
    assert len(skipped) == 2


def test_stop_waits_the_grace_period_then_cancels_running_attempts(
    services: ApplicationServices, clock: MovableClock, operations: dict[str, object]
) -> None:
    task_id = add_task(services, clock, kind="polite", every="1h")
    scheduler = new_scheduler(services, stop_grace_seconds=1.0)
    scheduler.refresh()
    run_id = services.runs.run_now(str(task_id))
    scheduler.dispatch()
    polite = operations["polite"]
    assert isinstance(polite, Polite)
    assert polite.started.wait(15)
    began = time.monotonic()
    scheduler.stop()
    waited = time.monotonic() - began
    wait_for(lambda: polite.saw_cancel == [True])
    # Check: stop waited for the attempt (about the grace period), then cancelled it.
    assert waited >= 1.0
    wait_for(lambda: services.runs.run(str(run_id))[0].status != "running")
    assert services.runs.run(str(run_id))[0].status == "failed"


def test_a_timed_out_operation_keeps_its_place_until_it_ends(
    services: ApplicationServices, clock: MovableClock, operations: dict[str, object]
) -> None:
    stubborn_task = add_task(services, clock, kind="stubborn", every="1h", timeout=0.3)
    other_task = add_task(services, clock, every="1h")
    scheduler = new_scheduler(services, max_concurrent_runs=1)
    scheduler.refresh()
    stubborn_run = services.runs.run_now(str(stubborn_task))
    scheduler.dispatch()
    wait_for(lambda: services.runs.run(str(stubborn_run))[0].status == "running")
    other_run = services.runs.run_now(str(other_task))
    wait_for(lambda: (scheduler.dispatch(), services.runs.run(str(other_run))[0])[1].status
             == "succeeded")
    settle(scheduler, services)
    stubborn = operations["stubborn"]
    assert isinstance(stubborn, Stubborn)
    other = services.runs.run(str(other_run))[0]
    assert other.started_at is not None
    # Check: the stubborn attempt was recorded as timed out, yet the other run started
    # only after the stubborn operation had really ended (one place, still taken).
    _, history = services.runs.run(str(stubborn_run))
    assert any(entry.event == "AttemptFailed" and entry.details["timed_out"]
               for entry in history)
    assert stubborn.cancelled_seen == [True]
    assert other.started_at.timestamp() >= stubborn.ended[0]


def started_with_latest(
    services: ApplicationServices, clock: MovableClock, *, every: str
) -> tuple[UUID, datetime, TaskScheduler]:
    """A task ``every`` with catch-up ``latest``, its anchor, and a started scheduler
    whose timers the test fires by hand."""
    task_id = add_task(services, clock, every=every, catch_up="latest")
    anchor = services.tasks.task(str(task_id)).task.schedule.anchor
    assert anchor is not None
    scheduler = new_scheduler(services)
    scheduler.start(timers=False)
    return task_id, anchor, scheduler


def test_a_timer_that_fires_late_loses_no_occurrence_whatever_the_policy(
    services: ApplicationServices, clock: MovableClock
) -> None:
    task_id, anchor, scheduler = started_with_latest(services, clock, every="10s")
    # The timer of +10 s fires 11 s late, at +21 s: +10 s and +20 s are both due.
    clock.move_to(anchor + timedelta(seconds=21))
    scheduler.fire_all()
    clock.move_to(anchor + timedelta(seconds=30))
    scheduler.fire_all()
    settle(scheduler, services)
    assert scheduled(services, task_id) == [
        anchor + timedelta(seconds=seconds) for seconds in (10, 20, 30)
    ]
    assert services.service.logs(operation="recorder", status="warning") == []


def test_occurrences_due_while_the_host_stalled_follow_the_catch_up_policy(
    services: ApplicationServices, clock: MovableClock
) -> None:
    task_id, anchor, scheduler = started_with_latest(services, clock, every="10m")
    clock.move_to(anchor + timedelta(minutes=10))
    scheduler.fire_all()
    # The machine sleeps 2 h: the loop and the timers are silent. When it wakes, the
    # 12 occurrences of the sleep are missed, not late: latest runs the last of them.
    clock.move_to(anchor + timedelta(minutes=135))
    scheduler.fire_all()
    settle(scheduler, services)
    assert scheduled(services, task_id) == [
        anchor + timedelta(minutes=10), anchor + timedelta(minutes=130)
    ]
    catch_up = [entry.message for entry in services.service.logs(operation="recorder")
                if entry.message.startswith("Catch-up")]
    assert catch_up == ["Catch-up (latest): 12 missed occurrence(s), 1 run"]


def wall_clock_runs(
    services: ApplicationServices, clock: MovableClock, spec: ScheduleSpec,
    window: tuple[datetime, datetime],
) -> tuple[list[datetime], list[datetime]]:
    """Run a wall-clock task through the scheduler across ``window``, its timer firing at
    each instant its trigger gives (on time); return those instants and the runs."""
    task_id = services.tasks.add_task("recorder", company="Firma A", name="dst",
                                      schedule=spec, catch_up="skip")
    clock.move_to(window[0])
    scheduler = new_scheduler(services)
    scheduler.start(timers=False)  # a host started just before the window
    task = services.tasks.task(str(task_id)).task
    trigger = OccurrenceTrigger(task.schedule, clock.now())
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, clock.now())
    while fire is not None and fire <= window[1]:
        fires.append(fire)
        clock.move_to(fire)
        scheduler.fire_all()
        clock.advance(7)  # and a fire of nothing, seconds later
        scheduler.fire_all()
        fire = trigger.get_next_fire_time(fire, clock.now())
    settle(scheduler, services)
    return fires, scheduled(services, task_id)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize("spec", [ScheduleSpec(daily="02:30"), ScheduleSpec(cron="30 2 * * *")])
def test_a_wall_clock_task_across_the_spring_and_autumn_clock_changes(
    services: ApplicationServices, clock: MovableClock, spec: ScheduleSpec
) -> None:
    spring = [utc(2027, 3, 27, 1, 30), utc(2027, 3, 28, 1, 0), utc(2027, 3, 29, 0, 30)]
    fires, runs = wall_clock_runs(services, clock, spec,
                                  (utc(2027, 3, 26, 23, 0), utc(2027, 3, 29, 12, 0)))
    assert fires == spring and runs == spring  # 02:30 that does not exist runs at 03:00 CEST
    autumn = [utc(2027, 10, 30, 0, 30), utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]
    fires, runs = wall_clock_runs(services, clock, spec,
                                  (utc(2027, 10, 29, 12, 0), utc(2027, 11, 1, 12, 0)))
    assert fires == autumn and runs == autumn  # 02:30 that occurs twice runs once, first


def test_an_hourly_cron_skips_the_repeated_hour_in_autumn(
    services: ApplicationServices, clock: MovableClock
) -> None:
    fires, runs = wall_clock_runs(services, clock, ScheduleSpec(cron="30 * * * *"),
                                  (utc(2027, 10, 30, 23, 0), utc(2027, 10, 31, 3, 0)))
    expected = [utc(2027, 10, 30, 23, 30), utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 2, 30)]
    assert fires == expected and runs == expected


def test_an_every_schedule_keeps_absolute_time_across_the_autumn_change(
    services: ApplicationServices, clock: MovableClock
) -> None:
    anchor = utc(2027, 10, 30, 22, 0)
    spec_schedule = parse_schedule(every="1h", anchor=anchor)
    task_id = services.tasks.add_task("recorder", company="Firma A", name="hourly",
                                      schedule=spec_schedule, catch_up="skip")
    clock.move_to(anchor)
    scheduler = new_scheduler(services)
    scheduler.start(timers=False)
    for hours in range(1, 6):
        clock.move_to(anchor + timedelta(hours=hours))
        scheduler.fire_all()
    settle(scheduler, services)
    # The anchor itself is the first occurrence; then every hour, 02:00 CET twice over.
    assert scheduled(services, task_id) == [anchor + timedelta(hours=h) for h in range(6)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ScheduleSpec(cron="30 * * * *"),
         [utc(2027, 10, 30, 23, 30), utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 2, 30)]),
        (ScheduleSpec(daily="02:30"), [utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]),
    ],
)
@pytest.mark.parametrize("late", [True, False], ids=["late-timer", "after-downtime"])
def test_one_late_fire_or_a_catch_up_across_the_autumn_change_runs_the_repeated_time_once(
    services: ApplicationServices, clock: MovableClock, spec: ScheduleSpec,
    expected: list[datetime], late: bool,
) -> None:
    clock.move_to(utc(2027, 10, 30, 23, 0))
    task_id = services.tasks.add_task("recorder", company="Firma A", name="dst",
                                      schedule=spec, catch_up="all")
    if late:  # the host is up, its timer fires hours late, after the repeated hour
        scheduler = new_scheduler(services)
        scheduler.start(timers=False)
        clock.move_to(expected[-1] + timedelta(minutes=20))
        scheduler.fire_all()
    else:  # no host until after the change: every occurrence is missed and replayed
        scheduler = new_scheduler(services)
        scheduler.refresh()
        settle(scheduler, services)
        clock.move_to(expected[-1] + timedelta(minutes=20))
        scheduler = new_scheduler(services)
        scheduler.start(timers=False)
    settle(scheduler, services)
    assert scheduled(services, task_id) == expected
