"""The :class:`engine.ports.ReadModels` port over the SQL projections.

The queries read the projections' tables directly; the projections themselves (and the
domain events they match) are imported only when a catch-up has events to apply, so a
read command on a store that is up to date loads neither the domain nor eventsourcing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import Engine, and_, delete, func, or_, select

from engine.adapters.schema import (
    SERVICE_VIEW_ROW_ID,
    companies,
    log_entries,
    runs,
    service_view,
    tasks,
)
from engine.adapters.sql import translating_store_errors
from engine.ports.read_models import (
    CompanyView,
    LogEntry,
    LogStatus,
    ReadModels,
    RunView,
    ServiceView,
    TaskView,
)
from engine.projections.runner import NotificationLog, ProjectionRunner

if TYPE_CHECKING:
    from engine.projections.runner import Projection

PROJECTION_NAMES = ("companies", "log_list", "runs", "service_view", "tasks")
"""The names of :func:`all_projections`, known without building them."""


def all_projections() -> list[Projection]:
    """Every read model of the engine, fed by one :class:`ProjectionRunner`."""
    from engine.projections.companies import CompanyList
    from engine.projections.log_list import LogList
    from engine.projections.runs import RunList
    from engine.projections.service_view import ServiceViewProjection
    from engine.projections.tasks import TaskList

    return [ServiceViewProjection(), LogList(), CompanyList(), TaskList(), RunList()]


class SqlReadModels(ReadModels):
    """The read models in the store's database; every SQLAlchemy error leaves as
    :class:`engine.ports.StoreUnavailableError`."""

    def __init__(self, engine: Engine, log: NotificationLog, *, events_table: str) -> None:
        self.sql_engine = engine
        self.runner = ProjectionRunner(
            engine, log, all_projections, names=PROJECTION_NAMES, events_table=events_table
        )

    @translating_store_errors
    def catch_up(self) -> int:
        return self.runner.catch_up()

    @translating_store_errors
    def rebuild(self) -> int:
        return self.runner.rebuild()

    @translating_store_errors
    def lag(self) -> int:
        """Events recorded that not every read model has applied yet."""
        return self.runner.lag()

    @translating_store_errors
    def run_counts(self) -> dict[tuple[str, str], int]:
        """How many runs each (kind, status) has."""
        query = select(runs.c.kind, runs.c.status, func.count()).group_by(
            runs.c.kind, runs.c.status
        )
        with self.sql_engine.connect() as connection:
            return {(kind, status): count for kind, status, count in connection.execute(query)}

    @translating_store_errors
    def service_view(self) -> ServiceView:
        with self.sql_engine.connect() as connection:
            row = connection.execute(
                select(service_view).where(service_view.c.id == SERVICE_VIEW_ROW_ID)
            ).one()
        return ServiceView(
            account=row.account,
            log_retention_days=row.log_retention_days,
            station=row.station,
            session_id=UUID(row.session_id) if row.session_id else None,
            pid=row.pid,
            host=row.host,
            since=row.since,
            api_url=row.api_url,
        )

    @translating_store_errors
    def log_entries(
        self, *, not_before: datetime, status: LogStatus | None = None,
        operation: str | None = None, company: str | None = None, limit: int = 100,
        offset: int = 0,
    ) -> list[LogEntry]:
        query = select(log_entries).where(log_entries.c.time >= not_before)
        if status is not None:
            query = query.where(log_entries.c.status == status)
        if operation is not None:
            query = query.where(log_entries.c.operation == operation)
        if company is not None:
            query = query.where(log_entries.c.company == company)
        query = query.order_by(log_entries.c.time.desc(), log_entries.c.id.desc())
        query = query.limit(limit).offset(offset)
        with self.sql_engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            LogEntry(
                time=row.time, station=row.station, operation=row.operation,
                status=row.status, message=row.message, company=row.company, run_id=row.run_id,
            )
            for row in rows
        ]

    @translating_store_errors
    def delete_log_entries_before(self, cutoff: datetime) -> int:
        with self.sql_engine.begin() as connection:
            result = connection.execute(delete(log_entries).where(log_entries.c.time < cutoff))
            return result.rowcount

    @translating_store_errors
    def companies(self) -> list[CompanyView]:
        query = select(companies).where(companies.c.removed.is_(False)).order_by(companies.c.name)
        with self.sql_engine.connect() as connection:
            return [_company_view(row) for row in connection.execute(query)]

    @translating_store_errors
    def company(self, company_id: UUID) -> CompanyView | None:
        with self.sql_engine.connect() as connection:
            row = connection.execute(
                select(companies).where(companies.c.id == str(company_id))
            ).first()
        return _company_view(row) if row is not None else None

    @translating_store_errors
    def tasks(self, *, company_id: UUID | None = None) -> list[TaskView]:
        return self._tasks(company_id=company_id)

    @translating_store_errors
    def task(self, task_id: UUID) -> TaskView | None:
        found = self._tasks(task_id=task_id)
        return found[0] if found else None

    def _tasks(
        self, *, company_id: UUID | None = None, task_id: UUID | None = None
    ) -> list[TaskView]:
        query = select(tasks).where(tasks.c.removed.is_(False))
        if company_id is not None:
            query = query.where(tasks.c.company_id == str(company_id))
        if task_id is not None:
            query = query.where(tasks.c.id == str(task_id))
        query = query.order_by(tasks.c.company, tasks.c.name, tasks.c.id)
        with self.sql_engine.connect() as connection:
            return [_task_view(row) for row in connection.execute(query)]

    @translating_store_errors
    def task_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        query = (select(tasks.c.id).where(tasks.c.removed.is_(False))
                 .where(tasks.c.id.startswith(prefix, autoescape=True))
                 .order_by(tasks.c.id).limit(limit))
        with self.sql_engine.connect() as connection:
            return [UUID(task_id) for task_id in connection.execute(query).scalars()]

    @translating_store_errors
    def failing_tasks(self, threshold: int) -> list[TaskView]:
        query = select(tasks).where(tasks.c.removed.is_(False)).where(
            tasks.c.consecutive_failures >= threshold
        )
        with self.sql_engine.connect() as connection:
            return [_task_view(row) for row in connection.execute(query)]

    @translating_store_errors
    def tasks_fingerprint(self) -> tuple[int, int]:
        with self.sql_engine.connect() as connection:
            row = connection.execute(
                select(func.count(), func.coalesce(func.sum(tasks.c.version), 0))
            ).one()
        return int(row[0]), int(row[1])

    @translating_store_errors
    def runs(
        self, *, task_id: UUID | None = None, status: str | None = None,
        limit: int | None = 100, offset: int = 0,
    ) -> list[RunView]:
        query = select(runs)
        if task_id is not None:
            query = query.where(runs.c.task_id == str(task_id))
        if status is not None:
            query = query.where(runs.c.status == status)
        query = query.order_by(runs.c.scheduled_for.desc(), runs.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.sql_engine.connect() as connection:
            return [_run_view(row) for row in connection.execute(query)]

    @translating_store_errors
    def run(self, run_id: UUID) -> RunView | None:
        with self.sql_engine.connect() as connection:
            row = connection.execute(select(runs).where(runs.c.id == str(run_id))).first()
        return _run_view(row) if row is not None else None

    @translating_store_errors
    def run_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        query = (select(runs.c.id).where(runs.c.id.startswith(prefix, autoescape=True))
                 .order_by(runs.c.id).limit(limit))
        with self.sql_engine.connect() as connection:
            return [UUID(run_id) for run_id in connection.execute(query).scalars()]

    @translating_store_errors
    def due_runs(
        self, now: datetime, *, limit: int, busy_tasks: Collection[UUID] = ()
    ) -> list[RunView]:
        query = (
            select(runs)
            .outerjoin(tasks, tasks.c.id == runs.c.task_id)
            .where(or_(
                and_(runs.c.status == "scheduled", runs.c.scheduled_for <= now),
                and_(runs.c.status == "retrying", runs.c.retry_at <= now),
            ))
            .where(or_(runs.c.manual.is_(True), tasks.c.paused.is_not(True)))
            .order_by(runs.c.scheduled_for, runs.c.id)
            .limit(limit)
        )
        if busy_tasks:
            query = query.where(runs.c.task_id.not_in([str(task) for task in busy_tasks]))
        with self.sql_engine.connect() as connection:
            return [_run_view(row) for row in connection.execute(query)]

    @translating_store_errors
    def last_scheduled(self) -> dict[UUID, datetime]:
        query = (
            select(runs.c.task_id, func.max(runs.c.scheduled_for))
            .where(runs.c.manual.is_(False))
            .group_by(runs.c.task_id)
        )
        with self.sql_engine.connect() as connection:
            return {UUID(task_id): latest for task_id, latest in connection.execute(query)}


def _company_view(row: Any) -> CompanyView:
    return CompanyView(
        id=UUID(row.id), name=row.name, database_url=row.database_url,
        task_count=row.task_count, added_at=row.added_at, removed=row.removed,
    )


def _task_view(row: Any) -> TaskView:
    from engine.scheduling.schedule import Schedule  # only when tasks are read

    return TaskView(
        id=UUID(row.id), company_id=UUID(row.company_id), company=row.company, kind=row.kind,
        name=row.name, schedule=Schedule.from_dict(row.schedule), catch_up=row.catch_up,
        max_attempts=row.max_attempts, backoff_seconds=row.backoff_seconds,
        timeout_seconds=row.timeout_seconds, params=dict(row.params), enabled=row.enabled,
        paused=row.paused, schedule_from=row.schedule_from,
        considered_through=row.considered_through,
        consecutive_failures=row.consecutive_failures, version=row.version,
    )


def _run_view(row: Any) -> RunView:
    return RunView(
        id=UUID(row.id), task_id=UUID(row.task_id), company=row.company, kind=row.kind,
        scheduled_for=row.scheduled_for, manual=row.manual, status=row.status,
        attempts=row.attempts, max_attempts=row.max_attempts, retry_at=row.retry_at,
        session_id=UUID(row.session_id) if row.session_id else None,
        started_at=row.started_at, finished_at=row.finished_at,
        duration_seconds=row.duration_seconds, counts=row.counts, error=row.error,
    )
