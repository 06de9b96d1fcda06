"""Running task occurrences in the host, exactly once each.

APScheduler holds only in-memory timers, one per active task, rebuilt from the
stored definitions whenever they change; the event store stays the one source
of truth. When a timer fires, the occurrences due up to now are recorded as
task runs (their ids derive from task and instant, so a second recording of
one occurrence, by any host, is refused) and dispatched to a bounded pool.
An attempt starts only by recording ``Started`` on the run, which optimistic
concurrency lets exactly one host do. Saves of threads working at the same
moment share transactions (group commit), and due runs wait in an in-memory
queue fed by the timers and by reads of the run list.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from eventsourcing.persistence import IntegrityError

from engine.adapters.checkpoints_sqlalchemy import SqlCheckpointStore
from engine.adapters.group_commit import GroupCommitter
from engine.domain.errors import DomainError
from engine.domain.task_definition import MISSED_COUNT_LIMIT, RetryPolicy, TaskDefinition
from engine.domain.task_run import TaskRun
from engine.operations.contract import RunContext
from engine.ports import OperatorNotifier
from engine.projections.companies import CompanyList
from engine.projections.runs import RunList, RunView
from engine.projections.tasks import TaskList, TaskView
from engine.scheduling.occurrences import next_occurrence, occurrences
from engine.scheduling.schedule import Schedule
from engine.tasks import TaskService

STORE_SCAN = 500
"""Due runs read from the run list at a time, oldest first."""

QUEUED_RUNS_LIMIT = 50_000
"""Due runs queued in memory at most; the rest wait in the run list."""

RECORDED_RUNS_KEPT = 5_000
"""Runs this scheduler recorded, kept in memory until attempted (saves a load each)."""

ATTEMPT_MEMORY_SECONDS = 60.0
"""How long the dispatcher remembers the attempts it started (longer than the run list
can lag behind the store)."""

ON_TIME_SECONDS = 60.0
"""When a task's due occurrences are recorded, the latest of them is on time if it is at
most this old; every other due occurrence is missed and follows the catch-up policy."""


@dataclass(frozen=True)
class SchedulerSettings:
    max_concurrent_runs: int = 8
    max_catch_up: int = 100
    failure_warning_threshold: int = 3
    stop_grace_seconds: float = 30.0


class OccurrenceTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger firing at a schedule's occurrences (with the DST policy)."""

    def __init__(self, schedule: Schedule, not_before: datetime) -> None:
        self.schedule = schedule
        self.not_before = not_before

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or max(now, self.not_before)
        return next_occurrence(self.schedule, after)


@dataclass
class _Attempt:
    result: dict[str, int] | None = None
    error: BaseException | None = None
    done: bool = False
    worker: threading.Thread | None = None
    """The operation's thread, when it outlived the timeout."""


def _counts(result: object) -> dict[str, int]:
    """An operation's result as counts; anything else fails the attempt."""
    if result is None:
        return {}
    if not isinstance(result, Mapping) or not all(
        isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
        for key, value in result.items()
    ):
        raise TypeError(
            f"run() returned {type(result).__name__}; expected a mapping of str to int or None"
        )
    return dict(result)


