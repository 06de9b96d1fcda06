"""The task list: every task definition as it now is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, insert, select, update

from engine.adapters.schema import tasks
from engine.domain.task_definition import TaskDefinition
from engine.domain.task_run import TaskRun
from engine.projections.runner import NumberedEvent, Projection


@dataclass(frozen=True)
class TaskView:
    id: UUID
    company_id: UUID
    company: str
    kind: str
    name: str
    schedule: dict[str, Any]
    catch_up: str
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float | None
    params: dict[str, Any]
    enabled: bool
    paused: bool
    schedule_from: datetime
    considered_through: datetime | None
    consecutive_failures: int
    version: int

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused

    @property
    def state(self) -> str:
        return "disabled" if not self.enabled else "paused" if self.paused else "active"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "company": self.company, "kind": self.kind, "name": self.name,
            "schedule": self.schedule, "catch_up": self.catch_up,
            "max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
            "timeout_seconds": self.timeout_seconds, "params": self.params,
            "state": self.state, "schedule_from": self.schedule_from.isoformat(),
            "consecutive_failures": self.consecutive_failures,
        }


class TaskList(Projection):
    """``soa_tasks``: one row per task definition (removed ones are flagged, not shown)."""

    name = "tasks"
    tables = (tasks,)

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        for _, event in events:
            row = tasks.c.id == str(event.originator_id)
            version = event.originator_version
            match event:
                case TaskDefinition.Defined():
                    connection.execute(insert(tasks).values(
                        id=str(event.originator_id), company_id=str(event.company_id),
                        company=event.company, kind=event.kind, name=event.name,
                        schedule=event.schedule, catch_up=event.catch_up,
                        max_attempts=event.max_attempts, backoff_seconds=event.backoff_seconds,
                        timeout_seconds=event.timeout_seconds, params=event.params,
                        enabled=True, paused=False, removed=False,
                        schedule_from=event.schedule_from, consecutive_failures=0,
                        version=version,
                    ))
                case TaskDefinition.Edited():
                    changes: dict[str, Any] = {
                        "name": event.name, "schedule": event.schedule,
                        "catch_up": event.catch_up, "max_attempts": event.max_attempts,
                        "backoff_seconds": event.backoff_seconds,
                        "timeout_seconds": event.timeout_seconds, "params": event.params,
                        "version": version,
                    }
                    if event.schedule_changed:
                        changes["schedule_from"] = event.at
                    connection.execute(update(tasks).where(row).values(**changes))
                case TaskDefinition.Enabled():
                    connection.execute(update(tasks).where(row).values(
                        enabled=True, schedule_from=event.at, version=version
                    ))
                case TaskDefinition.Disabled():
                    connection.execute(
                        update(tasks).where(row).values(enabled=False, version=version)
                    )
                case TaskDefinition.Paused() | TaskDefinition.Resumed():
                    paused = isinstance(event, TaskDefinition.Paused)
                    connection.execute(
                        update(tasks).where(row).values(paused=paused, version=version)
                    )
                case TaskDefinition.CatchUpApplied():
                    connection.execute(update(tasks).where(row).values(
                        considered_through=event.through, version=version
                    ))
                case TaskRun.Succeeded():
                    connection.execute(update(tasks).where(
                        tasks.c.id == str(event.task_id)).values(consecutive_failures=0))
                case TaskRun.Failed() | TaskRun.Abandoned() if getattr(event, "final", True):
                    connection.execute(update(tasks).where(
                        tasks.c.id == str(event.task_id)).values(
                        consecutive_failures=tasks.c.consecutive_failures + 1))
                case TaskDefinition.Removed():
                    connection.execute(
                        update(tasks).where(row).values(removed=True, version=version)
                    )

    @staticmethod
    def read(
        engine: Engine, *, company_id: UUID | None = None, task_id: UUID | None = None
    ) -> list[TaskView]:
        query = select(tasks).where(tasks.c.removed.is_(False))
        if company_id is not None:
            query = query.where(tasks.c.company_id == str(company_id))
        if task_id is not None:
            query = query.where(tasks.c.id == str(task_id))
        query = query.order_by(tasks.c.company, tasks.c.name, tasks.c.id)
        with engine.connect() as connection:
            return [_view(row) for row in connection.execute(query)]

    @staticmethod
    def failing(engine: Engine, threshold: int) -> list[TaskView]:
        """Tasks whose latest ``threshold`` or more finished runs all failed."""
        query = select(tasks).where(tasks.c.removed.is_(False)).where(
            tasks.c.consecutive_failures >= threshold
        )
        with engine.connect() as connection:
            return [_view(row) for row in connection.execute(query)]

    @staticmethod
    def fingerprint(engine: Engine) -> tuple[int, int]:
        """A cheap value that changes whenever any task changes (for live pickup)."""
        from sqlalchemy import func

        with engine.connect() as connection:
            row = connection.execute(
                select(func.count(), func.coalesce(func.sum(tasks.c.version), 0))
            ).one()
        return int(row[0]), int(row[1])


def _view(row: Any) -> TaskView:
    return TaskView(
        id=UUID(row.id), company_id=UUID(row.company_id), company=row.company, kind=row.kind,
        name=row.name, schedule=dict(row.schedule), catch_up=row.catch_up,
        max_attempts=row.max_attempts, backoff_seconds=row.backoff_seconds,
        timeout_seconds=row.timeout_seconds, params=dict(row.params), enabled=row.enabled,
        paused=row.paused, schedule_from=row.schedule_from,
        considered_through=row.considered_through,
        consecutive_failures=row.consecutive_failures, version=row.version,
    )
