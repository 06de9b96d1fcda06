"""Use cases of task runs: manual runs and run queries for people, and every step a
host takes to run an occurrence exactly once (record it, start an attempt, record the
outcome, skip it, abandon what a dead host left running, warn about failing tasks).

Each step is decided by the event store's optimistic concurrency: a run id derives from
task and instant, so an occurrence is recorded once whoever records it, and an attempt
starts only by saving ``Started`` on the run version it read.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from engine.application.errors import InvalidRequestError
from engine.application.tasks import resolve
from engine.application.unit_of_work import UnitOfWork
from engine.domain.errors import NotFoundError
from engine.domain.task_definition import RetryPolicy, TaskDefinition
from engine.domain.task_run import RUN_STATUSES, TaskRun
from engine.operations.contract import CompanyResources, Operation, RunContext
from engine.operations.registry import OperationRegistry
from engine.ports.host import Clock, OperatorNotifier, RunObserver
from engine.ports.outbound import CompanyDatabases, HttpClients, MailSender, SmsSender
from engine.ports.read_models import ReadModels, RunView, TaskView
from engine.ports.runs import CheckpointStores
from engine.ports.store import GroupCommit, PendingSave
from engine.scheduling.catch_up import DuePlan

if TYPE_CHECKING:
    from engine.erp.gateway import ErpGateways
    from engine.erp.printing import DocumentPrinter
    from engine.ports.ksef import KsefClient

RECORDED_RUNS_KEPT = 5_000
"""Runs recorded by this process, kept in memory until attempted (saves a load each)."""

DEAD_HOST_RETRY = RetryPolicy(1, 30.0)
"""The retry policy of a run whose task no longer exists."""


@dataclass(frozen=True)
class HostSession:
    """The host session that records and runs occurrences."""

    station: str
    pid: int
    session_id: UUID


@dataclass(frozen=True)
class RunResources:
    """What runs use besides the store, built by the composition root."""

    checkpoints: CheckpointStores
    databases: CompanyDatabases
    mail: MailSender
    sms: SmsSender
    http: HttpClients
    erp: ErpGateways | None = None
    printer: DocumentPrinter | None = None
    ksef: KsefClient | None = None


@dataclass(frozen=True)
class StartedAttempt:
    """An attempt whose ``Started`` is recorded: the host must run it and record its
    outcome."""

    run: TaskRun
    task: TaskView
    attempt: int


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended: ``counts`` on success, else ``error`` or ``timed_out``."""

    duration_seconds: float
    counts: dict[str, int] | None = None
    error: BaseException | None = None
    timed_out: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.error is None and not self.timed_out


@dataclass(frozen=True)
class RunHistoryEntry:
    """One event of a run, for ``soa runs show``."""

    time: datetime
    event: str
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "event": self.event, "details": self.details}


class RecordedOutcome:
    """An outcome queued for the store; :meth:`wait` tells whether it was recorded."""

    def __init__(self, service: RunService, attempt: StartedAttempt, pending: PendingSave):
        self._service = service
        self._attempt = attempt
        self._pending = pending

    def wait(self) -> bool:
        """Block until written; False if another host changed the run first. A recorded
        failure that brings the task to the warning threshold notifies the operator."""
        if not self._pending.wait():
            return False
        if self._attempt.run.status == "failed":
            self._service.check_failures(self._attempt.task.id)
        return True


