"""Property: for random schedules, uptimes and downtimes, the occurrences recorded and run
are exactly the catch-up policy's expected set, each once."""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.adapters.notifier_log import LoggingNotifier
from engine.domain.task_definition import RetryPolicy
from engine.operations.registry import OperationRegistry
from engine.scheduling import occurrences, parse_schedule
from engine.service_host.bootstrap import build_engine
from engine.service_host.scheduler import ON_TIME_SECONDS, SchedulerSettings, TaskScheduler
from tests.integration.test_scheduler import Recorder
from tests.support import MovableClock, settings_for

Segment = tuple[int, int, int]  # whole intervals up, seconds more up, seconds down


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


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    interval_minutes=st.integers(1, 120),
    policy=st.sampled_from(["all", "latest", "skip"]),
    cap=st.integers(1, 4),
    segments=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 59), st.integers(0, 36_000)),
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
                retry=RetryPolicy(1, 1.0), params={},
            )
            start = engine.tasks.task(str(task_id)).schedule_from
            plan: list[tuple[datetime, datetime]] = []
            for up_intervals, up_seconds, down_seconds in segments:
                scheduler = TaskScheduler(
                    service=engine.tasks, session_id=uuid4(), pid=1,
                    settings=SchedulerSettings(max_catch_up=cap, stop_grace_seconds=10.0),
                    notifier=LoggingNotifier(logging.getLogger("t")),
                    logger=logging.getLogger("t"), may_run=lambda: True,
                )
                up_at = clock.now()
                scheduler.refresh()  # a host start: catch-up
                down_at = up_at + timedelta(minutes=interval_minutes * up_intervals,
                                            seconds=up_seconds)
                for moment in occurrences(schedule, up_at, down_at):
                    clock.advance((moment - clock.now()).total_seconds())
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
            final.refresh()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(recorder.calls) < len(expected):
                final.dispatch()
                time.sleep(0.02)
            final.stop()
            runs = engine.tasks.runs(task=str(task_id), limit=100_000)
            recorded = sorted(run.scheduled_for for run in runs)
            assert recorded == sorted(expected)
            assert sorted(moment for _, moment in recorder.calls) == sorted(expected)
        finally:
            engine.service.engine.dispose()
