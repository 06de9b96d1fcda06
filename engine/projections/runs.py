"""The run list: every occurrence of every task with its current status."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update

from engine.adapters.schema import runs, tasks
from engine.domain.task_run import TaskRun
from engine.ports.read_models import RunView
from engine.projections.runner import NumberedEvent, Projection


def _changes(event: Any) -> dict[str, Any]:
    """The columns an event of a run changes (``started_at`` only where still empty)."""
    match event:
        case TaskRun.Started():
            return {
                "status": "running", "attempts": event.attempt, "retry_at": None,
                "session_id": str(event.session_id), "started_at": event.timestamp,
            }
        case TaskRun.AttemptFailed():
            return {
                "session_id": None, "duration_seconds": event.duration_seconds,
                "error": f"{event.error_class}: {event.error_message}",
            }
        case TaskRun.RetryScheduled():
            return {"status": "retrying", "retry_at": event.retry_at}
        case TaskRun.Succeeded():
            return {
                "status": "succeeded", "session_id": None, "finished_at": event.timestamp,
                "duration_seconds": event.duration_seconds, "counts": event.counts,
                "error": None,
            }
        case TaskRun.Failed():
            return {"status": "failed", "finished_at": event.timestamp}
        case TaskRun.Abandoned():
            changes: dict[str, Any] = {"session_id": None, "error": event.reason}
            if event.final:
                changes.update(status="abandoned", finished_at=event.timestamp)
            return changes
        case TaskRun.Skipped():
            return {"status": "skipped", "finished_at": event.timestamp, "error": event.reason}
    return {}


class RunList(Projection):
    """``soa_runs``: one row per task run."""

    name = "runs"
    tables = (runs,)

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        """Fold the events of each run, then write one row per run: new runs in one
        multi-row insert, changed runs in one statement per set of changed columns."""
        new: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}
        for _, event in events:
            run_id = str(event.originator_id)
            if isinstance(event, TaskRun.Scheduled):
                new[run_id] = _new_row(run_id, event)
                continue
            row = new.get(run_id)
            if row is None:
                row = changed.setdefault(run_id, {})
            for column, value in _changes(event).items():
                if column == "started_at":
                    if row.get(column) is None:
                        row[column] = value
                else:
                    row[column] = value
        if new:
            connection.execute(insert(runs), list(new.values()))
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for run_id, changes in changed.items():
            if changes:
                by_columns.setdefault(tuple(sorted(changes)), []).append(
                    {"run_id": run_id, **{f"new_{column}": value
                                          for column, value in changes.items()}}
                )
        for columns, rows in by_columns.items():
            values: dict[str, Any] = {
                column: bindparam(f"new_{column}") for column in columns
            }
            if "started_at" in values:
                values["started_at"] = func.coalesce(runs.c.started_at, values["started_at"])
            connection.execute(
                update(runs).where(runs.c.id == bindparam("run_id")).values(values), rows
            )

    @staticmethod
    def read(
        engine: Engine,
        *,
        task_id: UUID | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> list[RunView]:
        query = select(runs)
        if task_id is not None:
            query = query.where(runs.c.task_id == str(task_id))
        if status is not None:
            query = query.where(runs.c.status == status)
        query = query.order_by(runs.c.scheduled_for.desc(), runs.c.id)
        if limit is not None:
            query = query.limit(limit)
        with engine.connect() as connection:
            return [_view(row) for row in connection.execute(query)]

    @staticmethod
    def due(
        engine: Engine, now: datetime, limit: int, *, busy_tasks: Collection[UUID] = ()
    ) -> list[RunView]:
        """Runs waiting to start whose time has come, oldest first, at most ``limit``.

        Leaves out the runs of ``busy_tasks`` and the scheduled (not manual) runs of
        paused tasks, which could not start now anyway.
        """
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
        with engine.connect() as connection:
            return [_view(row) for row in connection.execute(query)]

    @staticmethod
    def ids_starting_with(engine: Engine, prefix: str, limit: int) -> list[UUID]:
        query = (select(runs.c.id).where(runs.c.id.startswith(prefix, autoescape=True))
                 .order_by(runs.c.id).limit(limit))
        with engine.connect() as connection:
            return [UUID(run_id) for run_id in connection.execute(query).scalars()]

    @staticmethod
    def get(engine: Engine, run_id: UUID) -> RunView | None:
        with engine.connect() as connection:
            row = connection.execute(select(runs).where(runs.c.id == str(run_id))).first()
        return _view(row) if row is not None else None

    @staticmethod
    def last_scheduled(engine: Engine) -> dict[UUID, datetime]:
        """Each task's latest scheduled (not manual) occurrence: where its schedule got to."""
        query = (
            select(runs.c.task_id, func.max(runs.c.scheduled_for))
            .where(runs.c.manual.is_(False))
            .group_by(runs.c.task_id)
        )
        with engine.connect() as connection:
            return {UUID(task_id): latest for task_id, latest in connection.execute(query)}


def _new_row(run_id: str, event: TaskRun.Scheduled) -> dict[str, Any]:
    return {
        "id": run_id, "task_id": str(event.task_id), "company": event.company,
        "kind": event.kind, "scheduled_for": event.scheduled_for, "manual": event.manual,
        "status": "scheduled", "attempts": 0, "max_attempts": event.max_attempts,
        "retry_at": None, "session_id": None, "started_at": None, "finished_at": None,
        "duration_seconds": None, "counts": None, "error": None,
    }


def _view(row: Any) -> RunView:
    return RunView(
        id=UUID(row.id), task_id=UUID(row.task_id), company=row.company, kind=row.kind,
        scheduled_for=row.scheduled_for, manual=row.manual, status=row.status,
        attempts=row.attempts, max_attempts=row.max_attempts, retry_at=row.retry_at,
        session_id=UUID(row.session_id) if row.session_id else None,
        started_at=row.started_at, finished_at=row.finished_at,
        duration_seconds=row.duration_seconds, counts=row.counts, error=row.error,
    )
