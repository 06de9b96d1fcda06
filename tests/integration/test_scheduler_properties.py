"""Property: for random schedules, uptimes, downtimes and crashes during attempts, the
occurrences recorded and run are exactly the catch-up policy's expected set, each once."""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from engine.adapters.notifier_log import LoggingNotifier
from engine.domain.task_definition import RetryPolicy
from engine.domain.task_run import TaskRun
from engine.operations.registry import OperationRegistry
from engine.scheduling import occurrences, parse_schedule
from engine.service_host.bootstrap import Engine, build_engine
from engine.service_host.scheduler import ON_TIME_SECONDS, SchedulerSettings, TaskScheduler
from tests.integration.test_scheduler import Recorder
from tests.support import MovableClock, settings_for

Segment = tuple[int, int, int, bool]
"""Whole intervals up, seconds more up, seconds down, and whether the host crashes
(dies during an attempt, leaving its run ``running``) at the end of the uptime."""


def expected_runs(
    schedule: object, policy: str, cap: int, start: datetime, plan: list[tuple[datetime, datetime]]
) -> list[datetime]:
    """The model: on each start, the latest due occurrence runs if it is recent (on time)
    and the others, missed, follow the policy; while up, every occurrence runs when due."""
    recorded: list[datetime] = []
    cursor = start
    for up_at, down_at in plan:
        due = occurrences(schedule, cursor, up_at)  # type: ignore[arg-type]
        recent = bool(due) and due[-1] > up_at - timedelta(seconds=ON_TIME_SECONDS)
        on_time = due[-1:] if recent else []
        missed = due[:-1] if recent else due
        if policy == "all":
            recorded += missed[-cap:]
        elif policy == "latest" and not on_time:
            recorded += missed[-1:]
        recorded += on_time
        recorded += occurrences(schedule, up_at, down_at)  # type: ignore[arg-type]
        cursor = down_at
    return recorded


def die_during_an_attempt(engine: Engine, task_id: UUID, moment: datetime) -> None:
    """What a host does before it dies in the attempt of the occurrence at ``moment``:
    it records the run and its ``Started``, and never its outcome."""
    task = engine.tasks.task(str(task_id))
    run = TaskRun(task_id=task_id, company=task.company, kind=task.kind, scheduled_for=moment,
                  manual=False, max_attempts=task.max_attempts)
    run.start("BIURO", 4242, uuid4())
    engine.tasks.store.save(run)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking takes minutes here
)
@example(interval_minutes=10, policy="all", cap=2,
         segments=[(2, 0, 3600, True), (1, 30, 0, True)])
@given(
    interval_minutes=st.integers(1, 120),
    policy=st.sampled_from(["all", "latest", "skip"]),
    cap=st.integers(1, 4),
    segments=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 59), st.integers(0, 36_000), st.booleans()),
        min_size=1, max_size=4,
    ),
)
def test_recorded_and_run_occurrences_equal_the_policys_set(
    interval_minutes: int, policy: str, cap: int, segments: list[Segment]
) -> None:
    with tempfile.TemporaryDirectory() as home:
        clock = MovableClock()
        recorder = Recorder()
        engine = build_engine(
            settings_for(Path(home), None, "BIURO"), clock=clock,
            registry=OperationRegistry({"recorder": lambda: recorder}, load_entry_points=False),
        )
        try:
            engine.tasks.add_company("Firma A")
            start = clock.now().replace(microsecond=0)
            clock.advance((start - clock.now()).total_seconds())
            schedule = parse_schedule(every=f"{interval_minutes}m", anchor=start)
            task_id = engine.tasks.add_task(
                "recorder", company="Firma A", name="p", schedule=schedule, catch_up=policy,
                retry=RetryPolicy(3, 1.0), params={},
            )
            start = engine.tasks.task(str(task_id)).schedule_from
            plan: list[tuple[datetime, datetime]] = []
            crashes = 0
            for up_intervals, up_seconds, down_seconds, crash in segments:
                scheduler = TaskScheduler(
                    service=engine.tasks, session_id=uuid4(), pid=1,
                    settings=SchedulerSettings(max_catch_up=cap, stop_grace_seconds=10.0),
                    notifier=LoggingNotifier(logging.getLogger("t")),
                    logger=logging.getLogger("t"), may_run=lambda: True,
                )
                up_at = clock.now()
                scheduler.start(timers=False)  # a host start: recovery and catch-up
                down_at = up_at + timedelta(minutes=interval_minutes * up_intervals,
                                            seconds=up_seconds)
                due = occurrences(schedule, up_at, down_at)
                for index, moment in enumerate(due):
                    clock.advance((moment - clock.now()).total_seconds())
                    if crash and index == len(due) - 1:
                        die_during_an_attempt(engine, task_id, moment)
                        crashes += 1
                    else:
                        scheduler.fire_all()  # the timer fires on time
                clock.advance((down_at - clock.now()).total_seconds())
                scheduler.stop()
                plan.append((up_at, down_at))
                clock.advance(down_seconds)
            # A last host start: it catches up the last downtime and runs everything recorded.
            final = TaskScheduler(
                service=engine.tasks, session_id=uuid4(), pid=1,
                settings=SchedulerSettings(max_catch_up=cap, stop_grace_seconds=10.0),
                notifier=LoggingNotifier(logging.getLogger("t")), logger=logging.getLogger("t"),
                may_run=lambda: True,
            )
            plan.append((clock.now(), clock.now()))
            expected = expected_runs(schedule, policy, cap, start, plan)
            final.start(timers=False)
            clock.advance(5)  # past the retry delay of attempts of crashed hosts
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(recorder.calls) < len(expected):
                final.dispatch()
                time.sleep(0.02)
            final.stop()
            runs = engine.tasks.runs(task=str(task_id), limit=100_000)
            recorded = sorted(run.scheduled_for for run in runs)
            assert recorded == sorted(expected)
            # Each occurrence ran once: a crashed attempt was abandoned at the next start and
            # retried (the crash came before the operation was called).
            assert sorted(moment for _, moment in recorder.calls) == sorted(expected)
            assert {run.status for run in runs} <= {"succeeded"}
            assert sum(run.attempts == 2 for run in runs) == crashes
        finally:
            engine.service.engine.dispose()
