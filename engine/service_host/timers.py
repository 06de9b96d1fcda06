"""In-memory timers, one per active task, firing at its schedule's occurrences.

APScheduler 3 holds the timers (no job store: the event store stays the one source of
truth, and the timers are rebuilt from the stored definitions).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

from engine.scheduling.arithmetic import next_occurrence
from engine.scheduling.schedule import Schedule


class OccurrenceTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger firing at a schedule's occurrences (with the DST policy)."""

    def __init__(self, schedule: Schedule, not_before: datetime) -> None:
        self.schedule = schedule
        self.not_before = not_before

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or max(now, self.not_before)
        return next_occurrence(self.schedule, after)


class Timers:
    """One timer per task calling ``on_fire(task_id)`` at each occurrence after
    ``not_before``; late fires are not dropped (no misfire limit) and coalesce."""

    def __init__(self, on_fire: Callable[[UUID], None]) -> None:
        self._on_fire = on_fire
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )

    def start(self) -> None:
        self._scheduler.start()

    def set(self, task_id: UUID, schedule: Schedule, not_before: datetime) -> None:
        """Set (or replace) the task's timer."""
        self._scheduler.add_job(
            self._on_fire, OccurrenceTrigger(schedule, not_before), args=(task_id,),
            id=str(task_id), replace_existing=True,
        )

    def drop(self, task_id: UUID) -> None:
        if self._scheduler.get_job(str(task_id)) is not None:
            self._scheduler.remove_job(str(task_id))

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
