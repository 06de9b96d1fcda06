"""The read models: what the projections of the event log give the application layer.

The views are plain values; :class:`ReadModels` is the port that keeps them up to date
and queries them (the SQL projections in :mod:`engine.projections` implement it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

if TYPE_CHECKING:
    from engine.scheduling.schedule import Schedule

LogStatus = Literal["ok", "warning", "error"]
LOG_STATUSES: tuple[LogStatus, ...] = ("ok", "warning", "error")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class ServiceView:
    """What the events say about the service; liveness is checked against the lease."""

    account: str | None
    log_retention_days: int
    station: str | None
    session_id: UUID | None
    pid: int | None
    host: str | None
    since: datetime | None
    api_url: str | None = None

    @property
    def is_configured(self) -> bool:
        return self.station is not None


@dataclass(frozen=True)
class LogEntry:
    """One entry of the log list."""

    time: datetime
    station: str | None
    operation: str
    status: LogStatus
    message: str
    company: str | None
    run_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(), "station": self.station,
            "operation": self.operation, "status": self.status, "message": self.message,
            "company": self.company, "run_id": self.run_id,
        }


@dataclass(frozen=True)
class CompanyView:
    id: UUID
    name: str
    database_url: str
    task_count: int
    added_at: datetime
    removed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "name": self.name, "database_url": self.database_url,
            "task_count": self.task_count, "added_at": self.added_at.isoformat(),
        }


@dataclass(frozen=True)
class TaskView:
    """A task definition as it now is; ``schedule`` is parsed once, when read."""

    id: UUID
    company_id: UUID
    company: str
    kind: str
    name: str
    schedule: Schedule
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
            "schedule": self.schedule.to_dict(), "catch_up": self.catch_up,
            "max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
            "timeout_seconds": self.timeout_seconds, "params": self.params,
            "state": self.state, "schedule_from": self.schedule_from.isoformat(),
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True)
class RunView:
    id: UUID
    task_id: UUID
    company: str
    kind: str
    scheduled_for: datetime
    manual: bool
    status: str
    attempts: int
    max_attempts: int
    retry_at: datetime | None
    session_id: UUID | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    counts: dict[str, int] | None
    error: str | None

    @property
    def due_at(self) -> datetime:
        return self.retry_at if self.status == "retrying" and self.retry_at else self.scheduled_for

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "task_id": str(self.task_id), "kind": self.kind,
            "company": self.company, "scheduled_for": self.scheduled_for.isoformat(),
            "manual": self.manual, "status": self.status, "attempts": self.attempts,
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "retry_at": _iso(self.retry_at), "duration_seconds": self.duration_seconds,
            "counts": self.counts, "error": self.error,
        }


class ReadModels(ABC):
    """The projections of the event log: brought up to date on demand, then queried.

    Queries read what the last :meth:`catch_up` (by any process) applied; a caller
    that must see every event recorded so far calls :meth:`catch_up` first, once.
    Every method may raise :class:`engine.ports.StoreUnavailableError`.
    """

    # -- keeping up ------------------------------------------------------------------

    @abstractmethod
    def catch_up(self) -> int:
        """Apply every event recorded before the call; return how many applications."""

    @abstractmethod
    def rebuild(self) -> int:
        """Empty every read model and apply the whole event log again."""

    # -- the service -----------------------------------------------------------------

    @abstractmethod
    def service_view(self) -> ServiceView: ...

    @abstractmethod
    def log_entries(
        self, *, not_before: datetime, status: LogStatus | None = None,
        operation: str | None = None, company: str | None = None, limit: int = 100,
        offset: int = 0,
    ) -> list[LogEntry]:
        """The newest ``limit`` entries from ``not_before`` on, newest first, after
        skipping the ``offset`` newest."""

    @abstractmethod
    def delete_log_entries_before(self, cutoff: datetime) -> int:
        """Delete the entries older than ``cutoff``; return how many."""

    # -- companies -------------------------------------------------------------------

    @abstractmethod
    def companies(self) -> list[CompanyView]:
        """The companies not removed, by name."""

    @abstractmethod
    def company(self, company_id: UUID) -> CompanyView | None:
        """The company, removed or not, or None if it was never added."""

    # -- tasks -----------------------------------------------------------------------

    @abstractmethod
    def tasks(self, *, company_id: UUID | None = None) -> list[TaskView]:
        """The tasks not removed, by company and name."""

    @abstractmethod
    def task(self, task_id: UUID) -> TaskView | None:
        """The task, or None if unknown or removed."""

    @abstractmethod
    def task_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        """Ids of tasks not removed that start with ``prefix`` (lower-case text)."""

    @abstractmethod
    def failing_tasks(self, threshold: int) -> list[TaskView]:
        """Tasks whose latest ``threshold`` or more finished runs all failed."""

    @abstractmethod
    def tasks_fingerprint(self) -> tuple[int, int]:
        """A cheap value that changes whenever any task definition changes."""

    # -- runs ------------------------------------------------------------------------

    @abstractmethod
    def runs(
        self, *, task_id: UUID | None = None, status: str | None = None,
        limit: int | None = 100, offset: int = 0,
    ) -> list[RunView]:
        """Runs, newest scheduled first, after skipping the ``offset`` newest."""

    @abstractmethod
    def run(self, run_id: UUID) -> RunView | None: ...

    @abstractmethod
    def run_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        """Ids of runs that start with ``prefix`` (lower-case text)."""

    @abstractmethod
    def due_runs(
        self, now: datetime, *, limit: int, busy_tasks: Collection[UUID] = ()
    ) -> list[RunView]:
        """Runs that may start at ``now`` (scheduled, or retrying past ``retry_at``),
        oldest first, leaving out ``busy_tasks`` and the scheduled runs of paused tasks."""

    @abstractmethod
    def last_scheduled(self) -> dict[UUID, datetime]:
        """Each task's latest scheduled (not manual) occurrence: where its schedule got to."""
