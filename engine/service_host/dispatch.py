"""Dispatching due runs: a queue in memory, round-robin across tasks, one run of a task
at a time, at most a fixed number of operations at once."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from uuid import UUID

from engine.application.runs import HostSession, RunService, StartedAttempt
from engine.ports.read_models import RunView, TaskView

STORE_SCAN = 500
"""Due runs read from the run list at a time, oldest first."""

QUEUED_RUNS_LIMIT = 50_000
"""Due runs queued in memory at most; the rest wait in the run list."""

ATTEMPT_MEMORY_SECONDS = 60.0
"""How long the dispatcher remembers the attempts it started (longer than the run list
can lag behind the store)."""


class Dispatcher:
    """Starts due runs while ``may_run()`` holds.

    Runs come from the scheduler's timers (:meth:`enqueue`) and from reads of the run
    list (:meth:`dispatch` with ``from_store``): manual runs from any station, retries,
    runs left by a restart or another host. A task is busy from the choice of its run
    until the attempt's outcome is recorded; a place of the concurrency bound is taken
    from the choice until the operation has ended (:meth:`release_place`).
    """

    def __init__(
        self,
        *,
        runs: RunService,
        session: HostSession,
        max_concurrent_runs: int,
        may_run: Callable[[], bool],
        begin: Callable[[StartedAttempt], None],
        logger: logging.Logger,
    ) -> None:
        self._runs = runs
        self._session = session
        self._max_concurrent = max_concurrent_runs
        self._may_run = may_run
        self._begin = begin
        self._logger = logger
        self._lock = threading.RLock()
        self._dispatching = threading.Lock()
        self._again = False
        self._again_from_store = False
        self._store_has_more = False
        self._stopping = False
        self._tasks: dict[UUID, TaskView] | None = None
        self._ready: OrderedDict[UUID, deque[tuple[UUID, bool, int]]] = OrderedDict()
        """Due runs by task (run id, manual, attempts made when queued), tasks in
        round-robin order."""
        self._queued: set[UUID] = set()
        self._running: dict[UUID, UUID] = {}
        """Busy tasks: task id -> run id, until the attempt's outcome is recorded."""
        self._places_taken = 0
        self._attempted: OrderedDict[UUID, tuple[int, float]] = OrderedDict()
        """Run id -> (attempt this host started, when): the run list may still show the
        run as due for a moment after the attempt; such stale rows are not started again."""

    # -- what the scheduler and the attempts tell it ------------------------------------

    def set_definitions(self, tasks: dict[UUID, TaskView]) -> None:
        """Every task definition as it now is (dispatching waits for the first call)."""
        with self._lock:
            self._tasks = tasks

    def enqueue(self, task_id: UUID, run_id: UUID, *, manual: bool, attempts: int) -> None:
        """Queue a due run; past :data:`QUEUED_RUNS_LIMIT` it is left to a later read of
        the run list."""
        with self._lock:
            if run_id in self._queued or len(self._queued) >= QUEUED_RUNS_LIMIT:
                return
            self._queued.add(run_id)
            queue = self._ready.get(task_id)
            if queue is None:
                queue = self._ready[task_id] = deque()
            queue.append((run_id, manual, attempts))

    def release_place(self) -> None:
        """An operation ended: its place goes to the next run."""
        with self._lock:
            self._places_taken -= 1
        self.dispatch(from_store=False)

    def task_done(self, task_id: UUID) -> None:
        """The task's attempt has its outcome recorded: it may run again."""
        with self._lock:
            self._running.pop(task_id, None)
        self.dispatch(from_store=False)

    @property
    def busy(self) -> bool:
        """True while an attempt runs or waits for its outcome to be recorded."""
        with self._lock:
            return bool(self._running)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True

    # -- dispatching -------------------------------------------------------------------

    def dispatch(self, *, from_store: bool = True) -> None:
        """Start due runs: one at a time per task, at most the concurrency bound in all.

        With ``from_store``, the run list (the read models as they are: the caller
        catches up) is read for due runs. Without it, only queued runs start, which
        costs no query. Calls that come while another thread dispatches make it go
        round once more instead of dispatching beside it.
        """
        while True:
            if not self._dispatching.acquire(blocking=False):
                with self._lock:
                    self._again = True
                    self._again_from_store |= from_store
                return
            try:
                with self._lock:
                    self._again = False
                    from_store = from_store or self._again_from_store
                    self._again_from_store = False
                self._dispatch_once(from_store)
            finally:
                self._dispatching.release()
            if not self._again:
                return
            from_store = False

    def _dispatch_once(self, from_store: bool) -> None:
        if self._stopping or self._tasks is None or not self._may_run():
            return
        if from_store or (self._store_has_more and not self._ready):
            self._queue_due_from_store()
        self._start_queued()

    def _queue_due_from_store(self) -> None:
        """Queue the due runs of the run list (at most :data:`STORE_SCAN`, oldest first);
        skip those whose task was removed or disabled."""
        with self._lock:
            busy = set(self._running)
        pending = self._runs.due_runs(self._runs.clock.now(), limit=STORE_SCAN, busy_tasks=busy)
        skipped: list[tuple[RunView, str]] = []
        with self._lock:
            self._store_has_more = len(pending) == STORE_SCAN
            self._forget_attempts(time.monotonic() - ATTEMPT_MEMORY_SECONDS)
            tasks = self._tasks or {}
            for run in pending:
                if run.attempts < self._attempted.get(run.id, (0, 0.0))[0]:
                    continue  # the run list has not caught up with an attempt of ours yet
                task = tasks.get(run.task_id)
                if task is None:
                    skipped.append((run, "its task was removed"))
                    continue
                if not task.enabled:
                    skipped.append((run, "its task is disabled"))
                    continue
                self.enqueue(run.task_id, run.id, manual=run.manual, attempts=run.attempts)
        for run, reason in skipped:
            if reason == "its task is disabled" or self._runs.task_is_removed(run.task_id):
                self._runs.skip(run.id, reason)
            # else: defined after the last refresh; the next one picks it up

    def _start_queued(self) -> None:
        """Start queued runs of idle tasks, round-robin across tasks, up to the bound."""
        chosen: list[tuple[TaskView, UUID]] = []
        with self._lock:
            free = self._max_concurrent - self._places_taken
            idle: list[UUID] = []
            for task_id in self._ready:
                if len(idle) >= free:
                    break
                if task_id not in self._running:
                    idle.append(task_id)
            tasks = self._tasks or {}
            for task_id in idle:
                queue = self._ready[task_id]
                task = tasks.get(task_id)
                while queue:
                    run_id, manual, attempts = queue.popleft()
                    self._queued.discard(run_id)
                    if self._attempted.get(run_id, (0, 0.0))[0] > attempts:
                        continue  # started since it was queued
                    if task is None or not task.enabled or (task.paused and not manual):
                        continue  # the next read of the run list decides about it
                    self._running[task_id] = run_id
                    self._places_taken += 1
                    chosen.append((task, run_id))
                    break
                if queue:
                    self._ready.move_to_end(task_id)
                else:
                    del self._ready[task_id]
        if chosen:
            self._start(chosen)

    def _start(self, chosen: list[tuple[TaskView, UUID]]) -> None:
        """Record ``Started`` on the chosen runs and begin each started attempt; a run not
        started (final, running, or started by another host first) frees its task."""
        try:
            started = (self._runs.start_attempts(chosen, self._session)
                       if self._may_run() else [])
        except Exception:
            self._logger.exception("starting %d runs failed", len(chosen))
            started = []
        begun: set[UUID] = set()
        with self._lock:
            for attempt in started:
                self._attempted[attempt.run.id] = (attempt.attempt, time.monotonic())
                self._attempted.move_to_end(attempt.run.id)
                begun.add(attempt.task.id)
            for task, _ in chosen:
                if task.id not in begun:
                    self._running.pop(task.id, None)
                    self._places_taken -= 1
                    self._again = True
        for attempt in started:
            self._begin(attempt)

    def _forget_attempts(self, before: float) -> None:
        while self._attempted and next(iter(self._attempted.values()))[1] < before:
            self._attempted.popitem(last=False)
