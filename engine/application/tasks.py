"""Use cases of companies and task definitions.

Commands load aggregates, call their methods and save them in one transaction. Those
whose effect does not depend on what another writer did (adding, editing, pausing or
removing a task, removing a company) are applied again when another writer got in
first; adding a company that another command added meanwhile is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.application.unit_of_work import UnitOfWork
from engine.domain.company import Company, CompanyExistsError, check_company_name, company_id
from engine.domain.errors import NotFoundError
from engine.domain.task_definition import RetryPolicy, TaskDefinition
from engine.operations.registry import OperationRegistry
from engine.ports.host import Clock
from engine.ports.outbound import CompanyDatabases
from engine.ports.read_models import CompanyView, ReadModels, TaskView
from engine.scheduling.arithmetic import next_occurrence
from engine.scheduling.schedule import Schedule, ScheduleSpec

MIN_ID_PREFIX = 4
TASK_STATE_ACTIONS = ("enable", "disable", "pause", "resume")
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class TaskSummary:
    """A task as it now is, and when it runs next (None while paused or disabled)."""

    task: TaskView
    next_run: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {**self.task.as_json(),
                "next_run": self.next_run.isoformat() if self.next_run else None}


def next_run(task: TaskView, now: datetime) -> datetime | None:
    """The task's next occurrence after ``now``, or None while it is not active."""
    if not task.is_active:
        return None
    return next_occurrence(task.schedule, max(now, task.schedule_from))


def resolve(reference: str, find: Callable[[str, int], list[UUID]], what: str) -> UUID:
    """The id that is ``reference`` or starts with it (at least 4 characters).

    :raises NotFoundError: if too short, unknown or not unique.
    """
    text = reference.strip().lower()
    if len(text) < MIN_ID_PREFIX:
        raise NotFoundError(
            f"{what} id {reference!r} is too short; give at least {MIN_ID_PREFIX} characters"
        )
    matches = find(text, 2)
    if not matches:
        raise NotFoundError(f"no {what} has an id starting with {reference!r}")
    if len(matches) > 1:
        raise NotFoundError(
            f"several {what}s have ids starting with {reference!r}; give more of it"
        )
    return matches[0]


