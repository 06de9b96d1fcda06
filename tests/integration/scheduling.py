"""What the in-process scheduler tests share: an operation that records its calls, the
services on a movable clock, a scheduler as a host builds it, and waiting for runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from uuid import UUID, uuid4

from pydantic import BaseModel

from engine.application.runs import HostSession
from engine.operations.contract import RunContext
from engine.ports.host import OperatorNotifier
from engine.ports.read_models import RunView
from engine.scheduling import parse_schedule
from engine.service_host.bootstrap import ApplicationServices
from engine.service_host.scheduler import SchedulerSettings, TaskScheduler
from tests.support import MovableClock

LOGGER = logging.getLogger("test")


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


class Notifications(OperatorNotifier):
    """The operator's inbox."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.received.append((subject, message))


def new_scheduler(
    services: ApplicationServices, *, may_run: Callable[[], bool] = lambda: True,
    **settings: float,
) -> TaskScheduler:
    """A scheduler as a freshly started host builds it (its timers are not started here)."""
    chosen = {"max_concurrent_runs": 4, "max_catch_up": 10, "stop_grace_seconds": 10.0,
              **settings}
    return TaskScheduler(
        runs=services.runs, session=HostSession(station="BIURO", pid=1, session_id=uuid4()),
        settings=SchedulerSettings(**chosen),  # type: ignore[arg-type]
        logger=LOGGER, may_run=may_run,
    )


def add_task(services: ApplicationServices, clock: MovableClock, *, every: str = "10m",
             catch_up: str = "all", seconds: float = 0.0, timeout: float | None = None,
             kind: str = "recorder", max_attempts: int = 1) -> UUID:
    schedule = parse_schedule(every=every, anchor=clock.now().replace(microsecond=0))
    return services.tasks.add_task(
        kind, company="Firma A", name=f"every {every}", schedule=schedule,
        catch_up=catch_up, max_attempts=max_attempts, backoff_seconds=1.0,
        timeout_seconds=timeout, params={"seconds": seconds} if kind == "recorder" else {},
    )


def scheduled(services: ApplicationServices, task_id: UUID) -> list[datetime]:
    return sorted(run.scheduled_for for run in services.runs.runs(task=str(task_id), limit=None))


def pending_runs(services: ApplicationServices) -> list[RunView]:
    now = services.clock.now()
    return [run for run in services.runs.runs(limit=None)
            if run.status in ("scheduled", "running", "retrying") and run.due_at <= now]


def settle(scheduler: TaskScheduler, services: ApplicationServices) -> None:
    """Run every due run to its end (one per task at a time), then stop the scheduler."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pending_runs(services):
        scheduler.dispatch()
        time.sleep(0.02)
    scheduler.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
