"""Property: for random schedules, uptimes, downtimes, timers firing late and crashes during
attempts, the occurrences recorded and run are exactly the documented rule's set, each once.

The model below does not use the engine's arithmetic: it lists an ``every`` schedule's
instants by stepping from the anchor, and applies the rule as docs/scheduling.md writes it:
an occurrence that falls due while the host is up runs, however late its timer fires; of
those that fell due while it was down, the latest runs if it is at most 60 s old when the
host starts, and the others follow the catch-up policy.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from engine.domain.task_run import TaskRun
from engine.operations.registry import OperationRegistry
from engine.ports.store import WriteConflictError
from engine.scheduling import parse_schedule
from engine.service_host.bootstrap import ApplicationServices
from tests.integration.scheduling import Recorder, new_scheduler
from tests.support import MovableClock, open_services

ON_TIME = timedelta(seconds=60)  # docs/scheduling.md: "at most 60 seconds old"

Segment = tuple[int, int, int, bool]
"""Whole intervals up, seconds more up, seconds down, and whether the host crashes
(dies during an attempt, leaving its run ``running``) at its last timer fire."""


def instants(anchor: datetime, interval: timedelta, after: datetime, until: datetime) -> list[datetime]:
    """The instants anchor + k * interval in (after, until], by stepping."""
    found = []
    moment = anchor
    while moment <= until:
        if moment > after:
            found.append(moment)
        moment += interval
    return found


def expected_runs(
    anchor: datetime, interval: timedelta, policy: str, cap: int, start: datetime,
    plan: list[tuple[datetime, datetime]],
) -> list[datetime]:
    """``plan``: per host session, when it started and when its last timer fired."""
    recorded: list[datetime] = []
    cursor = start
    for up_at, last_fire in plan:
        down_time = instants(anchor, interval, cursor, up_at)
        on_time = down_time[-1:] if down_time and down_time[-1] > up_at - ON_TIME else []
        missed = down_time[:-1] if on_time else down_time
        if policy == "all":
            recorded += missed[-cap:]
        elif policy == "latest" and not on_time:
            recorded += missed[-1:]
        recorded += on_time
        recorded += instants(anchor, interval, up_at, last_fire)  # up: every one runs
        cursor = max(up_at, last_fire)
    return recorded


def die_during_an_attempt(services: ApplicationServices, run_id: object) -> bool:
    """What a host does before it dies in an attempt: it records ``Started``, and never
    the outcome (nor calls the operation). False if the scheduler started the run first
    (an earlier attempt that ended meanwhile dispatches the queue, perhaps after the read
    model was read): no crash then."""
    run = services.store.get(run_id)  # type: ignore[arg-type]
    assert isinstance(run, TaskRun)
    if run.status != "scheduled":
        return False
    run.start("BIURO", 4242, uuid4())
    try:
        services.store.save(run)
    except WriteConflictError:
        return False
    return True


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking takes minutes here
)
@example(interval_minutes=10, policy="all", cap=2, max_late=0, seed=1,
         segments=[(2, 0, 3600, True), (1, 30, 0, True)])
@example(interval_minutes=1, policy="latest", cap=1, max_late=150, seed=7,
         segments=[(5, 0, 30, False)])
@given(
    interval_minutes=st.integers(1, 120),
    policy=st.sampled_from(["all", "latest", "skip"]),
    cap=st.integers(1, 4),
    max_late=st.sampled_from([0, 5, 59, 61, 150, 900, 4 * 3600]),
    seed=st.integers(0, 2**16),
    segments=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 59), st.integers(0, 36_000), st.booleans()),
        min_size=1, max_size=4,
    ),
)
def test_recorded_and_run_occurrences_equal_the_rules_set(
    interval_minutes: int, policy: str, cap: int, max_late: int, seed: int,
    segments: list[Segment],
) -> None:
    rng = random.Random(seed)
    interval = timedelta(minutes=interval_minutes)
    with tempfile.TemporaryDirectory() as home:
        clock = MovableClock()
        recorder = Recorder()
        services = open_services(
            Path(home), None, "BIURO", clock=clock,
            registry=OperationRegistry({"recorder": lambda: recorder}, load_entry_points=False),
        )
        try:
            services.tasks.add_company("Firma A")
            anchor = clock.now().replace(microsecond=0)
            clock.advance((anchor - clock.now()).total_seconds())
            task_id = services.tasks.add_task(
                "recorder", company="Firma A", name="p",
                schedule=parse_schedule(every=f"{interval_minutes}m", anchor=anchor),
                catch_up=policy, max_attempts=3, backoff_seconds=1.0, params={},
            )
            start = services.tasks.task(str(task_id)).task.schedule_from
            plan: list[tuple[datetime, datetime]] = []
            crashes = 0
            for up_intervals, up_seconds, down_seconds, crash in segments:
                # A host that is up never stalls here (stalls have their own test).
                scheduler = new_scheduler(services, max_catch_up=cap, stall_seconds=1e9)
                up_at = clock.now()
                scheduler.start(timers=False)  # a host start: recovery and catch-up
                down_at = up_at + interval * up_intervals + timedelta(seconds=up_seconds)
                # Each occurrence's timer fires late by a random amount; a fire after the
                # host went down never happens.
                fires = sorted({
                    moment + timedelta(seconds=rng.randint(0, max_late))
                    for moment in instants(anchor, interval, up_at, down_at)
                })
                fires = [fire for fire in fires if fire <= down_at]
                for index, fire in enumerate(fires):
                    clock.move_to(fire)
                    if crash and index == len(fires) - 1:
                        scheduler.fire_all(dispatch=False)
                        latest = services.runs.runs(task=str(task_id), limit=1)[0]
                        if latest.status == "scheduled" and die_during_an_attempt(
                            services, latest.id
                        ):
                            crashes += 1
                    else:
                        scheduler.fire_all()
                clock.move_to(down_at)
                scheduler.stop()
                plan.append((up_at, fires[-1] if fires else up_at))
                clock.advance(down_seconds)
            # A last host start: it catches up the last downtime and runs everything recorded.
            final = new_scheduler(services, max_catch_up=cap, stall_seconds=1e9)
            plan.append((clock.now(), clock.now()))
            expected = expected_runs(anchor, interval, policy, cap, start, plan)
            final.start(timers=False)
            clock.advance(5)  # past the retry delay of attempts of crashed hosts
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(recorder.calls) < len(expected):
                final.dispatch()
                time.sleep(0.02)
            final.stop()
            runs = services.runs.runs(task=str(task_id), limit=100_000)
            assert sorted(run.scheduled_for for run in runs) == expected
            # Each occurrence ran once: a crashed attempt was abandoned at the next start and
            # retried (the crash came before the operation was called).
            assert sorted(moment for _, moment in recorder.calls) == expected
            assert {run.status for run in runs} <= {"succeeded"}
            assert sum(run.attempts == 2 for run in runs) == crashes
        finally:
            services.close()
