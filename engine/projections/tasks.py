"""The task list: every task definition as it now is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update

from engine.adapters.schema import tasks
from engine.domain.task_definition import TaskDefinition
from engine.domain.task_run import TaskRun
from engine.projections.runner import NumberedEvent, Projection


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
