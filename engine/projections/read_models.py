"""The :class:`engine.ports.ReadModels` port over the SQL projections."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import Engine

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
from engine.projections.companies import CompanyList
from engine.projections.log_list import LogList
from engine.projections.runner import NotificationLog, Projection, ProjectionRunner
from engine.projections.runs import RunList
from engine.projections.service_view import ServiceViewProjection
from engine.projections.tasks import TaskList


def all_projections() -> list[Projection]:
    """Every read model of the engine, fed by one :class:`ProjectionRunner`."""
    return [ServiceViewProjection(), LogList(), CompanyList(), TaskList(), RunList()]


class SqlReadModels(ReadModels):
    """The read models in the store's database; every SQLAlchemy error leaves as
    :class:`engine.ports.StoreUnavailableError`."""

    def __init__(self, engine: Engine, log: NotificationLog, *, events_table: str) -> None:
        self.sql_engine = engine
        self.runner = ProjectionRunner(engine, log, all_projections(), events_table=events_table)

    @translating_store_errors
    def catch_up(self) -> int:
        return self.runner.catch_up()

    @translating_store_errors
    def rebuild(self) -> int:
        return self.runner.rebuild()

    @translating_store_errors
    def service_view(self) -> ServiceView:
        return ServiceViewProjection.read(self.sql_engine)

    @translating_store_errors
    def log_entries(
        self, *, not_before: datetime, status: LogStatus | None = None,
        operation: str | None = None, company: str | None = None, limit: int = 100,
    ) -> list[LogEntry]:
        return LogList.read(self.sql_engine, not_before=not_before, status=status,
                            operation=operation, company=company, limit=limit)

    @translating_store_errors
    def delete_log_entries_before(self, cutoff: datetime) -> int:
        return LogList.delete_older_than(self.sql_engine, cutoff)

    @translating_store_errors
    def companies(self) -> list[CompanyView]:
        return CompanyList.read(self.sql_engine)

    @translating_store_errors
    def company(self, company_id: UUID) -> CompanyView | None:
        return CompanyList.get(self.sql_engine, company_id)

    @translating_store_errors
    def tasks(self, *, company_id: UUID | None = None) -> list[TaskView]:
        return TaskList.read(self.sql_engine, company_id=company_id)

    @translating_store_errors
    def task(self, task_id: UUID) -> TaskView | None:
        found = TaskList.read(self.sql_engine, task_id=task_id)
        return found[0] if found else None

    @translating_store_errors
    def task_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        return TaskList.ids_starting_with(self.sql_engine, prefix, limit)

    @translating_store_errors
    def failing_tasks(self, threshold: int) -> list[TaskView]:
        return TaskList.failing(self.sql_engine, threshold)

    @translating_store_errors
    def tasks_fingerprint(self) -> tuple[int, int]:
        return TaskList.fingerprint(self.sql_engine)

    @translating_store_errors
    def runs(
        self, *, task_id: UUID | None = None, status: str | None = None,
        limit: int | None = 100,
    ) -> list[RunView]:
        return RunList.read(self.sql_engine, task_id=task_id, status=status, limit=limit)

    @translating_store_errors
    def run(self, run_id: UUID) -> RunView | None:
        return RunList.get(self.sql_engine, run_id)

    @translating_store_errors
    def run_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        return RunList.ids_starting_with(self.sql_engine, prefix, limit)

    @translating_store_errors
    def due_runs(
        self, now: datetime, *, limit: int, busy_tasks: Collection[UUID] = ()
    ) -> list[RunView]:
        return RunList.due(self.sql_engine, now, limit, busy_tasks=busy_tasks)

    @translating_store_errors
    def last_scheduled(self) -> dict[UUID, datetime]:
        return RunList.last_scheduled(self.sql_engine)