class TaskScheduler:
    """Records and runs the occurrences of active tasks while ``may_run()`` holds."""

    def __init__(
        self,
        *,
        service: TaskService,
        session_id: UUID,
        pid: int,
        settings: SchedulerSettings,
        notifier: OperatorNotifier,
        logger: logging.Logger,
        may_run: Callable[[], bool],
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.session_id = session_id
        self.pid = pid
        self.settings = settings
        self.notifier = notifier
        self.logger = logger
        self.may_run = may_run
        self.rng = rng or random.Random()
        self._lock = threading.RLock()
        self._timers = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        self._tasks: dict[UUID, TaskView] = {}
        self._all_tasks: dict[UUID, TaskView] = {}
        self._cursors: dict[UUID, datetime] = {}
        self._running: dict[UUID, UUID] = {}
        """Busy tasks: task id -> run id, until the attempt's outcome is recorded."""
        self._operations = 0
        """Places taken against ``max_concurrent_runs``: from the choice of a run until its
        operation has ended."""
        self._contexts: dict[UUID, RunContext] = {}
        self._fingerprint: tuple[int, int] | None = None
        self._stopping = False
        self._dispatching = threading.Lock()
        self._dispatch_again = False
        self._dispatch_again_from_store = False
        self._store_has_more = False
        self._ready: OrderedDict[UUID, deque[tuple[UUID, bool, int]]] = OrderedDict()
        """Due runs by task (run id, manual, attempts made when queued), tasks in
        round-robin order."""
        self._queued: set[UUID] = set()
        self._committer = GroupCommitter(service.store)
        self._company_urls: dict[UUID, str] = {}
        self._attempted: OrderedDict[UUID, tuple[int, float]] = OrderedDict()
        """Run id -> (attempt this host started, when): the run list may still show the
        run as due for a moment after the attempt; such stale rows are not started again."""
        self.outcomes_recorded = 0
        """Attempts whose outcome this scheduler recorded (for monitoring and measurements)."""
        self._recorded: OrderedDict[UUID, TaskRun] = OrderedDict()

    @property
    def clock_now(self) -> datetime:
        return self.service.clock.now()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, timers: bool = True) -> None:
        """Recover runs of dead hosts, catch up missed occurrences, start the timers.

        Without ``timers`` nothing fires by itself (tests drive :meth:`fire_all`).
        """
        self._recover()
        if timers:
            self._timers.start()
        self.refresh()

    def refresh(self) -> None:
        """Pick up changed definitions (from any station) and dispatch due runs."""
        if self._stopping:
            return
        self.service.projections.catch_up()
        fingerprint = TaskList.fingerprint(self.service.engine)
        if fingerprint != self._fingerprint:
            self._sync(fingerprint)
        self.dispatch()

    def stop(self) -> None:
        """Stop firing; let running attempts finish for the grace period, then cancel them.

        Calling it again does nothing.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        if self._timers.running:
            self._timers.shutdown(wait=False)
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        while self._running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            for context in self._contexts.values():
                context.cancelled.set()
        # Attempt threads are daemons: an operation that ignores cancellation cannot keep
        # the stopped host alive; its run stays "running" and the next start abandons it.

    # -- definitions and timers --------------------------------------------------------

    def _sync(self, fingerprint: tuple[int, int]) -> None:
        with self._lock:
            definitions = {task.id: task for task in TaskList.read(self.service.engine)}
            last = RunList.last_scheduled(self.service.engine)
            for task_id in list(self._tasks):
                current = definitions.get(task_id)
                if current is None or not current.is_active:
                    self._drop_timer(task_id)
            due: list[TaskRun] = []
            for task in definitions.values():
                known = self._tasks.get(task.id)
                if not task.is_active or (known is not None and known.version == task.version):
                    continue
                self._tasks[task.id] = task
                self._cursors[task.id] = max(
                    moment for moment in (
                        task.schedule_from, task.considered_through, last.get(task.id)
                    ) if moment is not None
                )
                due.extend(self._record_due(task, self.clock_now))
                self._timers.add_job(
                    self._on_timer, OccurrenceTrigger(
                        Schedule.from_dict(task.schedule), self._cursors[task.id]
                    ), args=(task.id,), id=str(task.id), replace_existing=True,
                )
            self._save_recorded(due)
            self._all_tasks = definitions
            self._fingerprint = fingerprint
            self._company_urls.clear()  # a company may have been removed and added again

    def fire_all(self) -> None:
        """Record the due occurrences of every active task now, as their timers would."""
        with self._lock:
            if self._stopping or not self.may_run():
                return
            due = [
                run for task in list(self._tasks.values())
                for run in self._record_due(task, self.clock_now)
            ]
        self._save_recorded(due)
        self.dispatch(from_store=False)

    def _drop_timer(self, task_id: UUID) -> None:
        self._tasks.pop(task_id, None)
        self._cursors.pop(task_id, None)
        if self._timers.get_job(str(task_id)) is not None:
            self._timers.remove_job(str(task_id))

    def _on_timer(self, task_id: UUID) -> None:
        """Record the occurrences of the task due by now, then dispatch.

        Timers firing together share the transaction that records their runs.
        """
        try:
            with self._lock:
                task = self._tasks.get(task_id)
                if task is None or self._stopping or not self.may_run():
                    return
                due = self._record_due(task, self.clock_now)
            self._save_recorded(due)
            self.dispatch(from_store=False)
        except Exception:
            self.logger.exception("recording the occurrences of task %s failed", task_id)

    def _record_due(self, task: TaskView, now: datetime) -> list[TaskRun]:
        """Move the task's cursor to ``now``; return its runs due by then, to be saved.

        Missed occurrences follow the catch-up policy (recorded on the definition here).
        A run another host or an earlier pass recorded is refused when saved, by its id.
        """
        schedule = Schedule.from_dict(task.schedule)
        cursor = self._cursors[task.id]
        latest = self._most_recent(schedule, cursor, now, 1)
        recent = latest and latest[0] > now - timedelta(seconds=ON_TIME_SECONDS)
        on_time = latest if recent else []
        missed_cutoff = on_time[0] - timedelta(microseconds=1) if on_time else now
        replay, missed, bounded = self._missed(
            task, schedule, cursor, missed_cutoff, has_on_time=bool(on_time)
        )
        due = [self._new_run(task, instant) for instant in [*replay, *on_time]]
        if missed:
            definition: object = self.service.store.repository.get(task.id)
            assert isinstance(definition, TaskDefinition)
            definition.record_catch_up(
                station=self.service.station, missed=missed, replayed=len(replay),
                bounded=bounded, through=missed_cutoff,
            )
            try:
                self.service.store.save(definition)
            except IntegrityError:
                self.logger.warning("catch-up of task %s not recorded: changed meanwhile",
                                    task.id)
        self._cursors[task.id] = max(cursor, now)
        return due

    def _missed(
        self, task: TaskView, schedule: Schedule, cursor: datetime, until: datetime, *,
        has_on_time: bool,
    ) -> tuple[list[datetime], int, bool]:
        """The missed occurrences to replay, how many were missed (counted up to
        :data:`MISSED_COUNT_LIMIT` + 1), and whether the replay limit cut some.

        With ``latest``, nothing missed is replayed when an on-time occurrence runs.
        """
        if until <= cursor:
            return [], 0, False
        cap = self.settings.max_catch_up
        counted = occurrences(schedule, cursor, until, limit=MISSED_COUNT_LIMIT + 1)
        missed = len(counted)
        complete = missed <= MISSED_COUNT_LIMIT
        if not counted or task.catch_up == "skip":
            return [], missed, False
        if task.catch_up == "latest":
            if has_on_time:
                return [], missed, False
            latest = counted[-1] if complete else self._most_recent(schedule, cursor, until, 1)[0]
            return [latest], missed, False
        if missed <= cap:
            return counted, missed, False
        recent = counted[-cap:] if complete else self._most_recent(schedule, cursor, until, cap)
        return recent, missed, True

    @staticmethod
    def _most_recent(
        schedule: Schedule, cursor: datetime, until: datetime, count: int
    ) -> list[datetime]:
        """The last ``count`` occurrences in (cursor, until], searching back in widening
        windows so a long downtime of a frequent schedule stays cheap."""
        window = timedelta(hours=1)
        while True:
            start = max(cursor, until - window)
            found = occurrences(schedule, start, until)
            if len(found) >= count or start == cursor:
                return found[-count:]
            window *= 8

    def _save_recorded(self, due: list[TaskRun]) -> None:
        """Save new runs (those recorded already, by a restart or another host, are
        refused by their ids) and keep the saved ones at hand for their attempts."""
        saved = self._committer.save_each(list(due))
        with self._lock:
            for run, fresh in zip(due, saved, strict=True):
                if fresh:
                    self._recorded[run.id] = run
                    self._enqueue(run.task_id, run.id, manual=False, attempts=0)
            while len(self._recorded) > RECORDED_RUNS_KEPT:
                self._recorded.popitem(last=False)

    @staticmethod
    def _new_run(task: TaskView, instant: datetime) -> TaskRun:
        return TaskRun(
            task_id=task.id, company=task.company, kind=task.kind, scheduled_for=instant,
            manual=False, max_attempts=task.max_attempts,
        )

    # -- running -----------------------------------------------------------------------

    def dispatch(self, *, from_store: bool = True) -> None:
        """Start due runs: one at a time per task, at most the concurrency bound in all.

        With ``from_store``, the run list (caught up first) is read for due runs: those
        recorded elsewhere (run-now from any station), retries, runs left by a restart.
        Without it, only the runs this scheduler has queued start, which costs no query
        (after timer ticks and finished attempts). Calls that come while another thread
        dispatches make it go round once more instead of dispatching beside it.
        """
        while True:
            if not self._dispatching.acquire(blocking=False):
                with self._lock:
                    self._dispatch_again = True
                    self._dispatch_again_from_store |= from_store
                return
            try:
                with self._lock:
                    self._dispatch_again = False
                    from_store = from_store or self._dispatch_again_from_store
                    self._dispatch_again_from_store = False
                self._dispatch_once(from_store)
            finally:
                self._dispatching.release()
            if not self._dispatch_again:
                return
            from_store = False

    def _dispatch_once(self, from_store: bool) -> None:
        if self._stopping or not self.may_run():
            return
        if self._fingerprint is None:
            return  # definitions not loaded yet: refresh() dispatches once they are
        if from_store or (self._store_has_more and not self._ready):
            self._queue_due_from_store()
        self._start_queued()

    def _queue_due_from_store(self) -> None:
        """Queue the due runs of the run list (at most :data:`STORE_SCAN`, oldest first);
        skip those whose task was removed or disabled."""
        self.service.projections.catch_up()
        with self._lock:
            busy = set(self._running)
        pending = RunList.due(self.service.engine, self.clock_now, limit=STORE_SCAN,
                              busy_tasks=busy)
        with self._lock:
            self._store_has_more = len(pending) == STORE_SCAN
            self._forget_attempts(time.monotonic() - ATTEMPT_MEMORY_SECONDS)
            for run in pending:
                if run.attempts < self._attempted.get(run.id, (0, 0.0))[0]:
                    continue  # the run list has not caught up with an attempt of ours yet
                task = self._all_tasks.get(run.task_id)
                if task is None:
                    if self._is_removed(run.task_id):
                        self._skip(run, "its task was removed")
                    continue  # defined after the last refresh: the next one picks it up
                if not task.enabled:
                    self._skip(run, "its task is disabled")
                    continue
                self._enqueue(run.task_id, run.id, manual=run.manual, attempts=run.attempts)

    def _enqueue(self, task_id: UUID, run_id: UUID, *, manual: bool, attempts: int) -> None:
        """Queue a due run (the lock held); past :data:`QUEUED_RUNS_LIMIT` the run is
        left to a later read of the run list."""
        if run_id in self._queued or len(self._queued) >= QUEUED_RUNS_LIMIT:
            return
        self._queued.add(run_id)
        queue = self._ready.get(task_id)
        if queue is None:
            queue = self._ready[task_id] = deque()
        queue.append((run_id, manual, attempts))

    def _start_queued(self) -> None:
        """Start queued runs of idle tasks, round-robin across tasks, up to the bound."""
        chosen: list[tuple[TaskView, UUID]] = []
        with self._lock:
            free = self.settings.max_concurrent_runs - self._operations
            idle: list[UUID] = []
            for task_id in self._ready:
                if len(idle) >= free:
                    break
                if task_id not in self._running:
                    idle.append(task_id)
            for task_id in idle:
                queue = self._ready[task_id]
                task = self._all_tasks.get(task_id)
                while queue:
                    run_id, manual, attempts = queue.popleft()
                    self._queued.discard(run_id)
                    if self._attempted.get(run_id, (0, 0.0))[0] > attempts:
                        continue  # started since it was queued
                    if task is None or not task.enabled or (task.paused and not manual):
                        continue  # the next read of the run list decides about it
                    self._running[task_id] = run_id
                    self._operations += 1
                    chosen.append((task, run_id))
                    break
                if queue:
                    self._ready.move_to_end(task_id)
                else:
                    del self._ready[task_id]
        if chosen:
            self._begin_attempts(chosen)

    def _begin_attempts(self, chosen: list[tuple[TaskView, UUID]]) -> None:
        """Record ``Started`` on the chosen runs (their tasks marked busy), together in one
        transaction where possible, and run each started attempt in its own thread.

        A run found final or running, or whose ``Started`` a conflict refused (another
        host started it first), frees its task again.
        """
        starting: list[tuple[TaskView, TaskRun, int]] = []
        try:
            for task, run_id in chosen:
                with self._lock:
                    recorded = self._recorded.pop(run_id, None)
                # A run recorded here is current unless another host changed it since;
                # then saving Started is refused, as it would be after loading it.
                run: object = recorded or self.service.store.repository.get(run_id)
                assert isinstance(run, TaskRun)
                if run.is_final or run.status == "running" or not self.may_run():
                    continue
                attempt = run.start(self.service.station, self.pid, self.session_id)
                starting.append((task, run, attempt))
            saved = self._committer.save_each([run for _, run, _ in starting])
        except Exception:
            self.logger.exception("starting %d runs failed", len(chosen))
            saved = [False] * len(starting)
        begun: set[UUID] = set()
        with self._lock:
            for (task, run, attempt), started in zip(starting, saved, strict=True):
                if not started:
                    continue
                self._attempted[run.id] = (attempt, time.monotonic())
                self._attempted.move_to_end(run.id)
                begun.add(task.id)
                threading.Thread(
                    target=self._attempt, args=(run, task, attempt),
                    name=f"soa-run-{run.id}", daemon=True,
                ).start()
            for task, _ in chosen:
                if task.id not in begun:
                    self._running.pop(task.id, None)
                    self._operations -= 1
                    self._dispatch_again = True

    def _forget_attempts(self, before: float) -> None:
        while self._attempted and next(iter(self._attempted.values()))[1] < before:
            self._attempted.popitem(last=False)

    def _is_removed(self, task_id: UUID) -> bool:
        definition: object = self.service.store.repository.get(task_id)
        return not isinstance(definition, TaskDefinition) or definition.removed

    def _skip(self, view: RunView, reason: str) -> None:
        self._recorded.pop(view.id, None)
        run: object = self.service.store.repository.get(view.id)
        assert isinstance(run, TaskRun)
        run.skip(reason, self.service.station)
        self._committer.save(run)  # refused if started or skipped by another host meanwhile

    def _attempt(self, run: TaskRun, task: TaskView, attempt: int) -> None:
        held = [True]

        def give_place_back() -> None:
            with self._lock:
                if held[0]:
                    held[0] = False
                    self._operations -= 1

        try:
            self._run_attempt(run, task, attempt, give_place_back)
        except Exception:
            self.logger.exception("run %s: the attempt could not be recorded", run.id)
        finally:
            give_place_back()
            with self._lock:
                self._running.pop(task.id, None)
                self._contexts.pop(run.id, None)
            self.dispatch(from_store=False)

    def _run_attempt(
        self, run: TaskRun, task: TaskView, attempt: int, give_place_back: Callable[[], None]
    ) -> None:
        """Run a started attempt and record its outcome.

        Once the operation has ended, its place goes to the next queued runs while the
        outcome waits to be written, so the outcome and their ``Started`` can share one
        commit; the task itself stays busy until its outcome is recorded.
        """
        started = time.monotonic()
        outcome = self._call(run, task, attempt)
        duration = time.monotonic() - started
        if outcome.error is None and outcome.done:
            run.succeed(outcome.result or {}, duration)
        else:
            timed_out = not outcome.done
            error = outcome.error or TimeoutError(
                f"timed out after {task.timeout_seconds:g} s"
            )
            retry = RetryPolicy(task.max_attempts, task.backoff_seconds)
            retry_at = self.clock_now + timedelta(
                seconds=retry.delay_before(attempt + 1, self.rng)
            )
            run.fail_attempt(
                type(error).__name__, _one_line(error), duration, timed_out, retry_at
            )
        submission = self._committer.submit(run)
        if outcome.worker is None:
            give_place_back()
            self.dispatch(from_store=False)
        try:
            if not self._committer.wait(submission):
                self.logger.warning(
                    "run %s: outcome not recorded, changed by another host", run.id
                )
                return
            with self._lock:
                self.outcomes_recorded += 1
        finally:
            if outcome.worker is not None:
                # The cancelled operation keeps its place, and its task stays busy (one
                # run at a time), until it ends.
                outcome.worker.join()
        if run.status == "failed":
            self._check_failures(task)

    def _call(self, run: TaskRun, task: TaskView, attempt: int) -> _Attempt:
        """Run one attempt; with a timeout, in a thread of its own, waited for at most that
        long (then cancelled and left to end by itself)."""
        outcome = _Attempt()
        try:
            operation = self.service.registry.get(task.kind)
            model = operation.params_model
            params: Any = model.model_validate(task.params) if model else dict(task.params)
        except (DomainError, ValueError) as error:
            outcome.error, outcome.done = error, True
            return outcome
        context = RunContext(
            run_id=str(run.id), task_id=str(task.id), company=task.company,
            company_database_url=self._company_url(task.company_id),
            scheduled_for=run.scheduled_for, attempt=attempt, params=params,
            checkpoints=SqlCheckpointStore(self.service.engine, str(run.id)),
        )
        with self._lock:
            self._contexts[run.id] = context

        def target() -> None:
            try:
                outcome.result = _counts(operation.run(context))
            except BaseException as error:  # an operation's failure fails the attempt
                outcome.error = error
            outcome.done = True

        if task.timeout_seconds is None:
            target()  # nothing to time out: the attempt's own thread runs it
            return outcome
        worker = threading.Thread(target=target, name=f"soa-op-{run.id}", daemon=True)
        worker.start()
        worker.join(task.timeout_seconds)
        if worker.is_alive():
            context.cancelled.set()
            outcome.worker = worker
        return outcome

    def _company_url(self, company_id: UUID) -> str:
        """A company's database URL (fixed when the company is added)."""
        url = self._company_urls.get(company_id)
        if url is None:
            url = CompanyList.database_url(self.service.engine, company_id)
            if url:
                self._company_urls[company_id] = url
        return url

    def _check_failures(self, task: TaskView) -> None:
        self._check_failures_of(task.id, task.name, task.kind, task.company)

    def _check_failures_of(self, task_id: UUID, name: str, kind: str, company: str) -> None:
        """Notify the operator once, when a task's failures in a row reach the threshold."""
        self.service.projections.catch_up()
        threshold = self.settings.failure_warning_threshold
        failing = {view.id: view for view in TaskList.failing(self.service.engine, threshold)}
        view = failing.get(task_id)
        if view is not None and view.consecutive_failures == threshold:
            self.notifier.notify(
                f"task {name!r} ({kind}, {company}) keeps failing",
                f"its last {threshold} runs failed; see soa runs list --task {task_id}",
            )

    def _recover(self) -> None:
        """Abandon the attempts that hosts which died left running; retry them by policy."""
        self.service.projections.catch_up()
        for view in RunList.read(self.service.engine, status="running", limit=None):
            if view.session_id == self.session_id:
                continue
            run: object = self.service.store.repository.get(view.id)
            assert isinstance(run, TaskRun)
            if run.status != "running":
                continue
            task: object = self.service.store.repository.get(run.task_id)
            retry = task.retry if isinstance(task, TaskDefinition) else RetryPolicy(1, 30.0)
            retry_at = self.clock_now + timedelta(
                seconds=retry.delay_before(run.attempt + 1, self.rng)
            )
            run.abandon(
                f"the host session {view.session_id} ended while attempt {run.attempt} ran",
                retry_at,
            )
            try:
                self.service.store.save(run)
            except IntegrityError:
                continue
            self.logger.warning("run %s: abandoned attempt %d of a dead host", run.id,
                                run.attempt)
            if run.is_final and isinstance(task, TaskDefinition):
                self._check_failures_of(task.id, task.name, task.kind, task.company)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__
