"""The task list: every task definition as it now is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from engine.adapters.schema import tasks
from engine.domain.task_definition import TaskDefinition
from engine.domain.task_run import TaskRun
from engine.ports.read_models import TaskView
from engine.projections.runner import NumberedEvent, Projection
from engine.scheduling.schedule import Schedule


def _write_failures(connection: Connection, outcomes: dict[str, tuple[bool, int]]) -> None:
    """Set the failures in a row of tasks with a success among ``outcomes`` (reset, then
    the failures after it) and add to those of the others."""
    since_success = [
        {"task_id": task_id, "failures": failures}
        for task_id, (reset, failures) in outcomes.items() if reset
    ]
    added = [
        {"task_id": task_id, "failures": failures}
        for task_id, (reset, failures) in outcomes.items() if not reset
    ]
    row = tasks.c.id == bindparam("task_id")
    if since_success:
        connection.execute(
            update(tasks).where(row).values(consecutive_failures=bindparam("failures")),
            since_success,
        )
    if added:
        connection.execute(
            update(tasks).where(row).values(
                consecutive_failures=tasks.c.consecutive_failures + bindparam("failures")
            ),
            added,
        )


class TaskList(Projection):
    """``soa_tasks``: one row per task definition (removed ones are flagged, not shown)."""

    name = "tasks"
    tables = (tasks,)

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        """Definitions change their rows event by event; run outcomes are folded per task
        (failures in a row since the last success) and written after them."""
        outcomes: dict[str, tuple[bool, int]] = {}
        for _, event in events:
            if isinstance(event, TaskRun.Succeeded):
                outcomes[str(event.task_id)] = (True, 0)
                continue
            if isinstance(event, TaskRun.Failed | TaskRun.Abandoned):
                if getattr(event, "final", True):
                    reset, failures = outcomes.get(str(event.task_id), (False, 0))
                    outcomes[str(event.task_id)] = (reset, failures + 1)
                continue
            if not isinstance(event, TaskDefinition.Event):
                continue
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
                case TaskDefinition.Removed():
                    connection.execute(
                        update(tasks).where(row).values(removed=True, version=version)
                    )
        _write_failures(connection, outcomes)

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
    def ids_starting_with(engine: Engine, prefix: str, limit: int) -> list[UUID]:
        query = (select(tasks.c.id).where(tasks.c.removed.is_(False))
                 .where(tasks.c.id.startswith(prefix, autoescape=True))
                 .order_by(tasks.c.id).limit(limit))
        with engine.connect() as connection:
            return [UUID(task_id) for task_id in connection.execute(query).scalars()]

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
        with engine.connect() as connection:
            row = connection.execute(
                select(func.count(), func.coalesce(func.sum(tasks.c.version), 0))
            ).one()
        return int(row[0]), int(row[1])


def _view(row: Any) -> TaskView:
    return TaskView(
        id=UUID(row.id), company_id=UUID(row.company_id), company=row.company, kind=row.kind,
        name=row.name, schedule=Schedule.from_dict(row.schedule), catch_up=row.catch_up,
        max_attempts=row.max_attempts, backoff_seconds=row.backoff_seconds,
        timeout_seconds=row.timeout_seconds, params=dict(row.params), enabled=row.enabled,
        paused=row.paused, schedule_from=row.schedule_from,
        considered_through=row.considered_through,
        consecutive_failures=row.consecutive_failures, version=row.version,
    )
