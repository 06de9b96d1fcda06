"""The task run aggregate: one occurrence of a task, from scheduled to its outcome.

A run's id derives from (task id, scheduled instant), so one occurrence can
never be recorded twice, whatever the number of hosts, restarts or retries:
the second creation of the same id is refused by the event store. Effects of a
run carry its id as their idempotency key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import event

from engine.domain.aggregate import Aggregate
from engine.domain.errors import DomainError

RunStatus = Literal[
    "scheduled", "running", "retrying", "succeeded", "failed", "abandoned", "skipped"
]
RUN_STATUSES: tuple[RunStatus, ...] = (
    "scheduled",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "abandoned",
    "skipped",
)
FINAL_STATUSES = frozenset({"succeeded", "failed", "abandoned", "skipped"})


class TaskRunError(DomainError):
    """Signals a run transition that is not allowed from the run's status."""


def run_id_for(task_id: UUID, scheduled_for: datetime) -> UUID:
    """The id of the occurrence of ``task_id`` scheduled for ``scheduled_for`` (aware)."""
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    return uuid5(task_id, scheduled_for.astimezone(UTC).isoformat())


class TaskRun(Aggregate):
    """One occurrence of a task; attempts are numbered from 1."""

    class Scheduled(Aggregate.Created):
        """Signals that an occurrence is due (or was requested now, if ``manual``)."""

        task_id: UUID
        company: str
        kind: str
        scheduled_for: datetime
        manual: bool
        max_attempts: int
        as_of: datetime | None = None
        """The instant the operation acts as of (a manual run may ask for another one
        than ``scheduled_for``); None means ``scheduled_for``."""

    class Started(Aggregate.Event):
        """Signals that an attempt began on a host."""

        attempt: int
        station: str
        pid: int
        session_id: UUID

    class AttemptFailed(Aggregate.Event):
        """Signals that an attempt raised an error or passed its timeout."""

        attempt: int
        error_class: str
        error_message: str
        duration_seconds: float
        timed_out: bool

    class Abandoned(Aggregate.Event):
        """Signals that an attempt's host died while running it."""

        task_id: UUID
        company: str
        kind: str
        station: str | None
        attempt: int
        reason: str
        final: bool

    class RetryScheduled(Aggregate.Event):
        """Signals that the next attempt will start at ``retry_at``."""

        attempt: int
        retry_at: datetime

    class Succeeded(Aggregate.Event):
        """Signals that an attempt finished; ``counts`` says what it did."""

        task_id: UUID
        company: str
        kind: str
        station: str | None
        attempt: int
        counts: dict[str, int]
        duration_seconds: float
        warnings: tuple[str, ...] = ()
        """What the operation warned about (a customer without an e-mail, say)."""

    class Failed(Aggregate.Event):
        """Signals that the last allowed attempt failed: the run is over."""

        task_id: UUID
        company: str
        kind: str
        station: str | None
        attempts: int
        error_class: str
        error_message: str

    class Skipped(Aggregate.Event):
        """Signals that the occurrence will not run (catch-up policy, disabled task...)."""

        task_id: UUID
        company: str
        kind: str
        station: str | None
        reason: str

    @staticmethod
    def create_id(task_id: UUID, scheduled_for: datetime, **_: Any) -> UUID:
        return run_id_for(task_id, scheduled_for)

    @event(Scheduled)
    def __init__(
        self,
        task_id: UUID,
        company: str,
        kind: str,
        scheduled_for: datetime,
        manual: bool,
        max_attempts: int,
        as_of: datetime | None = None,
    ) -> None:
        self.task_id = task_id
        self.as_of = as_of
        self.company = company
        self.kind = kind
        self.scheduled_for = scheduled_for
        self.manual = manual
        self.max_attempts = max_attempts
        self.status: RunStatus = "scheduled"
        self.attempt = 0
        self.retry_at: datetime | None = None
        self.session_id: UUID | None = None
        self.station: str | None = None
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None

    def _about(self) -> dict[str, Any]:
        """The fields every outcome event carries, so that readers need no lookups."""
        return {
            "task_id": self.task_id, "company": self.company, "kind": self.kind,
            "station": self.station,
        }

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def due_at(self) -> datetime:
        """When the next attempt may start."""
        return self.retry_at if self.status == "retrying" and self.retry_at else self.scheduled_for

    def _check_status(self, action: str, *allowed: RunStatus) -> None:
        if self.status not in allowed:
            raise TaskRunError(f"run {self.id} is {self.status}; it cannot {action}")

    def start(self, station: str, pid: int, session_id: UUID) -> int:
        """Record the start of the next attempt; return its number."""
        self._check_status("start", "scheduled", "retrying")
        self._start(attempt=self.attempt + 1, station=station, pid=pid, session_id=session_id)
        return self.attempt

    @event(Started)
    def _start(self, attempt: int, station: str, pid: int, session_id: UUID) -> None:
        self.attempt = attempt
        self.status = "running"
        self.session_id = session_id
        self.station = station
        self.retry_at = None
        if self.started_at is None:
            self.started_at = self.modified_on

    def succeed(self, counts: dict[str, int], duration_seconds: float,
                warnings: tuple[str, ...] = ()) -> None:
        self._check_status("succeed", "running")
        self._succeed(
            **self._about(),
            attempt=self.attempt,
            counts=dict(counts),
            duration_seconds=duration_seconds,
            warnings=tuple(warnings),
        )

    @event(Succeeded)
    def _succeed(
        self,
        task_id: UUID,
        company: str,
        kind: str,
        station: str | None,
        attempt: int,
        counts: dict[str, int],
        duration_seconds: float,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.status = "succeeded"
        self.session_id = None
        self.finished_at = self.modified_on

    def fail_attempt(
        self,
        error_class: str,
        error_message: str,
        duration_seconds: float,
        timed_out: bool,
        retry_at: datetime | None,
    ) -> None:
        """Record a failed attempt, then a retry at ``retry_at`` or, after the last, the failure."""
        self._check_status("fail", "running")
        self._fail_attempt(
            attempt=self.attempt,
            error_class=error_class,
            error_message=error_message,
            duration_seconds=duration_seconds,
            timed_out=timed_out,
        )
        if self.attempt < self.max_attempts and retry_at is not None:
            self._schedule_retry(attempt=self.attempt + 1, retry_at=retry_at)
        else:
            self._fail(
                **self._about(),
                attempts=self.attempt,
                error_class=error_class,
                error_message=error_message,
            )

    @event(AttemptFailed)
    def _fail_attempt(
        self,
        attempt: int,
        error_class: str,
        error_message: str,
        duration_seconds: float,
        timed_out: bool,
    ) -> None:
        self.session_id = None

    @event(RetryScheduled)
    def _schedule_retry(self, attempt: int, retry_at: datetime) -> None:
        self.status = "retrying"
        self.retry_at = retry_at

    @event(Failed)
    def _fail(
        self,
        task_id: UUID,
        company: str,
        kind: str,
        station: str | None,
        attempts: int,
        error_class: str,
        error_message: str,
    ) -> None:
        self.status = "failed"
        self.finished_at = self.modified_on

    def abandon(self, reason: str, retry_at: datetime | None) -> None:
        """Record that the running attempt's host died; retry at ``retry_at`` if attempts remain."""
        self._check_status("be abandoned", "running")
        final = self.attempt >= self.max_attempts or retry_at is None
        self._abandon(
            **self._about(),
            attempt=self.attempt,
            reason=reason,
            final=final,
        )
        if not final:
            assert retry_at is not None
            self._schedule_retry(attempt=self.attempt + 1, retry_at=retry_at)

    @event(Abandoned)
    def _abandon(
        self,
        task_id: UUID,
        company: str,
        kind: str,
        station: str | None,
        attempt: int,
        reason: str,
        final: bool,
    ) -> None:
        self.session_id = None
        if final:
            self.status = "abandoned"
            self.finished_at = self.modified_on

    def skip(self, reason: str, station: str) -> None:
        """Record that the occurrence will not run, as decided on ``station``."""
        self._check_status("be skipped", "scheduled", "retrying")
        self._skip(**{**self._about(), "station": station}, reason=reason)

    @event(Skipped)
    def _skip(
        self, task_id: UUID, company: str, kind: str, station: str | None, reason: str
    ) -> None:
        self.status = "skipped"
        self.finished_at = self.modified_on