class TaskService:
    """Companies and task definitions, as seen from one station."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        read_models: ReadModels,
        registry: OperationRegistry,
        databases: CompanyDatabases,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self.read_models = read_models
        self.registry = registry
        self._databases = databases
        self.clock = clock

    # -- companies ---------------------------------------------------------------------

    def add_company(self, name: str, database_url: str | None = None) -> CompanyView:
        """Register a company database (default: a SQLite file under SOA_HOME).

        :raises DomainError: for a bad name or URL, or a name already taken.
        """
        name = check_company_name(name)
        url = (self._databases.default_url(name) if database_url is None
               else self._databases.check_url(database_url))
        company = self._uow.get(company_id(name), Company)
        if company is not None:
            company.readd(url)
            self._uow.save(company)
        else:
            company = Company(name=name, database_url=url)
            self._uow.save(company, conflict=lambda: CompanyExistsError(name))
        return CompanyView(
            id=company.id, name=company.name, database_url=company.database_url,
            task_count=len(company.task_ids), added_at=company.modified_on,
        )

    def companies(self) -> list[CompanyView]:
        self.read_models.catch_up()
        return self.read_models.companies()

    def remove_company(self, name: str) -> None:
        """:raises DomainError: if unknown, or while tasks use it."""

        def remove() -> None:
            company = self._company(name)
            company.remove()
            self._uow.save(company)

        self._uow.retrying(remove)

    def _company(self, name: str) -> Company:
        company = self._uow.get(company_id(name), Company)
        if company is None or company.removed:
            known = ", ".join(view.name for view in self.read_models.companies()) or "none yet"
            raise NotFoundError(f"company {name.strip()!r} is not known; known are: {known}")
        return company

    # -- tasks -------------------------------------------------------------------------

    def add_task(
        self,
        kind: str,
        *,
        company: str,
        name: str,
        schedule: Schedule | ScheduleSpec,
        catch_up: str | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        timeout_seconds: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> UUID:
        """Define a task; return its id. A :class:`ScheduleSpec` is made a schedule here
        (an ``every`` rule counts from now).

        :raises DomainError: unknown or unavailable kind, bad parameters, unknown
            company, bad settings.
        """
        validated = self.registry.validate_params(kind, params or {})
        now = self.clock.now()
        if isinstance(schedule, ScheduleSpec):
            schedule = schedule.new(now=now)
        retry = RetryPolicy(max_attempts or DEFAULT_RETRY.max_attempts,
                            backoff_seconds or DEFAULT_RETRY.backoff_seconds)
        policy = catch_up or self.registry.default_catch_up(kind)

        def define() -> UUID:
            owner = self._company(company)
            task = TaskDefinition.define(
                company_id=owner.id, company=owner.name, kind=kind, name=name,
                schedule=schedule, catch_up=policy, retry=retry,
                timeout_seconds=timeout_seconds, params=validated, at=now,
            )
            owner.attach_task(task.id)
            self._uow.save(owner, task)
            return task.id

        return self._uow.retrying(define)

    def tasks(self, company: str | None = None) -> list[TaskSummary]:
        """The tasks (of ``company``), each with its next run."""
        self.read_models.catch_up()
        owner = self._company(company).id if company is not None else None
        now = self.clock.now()
        return [TaskSummary(task, next_run(task, now))
                for task in self.read_models.tasks(company_id=owner)]

    def task(self, reference: str) -> TaskSummary:
        """The task whose id is ``reference`` or starts with it (at least 4 characters)."""
        view = self.read_models.task(self._resolve(reference))
        if view is None:
            raise NotFoundError(f"task {reference!r} was removed")
        return TaskSummary(view, next_run(view, self.clock.now()))

    def edit_task(
        self,
        reference: str,
        *,
        name: str | None = None,
        schedule: Schedule | ScheduleSpec | None = None,
        catch_up: str | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        timeout_seconds: float | None = None,
        clear_timeout: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> bool:
        """Change the given settings of a task; return False if nothing changed.

        A :class:`ScheduleSpec` changes the current schedule: a new rule keeps the zone
        (and, unless it is ``every``, the business-days limit); a spec without a rule
        changes only the zone or the limit.
        """
        task_id = self._resolve(reference)

        def edit() -> bool:
            task = self._task(task_id)
            now = self.clock.now()
            new_schedule = (schedule.applied_to(task.schedule, now=now)
                            if isinstance(schedule, ScheduleSpec) else schedule)
            retry = None
            if max_attempts is not None or backoff_seconds is not None:
                retry = RetryPolicy(
                    max_attempts if max_attempts is not None else task.retry.max_attempts,
                    backoff_seconds if backoff_seconds is not None
                    else task.retry.backoff_seconds,
                )
            validated = (self.registry.validate_params(task.kind, params)
                         if params is not None else None)
            changed = task.edit(
                name=name, schedule=new_schedule, catch_up=catch_up, retry=retry,
                timeout_seconds=timeout_seconds, clear_timeout=clear_timeout,
                params=validated, at=now,
            )
            if changed:
                self._uow.save(task)
            return changed

        return self._uow.retrying(edit)

    def set_task_state(self, reference: str, action: str) -> bool:
        """Apply ``enable``, ``disable``, ``pause`` or ``resume``; False if already so."""
        if action not in TASK_STATE_ACTIONS:
            raise ValueError(f"action {action!r} is not one of {', '.join(TASK_STATE_ACTIONS)}")
        task_id = self._resolve(reference)

        def apply() -> bool:
            task = self._task(task_id)
            command = getattr(task, action)
            changed = bool(command(self.clock.now()) if action == "enable" else command())
            if changed:
                self._uow.save(task)
            return changed

        return self._uow.retrying(apply)

    def remove_task(self, reference: str) -> None:
        """Remove the task; its runs stay in the history."""
        task_id = self._resolve(reference)

        def remove() -> None:
            task = self._task(task_id)
            owner = self._uow.get(task.company_id, Company)
            task.remove()
            if owner is not None:
                owner.detach_task(task.id)
                self._uow.save(owner, task)
            else:
                self._uow.save(task)

        self._uow.retrying(remove)

    def _resolve(self, reference: str) -> UUID:
        """The task's id (the read models are brought up to date first, once)."""
        self.read_models.catch_up()
        return resolve(
            reference,
            lambda prefix, limit: self.read_models.task_ids_starting_with(prefix, limit=limit),
            "task",
        )

    def _task(self, task_id: UUID) -> TaskDefinition:
        task = self._uow.get(task_id, TaskDefinition)
        if task is None:
            raise NotFoundError(f"task {task_id} does not exist")
        return task
