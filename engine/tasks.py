"""Use cases of companies, task definitions and task runs.

Commands load aggregates, call one method, save in one transaction and bring
the projections up to date, like :mod:`engine.application`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.adapters.event_store import SoaStore
from engine.application import ConcurrentChangeError
from engine.domain.company import Company, CompanyError, check_company_name, company_id
from engine.domain.errors import DomainError
from engine.domain.task_definition import RetryPolicy, TaskDefinition
from engine.domain.task_run import RUN_STATUSES, TaskRun
from engine.operations.registry import OperationRegistry
from engine.ports import Clock
from engine.projections.companies import CompanyList, CompanyView
from engine.projections.runner import ProjectionRunner
from engine.projections.runs import RunList, RunView
from engine.projections.tasks import TaskList, TaskView
from engine.scheduling.schedule import Schedule

MIN_ID_PREFIX = 4
TAggregate = TypeVar("TAggregate", Company, TaskDefinition)


class NotFoundError(DomainError):
    """Signals a company, task or run that does not exist."""


class InvalidCompanyDatabaseError(DomainError):
    """Signals a company database URL the engine cannot use."""


@dataclass(frozen=True)
class RunHistoryEntry:
    """One event of a run, for ``soa runs show``."""

    time: datetime
    event: str
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "event": self.event, "details": self.details}


class TaskService:
    """Companies, tasks and runs, as seen from one station."""

    def __init__(
        self,
        *,
        store: SoaStore,
        engine: Engine,
        projections: ProjectionRunner,
        registry: OperationRegistry,
        clock: Clock,
        station: str,
        home: Path,
    ) -> None:
        self.store = store
        self.engine = engine
        self.projections = projections
        self.registry = registry
        self.clock = clock
        self.station = station
        self.home = home

    # -- companies ---------------------------------------------------------------------

    def add_company(self, name: str, database_url: str | None = None) -> CompanyView:
        """Register a company database (default: a SQLite file under SOA_HOME).

        :raises DomainError: for a bad name or URL, or a name already taken.
        """
        name = check_company_name(name)
        url = self._company_database_url(name, database_url)
        existing = self._load(company_id(name), Company)
        if existing is not None:
            existing.readd(url)
            self._save(existing)
        else:
            self._save(Company(name=name, database_url=url), taken=f"company {name!r} exists")
        return next(view for view in self.companies() if view.name.casefold() == name.casefold())

    def companies(self) -> list[CompanyView]:
        self.projections.catch_up()
        return CompanyList.read(self.engine)

    def remove_company(self, name: str) -> None:
        """:raises DomainError: if unknown, or while tasks use it."""
        company = self._company(name)
        company.remove()
        self._save(company)

    def _company(self, name: str) -> Company:
        company = self._load(company_id(name), Company)
        if company is None or company.removed:
            known = ", ".join(view.name for view in self.companies()) or "none yet"
            raise NotFoundError(f"company {name.strip()!r} is not known; known are: {known}")
        return company

    def _company_database_url(self, name: str, database_url: str | None) -> str:
        if database_url is None:
            slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:40] or "company"
            digest = hashlib.sha256(name.casefold().encode()).hexdigest()[:8]
            folder = self.home / "companies"
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            return f"sqlite:///{folder / f'{slug}-{digest}'}.db"
        try:
            url = make_url(database_url)
        except ArgumentError:
            raise InvalidCompanyDatabaseError(
                f"company database {database_url!r} is not a URL; expected sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST:PORT/DATABASE"
            ) from None
        if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
            raise InvalidCompanyDatabaseError(
                f"company database scheme {url.drivername!r} is not supported; expected "
                "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
            )
        if url.password:
            raise InvalidCompanyDatabaseError(
                "a company database URL must not contain a password (it would be stored); "
                "use ~/.pgpass or PGPASSWORD"
            )
        return database_url

    # -- tasks -------------------------------------------------------------------------

    def add_task(
        self,
        kind: str,
        *,
        company: str,
        name: str,
        schedule: Schedule,
        catch_up: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_seconds: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> UUID:
        """Define a task; return its id.

        :raises DomainError: unknown or unavailable kind, bad parameters, unknown
            company, bad settings.
        """
        validated = self.registry.validate_params(kind, params or {})
        owner = self._company(company)
        task = TaskDefinition.define(
            company_id=owner.id, company=owner.name, kind=kind, name=name,
            schedule=schedule.to_dict(),
            catch_up=catch_up or self.registry.default_catch_up(kind),
            retry=retry or RetryPolicy(), timeout_seconds=timeout_seconds, params=validated,
            at=self.clock.now(),
        )
        owner.attach_task(task.id)
        self._save(owner, task)
        return task.id

    def tasks(self, company: str | None = None) -> list[TaskView]:
        self.projections.catch_up()
        owner = self._company(company).id if company is not None else None
        return TaskList.read(self.engine, company_id=owner)

    def task(self, reference: str) -> TaskView:
        """The task whose id is ``reference`` or starts with it (at least 4 characters)."""
        task_id = self._resolve(reference, [view.id for view in self.tasks()], "task")
        return TaskList.read(self.engine, task_id=task_id)[0]

    def edit_task(
        self,
        reference: str,
        *,
        name: str | None = None,
        schedule: Schedule | None = None,
        catch_up: str | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        timeout_seconds: float | None = None,
        clear_timeout: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> bool:
        """Change the given settings of a task; return False if nothing changed."""
        task = self._task_aggregate(reference)
        retry = None
        if max_attempts is not None or backoff_seconds is not None:
            retry = RetryPolicy(
                max_attempts if max_attempts is not None else task.retry.max_attempts,
                backoff_seconds if backoff_seconds is not None else task.retry.backoff_seconds,
            )
        validated = self.registry.validate_params(task.kind, params) if params is not None else None
        changed = task.edit(
            name=name, schedule=schedule.to_dict() if schedule else None, catch_up=catch_up,
            retry=retry, timeout_seconds=timeout_seconds, clear_timeout=clear_timeout,
            params=validated, at=self.clock.now(),
        )
        if changed:
            self._save(task)
        return changed

    def set_task_state(self, reference: str, action: str) -> bool:
        """Apply ``enable``, ``disable``, ``pause`` or ``resume``; False if already so."""
        task = self._task_aggregate(reference)
        command = getattr(task, action)
        changed = bool(command(self.clock.now()) if action == "enable" else command())
        if changed:
            self._save(task)
        return changed

    def remove_task(self, reference: str) -> None:
        task = self._task_aggregate(reference)
        owner = self._load(task.company_id, Company)
        task.remove()
        if owner is not None:
            owner.detach_task(task.id)
            self._save(owner, task)
        else:
            self._save(task)

    def run_now(self, reference: str) -> UUID:
        """Record a manual occurrence of the task, due now; the running host starts it
        as soon as no other run of the task is running."""
        task = self._task_aggregate(reference)
        task.check_not_removed()
        self.registry.get(task.kind)
        run = TaskRun(
            task_id=task.id, company=task.company, kind=task.kind,
            scheduled_for=self.clock.now(), manual=True, max_attempts=task.retry.max_attempts,
        )
        self._save(run)
        return run.id

    def _task_aggregate(self, reference: str) -> TaskDefinition:
        task_id = self._resolve(reference, [view.id for view in self.tasks()], "task")
        task = self._load(task_id, TaskDefinition)
        assert task is not None
        return task

    # -- runs --------------------------------------------------------------------------

    def runs(
        self, *, task: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[RunView]:
        if status is not None and status not in RUN_STATUSES:
            raise DomainError(
                f"run status {status!r} is not known; allowed are {', '.join(RUN_STATUSES)}"
            )
        self.projections.catch_up()
        task_id = self.task(task).id if task is not None else None
        return RunList.read(self.engine, task_id=task_id, status=status, limit=limit)

    def run(self, reference: str) -> tuple[RunView, list[RunHistoryEntry]]:
        """The run and its full event history."""
        self.projections.catch_up()
        candidates = [view.id for view in RunList.read(self.engine, limit=None)]
        run_id = self._resolve(reference, candidates, "run")
        view = RunList.get(self.engine, run_id)
        assert view is not None
        events: list[Any] = list(self.store.events.get(run_id))
        history = [
            RunHistoryEntry(
                time=event.timestamp, event=type(event).__name__,
                details={
                    key: _jsonable(value) for key, value in event.__dict__.items()
                    if key not in ("originator_id", "originator_version", "timestamp",
                                   "originator_topic")
                },
            )
            for event in events
        ]
        return view, history

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _resolve(reference: str, candidates: Sequence[UUID], what: str) -> UUID:
        text = reference.strip().lower()
        if len(text) < MIN_ID_PREFIX:
            raise NotFoundError(
                f"{what} id {reference!r} is too short; give at least {MIN_ID_PREFIX} characters"
            )
        matches = [candidate for candidate in candidates if str(candidate).startswith(text)]
        if not matches:
            raise NotFoundError(f"no {what} has an id starting with {reference!r}")
        if len(matches) > 1:
            raise NotFoundError(
                f"{len(matches)} {what}s have ids starting with {reference!r}; give more of it"
            )
        return matches[0]

    def _load(self, aggregate_id: UUID, cls: type[TAggregate]) -> TAggregate | None:
        try:
            aggregate: object = self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise NotFoundError(f"{aggregate_id} is not a {cls.__name__}")
        return aggregate

    def _save(self, *aggregates: Any, taken: str | None = None) -> None:
        try:
            self.store.save(*aggregates)
        except IntegrityError:
            if taken is not None:
                raise CompanyError(taken) from None
            raise ConcurrentChangeError() from None
        self.projections.catch_up()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value
