"""The run list: every occurrence of every task with its current status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, update

from engine.adapters.schema import runs
from engine.domain.task_run import TaskRun
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
            if not isinstance(event, TaskRun.Event):
                continue
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


def _new_row(run_id: str, event: TaskRun.Scheduled) -> dict[str, Any]:
    return {
        "id": run_id, "task_id": str(event.task_id), "company": event.company,
        "kind": event.kind, "scheduled_for": event.scheduled_for, "manual": event.manual,
        "status": "scheduled", "attempts": 0, "max_attempts": event.max_attempts,
        "retry_at": None, "session_id": None, "started_at": None, "finished_at": None,
        "duration_seconds": None, "counts": None, "error": None,
    }
