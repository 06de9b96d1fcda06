"""Running task occurrences in the host, exactly once each: the coordinator.

The timers (:mod:`.timers`) fire at each active task's occurrences; the due ones are
chosen by the catch-up rules (:func:`engine.scheduling.plan_due`) and recorded as runs
by the application layer (:class:`engine.application.runs.RunService`); the dispatcher
(:mod:`.dispatch`) starts them within the concurrency bound and the attempt runner
(:mod:`.attempts`) runs them. The event store stays the one source of truth: a second
recording of an occurrence, by any host, is refused by its run id, and an attempt starts
only by recording ``Started``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from engine.application.runs import HostSession, RunService, StartedAttempt
from engine.ports.read_models import TaskView
from engine.scheduling.catch_up import ON_TIME_SECONDS, plan_due
from engine.service_host.attempts import AttemptRunner
from engine.service_host.dispatch import Dispatcher
from engine.service_host.timers import Timers


@dataclass(frozen=True)
class SchedulerSettings:
    """``stall_seconds``: a host whose loop and timers were silent longer than this (the
    process stalled, the machine slept) was not recording meanwhile: what fell due then
    was missed, not late, and follows the catch-up policy."""

    max_concurrent_runs: int = 8
    max_catch_up: int = 100
    stop_grace_seconds: float = 30.0
    stall_seconds: float = ON_TIME_SECONDS


class TaskScheduler:
    """Records and runs the occurrences of active tasks while ``may_run()`` holds."""

    def __init__(
        self,
        *,
        runs: RunService,
        session: HostSession,
        settings: SchedulerSettings,
        logger: logging.Logger,
        may_run: Callable[[], bool],
    ) -> None:
        self.runs = runs
        self.session = session
        self.settings = settings
        self.logger = logger
        self.may_run = may_run
        self._lock = threading.RLock()
        self._stopping = False
        self._timers = Timers(self._on_timer)
        self.dispatcher = Dispatcher(
            runs=runs, session=session, max_concurrent_runs=settings.max_concurrent_runs,
            may_run=may_run, begin=self._begin, logger=logger,
        )
        self.attempts = AttemptRunner(
            runs=runs, may_run=may_run, release_place=self.dispatcher.release_place,
            task_done=self.dispatcher.task_done, logger=logger,
        )
        self._fingerprint: tuple[int, int] | None = None
        self._tasks: dict[UUID, TaskView] = {}
        """Active tasks with a timer."""
        self._cursors: dict[UUID, datetime] = {}
        """Where each active task's schedule got to: occurrences up to it are accounted for."""
        self._live_from: dict[UUID, datetime] = {}
        """From when each task's occurrences have been recorded live (see plan_due)."""
        self._seen_inactive: set[UUID] = set()
        self._live_since: datetime | None = None
        """Since when this host has been able to record (None while it cannot)."""
        self._last_tick: datetime | None = None

    @property
    def clock_now(self) -> datetime:
        return self.runs.clock.now()

    @property
    def outcomes_recorded(self) -> int:
        return self.attempts.outcomes_recorded

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, timers: bool = True) -> None:
        """Abandon runs of dead hosts, catch up missed occurrences, start the timers.

        Without ``timers`` nothing fires by itself (tests drive :meth:`fire_all`).
        """
        for run_id, attempt in self.runs.abandon_dead_sessions(self.session):
            self.logger.warning("run %s: abandoned attempt %d of a dead host", run_id, attempt)
        if timers:
            self._timers.start()
        self.refresh()

    def refresh(self) -> None:
        """Pick up changed definitions (from any station), record what fell due while
        this host could not record, and dispatch due runs. The host calls it every
        ``SOA_REFRESH_SECONDS``."""
        if self._stopping:
            return
        able, regained = self._note_liveness()
        self.runs.catch_up()
        fingerprint = self.runs.definitions_fingerprint()
        picked = self._sync(fingerprint) if fingerprint != self._fingerprint else []
        if able:
            # What fell due before a timer was set (downtime, pause, pickup), or while this
            # host could not record, is recorded now rather than at the next fire.
            with self._lock:
                due = list(self._tasks.values()) if regained else picked
            self._enqueue(self._record_due(due))
        self.dispatcher.dispatch(from_store=True)

    def dispatch(self, *, from_store: bool = True) -> None:
        """Start due runs now (reading the run list, caught up first, ``from_store``)."""
        if from_store:
            self.runs.catch_up()
        self.dispatcher.dispatch(from_store=from_store)

    def stop(self) -> None:
        """Stop firing; let running attempts finish for the grace period, then cancel them.

        Calling it again does nothing.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.dispatcher.stop()
        self._timers.shutdown()
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        while self.dispatcher.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        self.attempts.cancel_all()
        # Attempt threads are daemons: an operation that ignores cancellation cannot keep
        # the stopped host alive; its run stays "running" and the next start abandons it.

    # -- liveness: occurrences due while this host records them are never missed -------

    def _note_liveness(self) -> tuple[bool, bool]:
        """Whether this host can record now, and whether it just regained that (first
        time, after its lease was unsafe, or after a stall); tracks since when it can."""
        now = self.clock_now
        with self._lock:
            if not self.may_run():
                self._live_since = None
                return False, False
            stalled = self._last_tick is not None and (
                (now - self._last_tick).total_seconds() > self.settings.stall_seconds
            )
            self._last_tick = now
            regained = self._live_since is None or stalled
            if regained:
                self._live_since = now
            return True, regained

    # -- definitions and timers --------------------------------------------------------

    def _sync(self, fingerprint: tuple[int, int]) -> list[TaskView]:
        """Set the timers of new and changed active tasks, drop those of the others;
        return the tasks whose timers were set."""
        definitions, positions = self.runs.definitions()
        picked: list[TaskView] = []
        with self._lock:
            for task_id in list(self._tasks):
                current = definitions.get(task_id)
                if current is None or not current.is_active:
                    self._drop_timer(task_id)
            for task in definitions.values():
                if not task.is_active:
                    self._seen_inactive.add(task.id)
                    continue
                known = self._tasks.get(task.id)
                if known is not None and known.version == task.version:
                    continue
                self._tasks[task.id] = task
                self._cursors[task.id] = max(
                    moment for moment in (
                        task.schedule_from, task.considered_through, positions.get(task.id)
                    ) if moment is not None
                )
                if task.id in self._seen_inactive:
                    self._seen_inactive.discard(task.id)
                    self._live_from[task.id] = self.clock_now  # resumed or enabled now
                elif known is None:
                    self._live_from[task.id] = task.schedule_from
                self._timers.set(task.id, task.schedule, self._cursors[task.id])
                picked.append(task)
            self._fingerprint = fingerprint
            self.dispatcher.set_definitions(definitions)
        return picked

    def _drop_timer(self, task_id: UUID) -> None:
        self._tasks.pop(task_id, None)
        self._cursors.pop(task_id, None)
        self._live_from.pop(task_id, None)
        self._seen_inactive.add(task_id)
        self._timers.drop(task_id)

    def fire_all(self, *, dispatch: bool = True) -> None:
        """Record the due occurrences of every active task now, as their timers would.

        Without ``dispatch`` the runs are only recorded: they wait in the run list for
        the next read of it (as after a host that died right after recording them).
        """
        able, _ = self._note_liveness()
        if self._stopping or not able:
            return
        with self._lock:
            tasks = list(self._tasks.values())
        recorded = self._record_due(tasks)
        if dispatch:
            self._enqueue(recorded)
            self.dispatcher.dispatch(from_store=False)

    def _on_timer(self, task_id: UUID) -> None:
        """Record the occurrences of the task due by now (of every task, after a stall),
        then dispatch. Timers firing together share the transaction that records their
        runs."""
        try:
            able, regained = self._note_liveness()
            with self._lock:
                if regained:
                    tasks = list(self._tasks.values())
                else:
                    tasks = [self._tasks[task_id]] if task_id in self._tasks else []
            if self._stopping or not able or not tasks:
                return
            self._enqueue(self._record_due(tasks))
            self.dispatcher.dispatch(from_store=False)
        except Exception:
            self.logger.exception("recording the occurrences of task %s failed", task_id)

    def _record_due(self, tasks: list[TaskView]) -> list[tuple[TaskView, list[UUID]]]:
        """Record the runs of ``tasks`` due by now (by the catch-up rules), in one batch,
        and move each task's cursor there once they are saved; a run another host or an
        earlier pass recorded is refused by its id. Nothing moves if the store fails: the
        next fire retries."""
        now = self.clock_now
        planned = []
        with self._lock:
            live_since = self._live_since
            if live_since is None:
                return []
            for task in tasks:
                cursor = self._cursors.get(task.id)
                if cursor is None:
                    continue
                live_from = max(live_since, self._live_from.get(task.id, live_since))
                planned.append((task, cursor, plan_due(
                    task.schedule, policy=task.catch_up, after=cursor, now=now,
                    live_from=live_from, max_catch_up=self.settings.max_catch_up,
                )))
        fresh = self.runs.record_due([(task, plan) for task, _, plan in planned])
        with self._lock:
            for task, cursor, _ in planned:
                if self._cursors.get(task.id) == cursor:
                    self._cursors[task.id] = max(cursor, now)
        return [(task, run_ids) for (task, _, _), run_ids in zip(planned, fresh, strict=True)]

    def _enqueue(self, recorded: list[tuple[TaskView, list[UUID]]]) -> None:
        for task, run_ids in recorded:
            for run_id in run_ids:
                self.dispatcher.enqueue(task.id, run_id, manual=False, attempts=0)

    def _begin(self, started: StartedAttempt) -> None:
        self.attempts.begin(started)