class RunService:
    """Task runs: for people (``run_now``, ``runs``, ``run``) and for the host."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        writer: GroupCommit,
        read_models: ReadModels,
        registry: OperationRegistry,
        resources: RunResources,
        notifier: OperatorNotifier,
        clock: Clock,
        station: str,
        failure_warning_threshold: int = 3,
        rng: random.Random | None = None,
        observer: RunObserver | None = None,
    ) -> None:
        self._uow = uow
        self._observer = observer
        self._writer = writer
        self.read_models = read_models
        self.registry = registry
        self._resources = resources
        self._notifier = notifier
        self.clock = clock
        self.station = station
        self.failure_warning_threshold = failure_warning_threshold
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._recorded: OrderedDict[UUID, TaskRun] = OrderedDict()
        self._company_urls: dict[UUID, str] = {}

    # -- for people --------------------------------------------------------------------

    def run_now(self, reference: str, *, as_of: datetime | None = None) -> UUID:
        """Record a manual occurrence of the task, due now; the running host starts it
        as soon as no other run of the task is running. ``as_of`` (recorded on the run)
        is the instant the operation acts as of, instead of now.

        :raises InvalidRequestError: for a naive ``as_of``.
        """
        if as_of is not None and as_of.tzinfo is None:
            raise InvalidRequestError(
                "as_of must carry a time zone, such as 2026-12-31T06:00+01:00"
            )
        task_id = self._resolve_task(reference)
        task = self._uow.get(task_id, TaskDefinition)
        if task is None:
            raise NotFoundError(f"task {reference!r} does not exist")
        task.check_not_removed()
        self.registry.get(task.kind)

        def record() -> UUID:
            run = TaskRun(
                task_id=task.id, company=task.company, kind=task.kind,
                scheduled_for=self.clock.now(), manual=True,
                max_attempts=task.retry.max_attempts, as_of=as_of,
            )
            self._uow.save(run)
            return run.id

        return self._uow.retrying(record)

    def runs(
        self, *, task: str | None = None, status: str | None = None,
        limit: int | None = 100, offset: int = 0,
    ) -> list[RunView]:
        """Runs, newest first (of ``task``, in ``status``), skipping the ``offset`` newest."""
        if status is not None and status not in RUN_STATUSES:
            raise InvalidRequestError(
                f"run status {status!r} is not known; allowed are {', '.join(RUN_STATUSES)}"
            )
        if task is not None:
            task_id: UUID | None = self._resolve_task(task)
        else:
            self.read_models.catch_up()
            task_id = None
        return self.read_models.runs(task_id=task_id, status=status, limit=limit,
                                     offset=offset)

    def run(self, reference: str) -> tuple[RunView, list[RunHistoryEntry]]:
        """The run and its full event history."""
        self.read_models.catch_up()
        run_id = resolve(
            reference,
            lambda prefix, limit: self.read_models.run_ids_starting_with(prefix, limit=limit),
            "run",
        )
        view = self.read_models.run(run_id)
        assert view is not None
        history = [
            RunHistoryEntry(
                time=event.timestamp, event=type(event).__name__,
                details={
                    key: _jsonable(value) for key, value in event.__dict__.items()
                    if key not in ("originator_id", "originator_version", "timestamp",
                                   "originator_topic")
                },
            )
            for event in self._uow.store.history(run_id)
        ]
        return view, history

    def _resolve_task(self, reference: str) -> UUID:
        self.read_models.catch_up()
        return resolve(
            reference,
            lambda prefix, limit: self.read_models.task_ids_starting_with(prefix, limit=limit),
            "task",
        )

    # -- for the host: definitions -----------------------------------------------------

    def catch_up(self) -> None:
        """Bring the read models up to date (once per pass of the host's loop)."""
        self.read_models.catch_up()

    def definitions_fingerprint(self) -> tuple[int, int]:
        """A cheap value that changes whenever a task definition changes."""
        return self.read_models.tasks_fingerprint()

    def definitions(self) -> tuple[dict[UUID, TaskView], dict[UUID, datetime]]:
        """Every task definition not removed, and where each task's schedule got to (its
        latest scheduled run)."""
        with self._lock:
            self._company_urls.clear()  # a company may have been removed and added again
        return ({task.id: task for task in self.read_models.tasks()},
                self.read_models.last_scheduled())

    # -- for the host: recording occurrences -------------------------------------------

    def record_due(self, planned: Sequence[tuple[TaskView, DuePlan]]) -> list[list[UUID]]:
        """Record the planned runs of each task (and, where some were missed, how the
        policy handled them), all in as few transactions as conflicts allow; return, per
        task, the ids of the runs recorded by this call. A run recorded already (by another
        host or an earlier pass) is refused by its id and left out."""
        handled = []
        for task, plan in planned:
            if not plan.missed or plan.missed_through is None:
                continue
            definition = self._uow.get(task.id, TaskDefinition)
            if definition is not None and not definition.removed:
                definition.record_catch_up(
                    station=self.station, missed=plan.missed, replayed=plan.replayed,
                    bounded=plan.bounded, through=plan.missed_through,
                )
                handled.append(definition)
        self._writer.save_each(handled)  # a definition changed meanwhile: harmless
        runs = [
            [TaskRun(task_id=task.id, company=task.company, kind=task.kind,
                     scheduled_for=instant, manual=False, max_attempts=task.max_attempts)
             for instant in plan.runs]
            for task, plan in planned
        ]
        saved = iter(self._writer.save_each([run for per_task in runs for run in per_task]))
        fresh = [[run for run in per_task if next(saved)] for per_task in runs]
        with self._lock:
            for run in (run for per_task in fresh for run in per_task):
                self._recorded[run.id] = run
            while len(self._recorded) > RECORDED_RUNS_KEPT:
                self._recorded.popitem(last=False)
        return [[run.id for run in per_task] for per_task in fresh]

    def due_runs(
        self, now: datetime, *, limit: int, busy_tasks: Collection[UUID] = ()
    ) -> list[RunView]:
        """Runs that may start at ``now``, oldest first (the read models as they are)."""
        return self.read_models.due_runs(now, limit=limit, busy_tasks=busy_tasks)

    def task_is_removed(self, task_id: UUID) -> bool:
        definition = self._uow.get(task_id, TaskDefinition)
        return definition is None or definition.removed

    def skip(self, run_id: UUID, reason: str) -> bool:
        """Record that the run will not start; False if another host started or skipped
        it meanwhile."""
        with self._lock:
            self._recorded.pop(run_id, None)
        run = self._uow.get(run_id, TaskRun)
        if run is None or run.is_final or run.status == "running":
            return False
        run.skip(reason, self.station)
        return self._writer.save(run)

    # -- for the host: attempts --------------------------------------------------------

    def start_attempts(
        self, chosen: Sequence[tuple[TaskView, UUID]], session: HostSession
    ) -> list[StartedAttempt]:
        """Record ``Started`` on the chosen runs, together in one transaction where
        possible; return the attempts started. A run found final or running, or whose
        ``Started`` a conflict refused (another host started it first), is left out."""
        starting: list[StartedAttempt] = []
        for task, run_id in chosen:
            with self._lock:
                recorded = self._recorded.pop(run_id, None)
            # A run recorded here is current unless another host changed it since; then
            # saving Started is refused, as it would be after loading it.
            run = recorded or self._uow.get(run_id, TaskRun)
            if run is None or run.is_final or run.status == "running":
                continue
            attempt = run.start(session.station, session.pid, session.session_id)
            starting.append(StartedAttempt(run=run, task=task, attempt=attempt))
        saved = self._writer.save_each([started.run for started in starting])
        return [started for started, ok in zip(starting, saved, strict=True) if ok]

    def prepare(self, started: StartedAttempt) -> tuple[Operation, RunContext]:
        """The operation of the attempt and its context (parameters validated again).

        :raises DomainError: if the kind is not available; ``ValueError`` if the stored
            parameters no longer fit the kind's model.
        """
        run, task = started.run, started.task
        operation = self.registry.get(task.kind)
        model = operation.params_model
        params: Any = model.model_validate(task.params) if model else dict(task.params)
        resources = self._resources
        context = RunContext(
            run_id=str(run.id), task_id=str(task.id), company=task.company,
            scheduled_for=run.scheduled_for, attempt=started.attempt, params=params,
            as_of=getattr(run, "as_of", None),
            checkpoints=resources.checkpoints.for_run(run.id),
            resources=self._company_resources(task),
        )
        return operation, context

    def _company_resources(self, task: TaskView) -> CompanyResources:
        resources = self._resources
        database = resources.databases.get(task.company_id, self._company_url(task))
        return CompanyResources(
            database=database, mail=resources.mail, sms=resources.sms, http=resources.http,
            erp_gateway=resources.erp.for_database(database) if resources.erp else None,
            printer=resources.printer, ksef=resources.ksef,
        )

    def _company_url(self, task: TaskView) -> str:
        """A company's database URL (fixed when the company is added)."""
        with self._lock:
            url = self._company_urls.get(task.company_id)
        if url is None:
            company = self.read_models.company(task.company_id)
            url = company.database_url if company is not None else ""
            if url:
                with self._lock:
                    self._company_urls[task.company_id] = url
        return url

    def record_outcome(self, started: StartedAttempt, outcome: AttemptOutcome) -> RecordedOutcome:
        """Queue the attempt's outcome: success, or a failed attempt followed by a retry
        (exponential backoff with jitter) or, after the last attempt, the failure."""
        run, task = started.run, started.task
        if self._observer is not None:
            ended = ("succeeded" if outcome.succeeded
                     else "timed_out" if outcome.timed_out else "failed")
            self._observer.attempt_ended(task.kind, ended, outcome.duration_seconds,
                                         outcome.counts if outcome.succeeded else None)
        if outcome.succeeded:
            run.succeed(outcome.counts or {}, outcome.duration_seconds, outcome.warnings)
        else:
            error = outcome.error or TimeoutError(f"timed out after {task.timeout_seconds:g} s")
            run.fail_attempt(
                type(error).__name__, one_line(error), outcome.duration_seconds,
                outcome.timed_out, self._retry_at(task.max_attempts, task.backoff_seconds,
                                                  started.attempt),
            )
        return RecordedOutcome(self, started, self._writer.submit(run))

    def _retry_at(self, max_attempts: int, backoff_seconds: float, attempt: int) -> datetime:
        delay = RetryPolicy(max_attempts, backoff_seconds).delay_before(attempt + 1, self._rng)
        return self.clock.now() + timedelta(seconds=delay)

    def abandon_dead_sessions(self, current: HostSession) -> list[tuple[UUID, int]]:
        """Abandon the attempts that dead host sessions left running (any session but
        ``current``: only one host runs the service); retry them by their task's policy.
        Return the (run id, attempt) abandoned here."""
        self.read_models.catch_up()
        abandoned: list[tuple[UUID, int]] = []
        for view in self.read_models.runs(status="running", limit=None):
            if view.session_id == current.session_id:
                continue
            run = self._uow.get(view.id, TaskRun)
            if run is None or run.status != "running":
                continue
            task = self._uow.get(run.task_id, TaskDefinition)
            retry = task.retry if task is not None else DEAD_HOST_RETRY
            run.abandon(
                f"the host session {view.session_id} ended while attempt {run.attempt} ran",
                self._retry_at(retry.max_attempts, retry.backoff_seconds, run.attempt),
            )
            if not self._writer.save(run):
                continue
            abandoned.append((run.id, run.attempt))
            if run.is_final and task is not None:
                self.check_failures(task.id)
        return abandoned

    def abandon_own_attempt(self, started: StartedAttempt, reason: str) -> bool:
        """Abandon an attempt this host started but will not run (its lease became unsafe
        before the operation was called); it is retried by the task's policy."""
        run, task = started.run, started.task
        run.abandon(reason, self._retry_at(task.max_attempts, task.backoff_seconds,
                                           started.attempt))
        return self._writer.save(run)

    def check_failures(self, task_id: UUID) -> None:
        """Notify the operator once, when a task's failures in a row reach the threshold."""
        self.read_models.catch_up()
        threshold = self.failure_warning_threshold
        failing = {view.id: view for view in self.read_models.failing_tasks(threshold)}
        view = failing.get(task_id)
        if view is not None and view.consecutive_failures == threshold:
            self._notifier.notify(
                f"task {view.name!r} ({view.kind}, {view.company}) keeps failing",
                f"its last {threshold} runs failed; see soa runs list --task {task_id}",
            )


def one_line(error: BaseException) -> str:
    """The first line of an error's message (at most 500 characters), or its class."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value
