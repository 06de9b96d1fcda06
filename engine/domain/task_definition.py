"""The task definition aggregate: what automatic operation runs, for which company, when."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from uuid import UUID, uuid4

from eventsourcing.domain import event

from engine.domain.aggregate import Aggregate
from engine.domain.errors import DomainError
from engine.domain.names import check_printable_name
from engine.scheduling.schedule import Schedule

CatchUp = Literal["all", "latest", "skip"]
CATCH_UP_POLICIES: tuple[str, ...] = get_args(CatchUp)
MAX_ATTEMPTS_LIMIT = 100
MAX_BACKOFF_SECONDS = 86_400.0
MAX_TIMEOUT_SECONDS = 7 * 86_400.0
MAX_TASK_NAME_LENGTH = 200
MISSED_COUNT_LIMIT = 10_000
"""Missed occurrences are counted up to this many; more are reported as "more than"."""


class TaskDefinitionError(DomainError):
    """Signals a task definition command that the rules refuse."""


class TaskRemovedError(TaskDefinitionError):
    def __init__(self, name: str) -> None:
        super().__init__(f"task {name!r} has been removed")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` attempts; the n-th retry waits about ``backoff * 2**(n-1)``."""

    max_attempts: int = 3
    backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not (
            isinstance(self.max_attempts, int) and 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT
        ):
            raise TaskDefinitionError(
                f"max attempts {self.max_attempts!r} is not allowed; give a whole number "
                f"from 1 to {MAX_ATTEMPTS_LIMIT}"
            )
        if not 0 < self.backoff_seconds <= MAX_BACKOFF_SECONDS:
            raise TaskDefinitionError(
                f"backoff {self.backoff_seconds:g} s is not allowed; give more than 0 s and at "
                "most 24h"
            )

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before ``attempt`` (2 or more): exponential, with ±50 % jitter."""
        base = self.backoff_seconds * 2 ** (attempt - 2)
        jitter = (rng or random).uniform(0.5, 1.5)
        return float(min(base * jitter, MAX_BACKOFF_SECONDS))


def check_catch_up(policy: str) -> CatchUp:
    if policy not in CATCH_UP_POLICIES:
        raise TaskDefinitionError(
            f"catch-up policy {policy!r} is not known; allowed are all, latest and skip"
        )
    return policy  # type: ignore[return-value]


def check_timeout(seconds: float | None) -> float | None:
    if seconds is not None and not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise TaskDefinitionError(
            f"timeout {seconds:g} s is not allowed; give more than 0 s and at most 7 days"
        )
    return seconds


def check_task_name(name: str) -> str:
    return check_printable_name(
        name, what="task name", max_length=MAX_TASK_NAME_LENGTH, error=TaskDefinitionError
    )


class TaskDefinition(Aggregate):
    """A recurring automatic operation of one kind for one company.

    ``schedule`` is a :class:`engine.scheduling.Schedule`, parsed once per event that
    sets it (events carry its primitives, ``Schedule.to_dict()``), and ``params`` the
    kind's parameters, validated by the kind's model before they reach the aggregate.
    ``schedule_from`` is the instant from which the current schedule counts: set when
    the task is defined, re-enabled or its schedule changes, not when it is resumed, so
    occurrences missed while paused are caught up by the catch-up policy.
    """

    class Defined(Aggregate.Created):
        """Signals that a task was defined."""

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
        schedule_from: datetime

    class Edited(Aggregate.Event):
        """Signals that settings of the task changed; carries all of them as they now are."""

        name: str
        schedule: dict[str, Any]
        schedule_changed: bool
        at: datetime
        catch_up: str
        max_attempts: int
        backoff_seconds: float
        timeout_seconds: float | None
        params: dict[str, Any]

    class Enabled(Aggregate.Event):
        """Signals that a disabled task runs again from ``at`` on (nothing missed is run)."""

        at: datetime

    class Disabled(Aggregate.Event):
        """Signals that the task does not run until enabled."""

    class Paused(Aggregate.Event):
        """Signals that the task holds its runs until resumed."""

    class Resumed(Aggregate.Event):
        """Signals that a paused task runs again; missed occurrences follow the catch-up policy."""

    class Removed(Aggregate.Event):
        """Signals that the task was removed."""

    class CatchUpApplied(Aggregate.Event):
        """Signals that occurrences missed up to ``through`` were handled by the catch-up
        policy: ``replayed`` of ``missed`` were recorded as runs; ``bounded`` when the
        limit on replayed occurrences cut the rest."""

        company: str
        kind: str
        station: str
        policy: str
        missed: int
        replayed: int
        bounded: bool
        through: datetime

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @event(Defined)
    def __init__(
        self, company_id: UUID, company: str, kind: str, name: str, schedule: dict[str, Any],
        catch_up: str, max_attempts: int, backoff_seconds: float, timeout_seconds: float | None,
        params: dict[str, Any], schedule_from: datetime,
    ) -> None:
        self.company_id = company_id
        self.company = company
        self.kind = kind
        self._set(name, schedule, catch_up, max_attempts, backoff_seconds, timeout_seconds, params)
        self.enabled = True
        self.paused = False
        self.removed = False
        self.schedule_from = schedule_from
        self.considered_through: datetime | None = None

    def _set(
        self, name: str, schedule: dict[str, Any], catch_up: str, max_attempts: int,
        backoff_seconds: float, timeout_seconds: float | None, params: dict[str, Any],
    ) -> None:
        self.name = name
        self.schedule = Schedule.from_dict(schedule)
        self.catch_up = catch_up
        self.retry = RetryPolicy(max_attempts, backoff_seconds)
        self.timeout_seconds = timeout_seconds
        self.params = dict(params)

    @classmethod
    def define(
        cls, *, company_id: UUID, company: str, kind: str, name: str, schedule: Schedule,
        catch_up: str, retry: RetryPolicy, timeout_seconds: float | None,
        params: dict[str, Any], at: datetime,
    ) -> TaskDefinition:
        """Define a task, checking the settings the domain knows about.

        :raises TaskDefinitionError: for a bad name, catch-up policy or timeout.
        """
        return cls(
            company_id=company_id, company=company, kind=kind, name=check_task_name(name),
            schedule=schedule.to_dict(), catch_up=check_catch_up(catch_up),
            max_attempts=retry.max_attempts, backoff_seconds=retry.backoff_seconds,
            timeout_seconds=check_timeout(timeout_seconds), params=params, schedule_from=at,
        )

    @property
    def is_active(self) -> bool:
        """True if the task's occurrences should run now."""
        return self.enabled and not self.paused and not self.removed

    def check_not_removed(self) -> None:
        if self.removed:
            raise TaskRemovedError(self.name)

    def edit(
        self, *, name: str | None = None, schedule: Schedule | None = None,
        catch_up: str | None = None, retry: RetryPolicy | None = None,
        timeout_seconds: float | None = None, clear_timeout: bool = False,
        params: dict[str, Any] | None = None, at: datetime,
    ) -> bool:
        """Change the given settings at ``at``; return False if nothing changed.

        A new schedule counts from ``at``.
        """
        self.check_not_removed()
        new: dict[str, Any] = {
            "name": check_task_name(name) if name is not None else self.name,
            "schedule": schedule if schedule is not None else self.schedule,
            "catch_up": check_catch_up(catch_up) if catch_up is not None else self.catch_up,
            "max_attempts": (retry or self.retry).max_attempts,
            "backoff_seconds": (retry or self.retry).backoff_seconds,
            "timeout_seconds": None if clear_timeout else check_timeout(
                timeout_seconds if timeout_seconds is not None else self.timeout_seconds
            ),
            "params": params if params is not None else self.params,
        }
        old: dict[str, Any] = {
            "name": self.name, "schedule": self.schedule, "catch_up": self.catch_up,
            "max_attempts": self.retry.max_attempts, "backoff_seconds": self.retry.backoff_seconds,
            "timeout_seconds": self.timeout_seconds, "params": self.params,
        }
        if new == old:
            return False
        self._edit(
            schedule_changed=new["schedule"] != self.schedule, at=at,
            **{**new, "schedule": new["schedule"].to_dict()},
        )
        return True

    @event(Edited)
    def _edit(
        self, name: str, schedule: dict[str, Any], schedule_changed: bool, at: datetime,
        catch_up: str,
        max_attempts: int, backoff_seconds: float, timeout_seconds: float | None,
        params: dict[str, Any],
    ) -> None:
        self._set(name, schedule, catch_up, max_attempts, backoff_seconds, timeout_seconds, params)
        if schedule_changed:
            self.schedule_from = at

    def enable(self, at: datetime) -> bool:
        """Run again from ``at`` on; False if it was enabled."""
        self.check_not_removed()
        if self.enabled:
            return False
        self._enable(at=at)
        return True

    @event(Enabled)
    def _enable(self, at: datetime) -> None:
        self.enabled = True
        self.schedule_from = at

    def disable(self) -> bool:
        self.check_not_removed()
        if not self.enabled:
            return False
        self._disable()
        return True

    @event(Disabled)
    def _disable(self) -> None:
        self.enabled = False

    def pause(self) -> bool:
        self.check_not_removed()
        if self.paused:
            return False
        self._pause()
        return True

    @event(Paused)
    def _pause(self) -> None:
        self.paused = True

    def resume(self) -> bool:
        self.check_not_removed()
        if not self.paused:
            return False
        self._resume()
        return True

    @event(Resumed)
    def _resume(self) -> None:
        self.paused = False

    def remove(self) -> None:
        self.check_not_removed()
        self._remove()

    @event(Removed)
    def _remove(self) -> None:
        self.removed = True

    def record_catch_up(
        self, *, station: str, missed: int, replayed: int, bounded: bool, through: datetime
    ) -> None:
        """Record how missed occurrences up to ``through`` were handled."""
        self._record_catch_up(
            company=self.company, kind=self.kind, station=station, policy=self.catch_up,
            missed=missed, replayed=replayed, bounded=bounded, through=through,
        )

    @event(CatchUpApplied)
    def _record_catch_up(
        self, company: str, kind: str, station: str, policy: str, missed: int, replayed: int,
        bounded: bool, through: datetime,
    ) -> None:
        self.considered_through = through
