"""Fakes of the ports, for unit tests of the application layer (no database, no processes)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from engine.adapters.event_store import EventsourcingStore
from engine.adapters.soa_store import memory_soa_store
from engine.ports.host import Clock, HostLease, HostLeases, OperatorNotifier, Processes
from engine.ports.read_models import (
    CompanyView,
    LogEntry,
    LogStatus,
    ReadModels,
    RunView,
    ServiceView,
    TaskView,
)
from engine.ports.store import WriteConflictError

EMPTY_VIEW = ServiceView(account=None, log_retention_days=10, station=None, session_id=None,
                         pid=None, host=None, since=None)


class FixedClock(Clock):
    def __init__(self, now: datetime = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class FakeLeases(HostLeases):
    def __init__(self) -> None:
        self.lease: HostLease | None = None

    def acquire(self, lease: HostLease) -> None:
        self.lease = lease

    def renew(self, session_id: UUID, heartbeat_at: datetime, expires_at: datetime) -> bool:
        if self.lease is None or self.lease.session_id != session_id:
            return False
        self.lease = replace(self.lease, heartbeat_at=heartbeat_at, expires_at=expires_at)
        return True

    def release(self, session_id: UUID) -> None:
        if self.lease is not None and self.lease.session_id == session_id:
            self.lease = None

    def current(self) -> HostLease | None:
        return self.lease


class FakeProcesses(Processes):
    def __init__(self, machine: str = "this-machine") -> None:
        self.name = machine
        self.gone: set[int] = set()

    def machine(self) -> str:
        return self.name

    def is_gone(self, pid: int, started_at: datetime) -> bool:
        return pid in self.gone


class FakeNotifier(OperatorNotifier):
    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.received.append((subject, message))


class FakeReadModels(ReadModels):
    """Read models whose content a test sets; counts the catch-ups."""

    def __init__(self) -> None:
        self.catch_ups = 0
        self.view = EMPTY_VIEW
        self.task_views: dict[UUID, TaskView] = {}
        self.failing: list[TaskView] = []
        self.entries: list[LogEntry] = []
        self.deleted_before: list[datetime] = []

    def catch_up(self) -> int:
        self.catch_ups += 1
        return 0

    def rebuild(self) -> int:
        return 0

    def service_view(self) -> ServiceView:
        return self.view

    def log_entries(
        self, *, not_before: datetime, status: LogStatus | None = None,
        operation: str | None = None, company: str | None = None, limit: int = 100,
        offset: int = 0,
    ) -> list[LogEntry]:
        return [entry for entry in self.entries if entry.time >= not_before][
            offset:offset + limit]

    def delete_log_entries_before(self, cutoff: datetime) -> int:
        self.deleted_before.append(cutoff)
        return 0

    def companies(self) -> list[CompanyView]:
        return []

    def company(self, company_id: UUID) -> CompanyView | None:
        return None

    def tasks(self, *, company_id: UUID | None = None) -> list[TaskView]:
        return list(self.task_views.values())

    def task(self, task_id: UUID) -> TaskView | None:
        return self.task_views.get(task_id)

    def task_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        return [task_id for task_id in self.task_views if str(task_id).startswith(prefix)][:limit]

    def failing_tasks(self, threshold: int) -> list[TaskView]:
        return [task for task in self.failing if task.consecutive_failures >= threshold]

    def tasks_fingerprint(self) -> tuple[int, int]:
        return len(self.task_views), sum(task.version for task in self.task_views.values())

    def runs(self, *, task_id: UUID | None = None, status: str | None = None,
             limit: int | None = 100, offset: int = 0) -> list[RunView]:
        return []

    def run(self, run_id: UUID) -> RunView | None:
        return None

    def run_ids_starting_with(self, prefix: str, *, limit: int) -> list[UUID]:
        return []

    def due_runs(self, now: datetime, *, limit: int,
                 busy_tasks: Collection[UUID] = ()) -> list[RunView]:
        return []

    def last_scheduled(self) -> dict[UUID, datetime]:
        return {}


class InterferingStore(EventsourcingStore):
    """The in-memory store, where another writer gets in first: before each of the next
    ``times`` saves that touch an aggregate of ``cls``, ``interfere(store, aggregate_id)``
    records something on it, so that the save conflicts as it would in real life."""

    def __init__(self) -> None:
        store = memory_soa_store()
        super().__init__(lambda: store)
        self.saves = 0
        self._pending: list[tuple[type, Callable[[EventsourcingStore, UUID], None]]] = []

    def interfere(self, cls: type, times: int,
                  write: Callable[[EventsourcingStore, UUID], None]) -> None:
        self._pending.extend([(cls, write)] * times)

    def save(self, *items: Any) -> None:
        self.saves += 1
        for item in items:
            if self._pending and isinstance(item, self._pending[0][0]):
                _, write = self._pending.pop(0)
                write(self, item.id)
                break
        super().save(*items)


class AlwaysConflictingStore(EventsourcingStore):
    def __init__(self) -> None:
        store = memory_soa_store()
        super().__init__(lambda: store)
        self.saves = 0

    def save(self, *items: Any) -> None:
        self.saves += 1
        raise WriteConflictError()


def history_types(store: EventsourcingStore, aggregate_id: UUID) -> Sequence[str]:
    return [type(event).__name__ for event in store.history(aggregate_id)]
