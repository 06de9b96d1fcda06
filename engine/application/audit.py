"""Audit use cases: prove the read models from the events, see the past, export events.

- :meth:`AuditService.replay`: rebuild every projection from the event store into
  fresh tables and, with ``check``, compare them with the live ones row by row;
- :meth:`AuditService.history`: configuration, ownership, companies, tasks and the
  status text as they were at an instant;
- :meth:`AuditService.run_as_of`: a run and its history as they were at an instant;
- :meth:`AuditService.export`: the events of a time range, one JSON object each.

The replay mechanics are behind :class:`Replays` (the SQL projections implement it);
nothing here touches a live table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from engine.application.runs import RunHistoryEntry, RunService
from engine.application.service import HostInfo, ServiceStatus
from engine.domain.errors import DomainError, NotFoundError
from engine.domain.status_texts import State, status_text
from engine.ports.host import Clock
from engine.ports.read_models import CompanyView, ReadModels, RunView, TaskView
from engine.ports.store import EventStore

Progress = Callable[[int, int], None]
"""Told ``(position reached, last position)`` of the event log as work goes."""

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"password|passwd|secret|token", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]*(?=@)", re.IGNORECASE)
NOT_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic",
                        "caused_by"})


class Difference(Protocol):
    """One way a live table differs from the replay."""

    def describe(self) -> str: ...
    def as_json(self) -> dict[str, Any]: ...


class Replayed(Protocol):
    """Projections rebuilt from events, and the read models over them."""

    @property
    def read_models(self) -> ReadModels: ...
    @property
    def applied(self) -> int:
        """How many events were applied."""
    def rows(self) -> dict[str, int]:
        """How many rows each projection table has."""


class Replays(Protocol):
    """Replaying the event log into fresh projections (never the live ones)."""

    def head(self) -> int:
        """The last notification id of the event log."""

    def rebuild(self, *, stop: int, until: datetime | None = None, output: Path | None = None,
                progress: Progress | None = None) -> AbstractContextManager[Replayed]:
        """Every projection rebuilt from the events up to notification ``stop`` (those
        that happened at or before ``until``), in a scratch database (kept at
        ``output``), deleted on exit unless kept."""

    def project(self, events: Sequence[Any]) -> AbstractContextManager[Replayed]:
        """The projections of just ``events`` (one aggregate's, say)."""

    def compare(self, replayed: Replayed, *, log_cutoff: Callable[[int], datetime]
                ) -> tuple[dict[str, int], Sequence[Difference]]:
        """Bring ``replayed`` to the live projections' positions, read in one snapshot,
        and compare row by row (log entries from ``log_cutoff(retention days)`` on);
        return the positions and the differences."""

    def events(self, *, stop: int, progress: Progress | None = None
               ) -> Iterator[tuple[int, Any]]:
        """Every event up to notification ``stop``, with its notification id, in order."""


@dataclass(frozen=True)
class ReplayReport:
    """What a replay rebuilt, and, after a check, how the live tables compare."""

    events: int
    position: int
    rows: dict[str, int]
    checked_at: dict[str, int] | None = None
    differences: Sequence[Difference] = ()

    def as_json(self) -> dict[str, Any]:
        return {"events": self.events, "position": self.position, "rows": self.rows,
                "checked_at": self.checked_at,
                "differences": [difference.as_json() for difference in self.differences]}


@dataclass(frozen=True)
class HistoryView:
    """The service as the events recorded up to ``instant`` describe it."""

    instant: datetime
    events: int
    status: ServiceStatus
    account: str | None
    log_retention_days: int
    session_id: UUID | None
    companies: list[CompanyView] = field(default_factory=list)
    tasks: list[TaskView] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "instant": self.instant.isoformat(), "events": self.events,
            "status": self.status.as_json(),
            "configuration": {"account": self.account,
                              "log_retention_days": self.log_retention_days},
            "ownership": {"station": self.status.station,
                          "running": self.status.state == "running",
                          "session_id": str(self.session_id) if self.session_id else None},
            "companies": [company.as_json() for company in self.companies],
            "tasks": [task.as_json() for task in self.tasks],
        }


class AuditService:
    """Replay, history and export, as seen from ``station``."""

    def __init__(self, *, read_models: ReadModels, runs: Callable[[], RunService],
                 store: EventStore, replays: Replays, clock: Clock, station: str,
                 failure_warning_threshold: int = 3) -> None:
        """``runs`` gives the run service (built only for :meth:`run_as_of`)."""
        self.read_models = read_models
        self._runs = runs
        self._store = store
        self._replays = replays
        self.clock = clock
        self.station = station
        self.failure_warning_threshold = failure_warning_threshold

    def replay(self, *, check: bool = False, output: Path | None = None,
               progress: Progress | None = None) -> ReplayReport:
        """Rebuild every projection from the events into fresh tables (kept at ``output``,
        a new file) and, with ``check``, compare them with the live ones. Log entries
        older than the retention are left out, as from the live list.

        :raises DomainError: if ``output`` exists.
        """
        if output is not None and output.exists():
            raise DomainError(f"{output} exists; give a new file for the rebuilt tables")
        if check:
            self.read_models.catch_up()
        stop = self._replays.head()
        with self._replays.rebuild(stop=stop, output=output, progress=progress) as replayed:
            if not check:
                retention = replayed.read_models.service_view().log_retention_days
                replayed.read_models.delete_log_entries_before(self._cutoff(retention))
                return ReplayReport(events=replayed.applied, position=stop,
                                    rows=replayed.rows())
            checked_at, differences = self._replays.compare(replayed, log_cutoff=self._cutoff)
            return ReplayReport(events=replayed.applied, position=stop, rows=replayed.rows(),
                                checked_at=checked_at, differences=differences)

    def history(self, instant: datetime, *, lang: str = "pl",
                progress: Progress | None = None) -> HistoryView:
        """The service as recorded up to ``instant``: what ``soa status``, ``configure
        show``, ``companies list`` and ``tasks list`` showed then (by the events; a host
        that had died unnoticed still shows as running)."""
        stop = self._replays.head()
        with self._replays.rebuild(stop=stop, until=instant, progress=progress) as replayed:
            models = replayed.read_models
            view = models.service_view()
            state: State = ("not_configured" if not view.is_configured
                            else "running" if view.session_id else "stopped")
            host = HostInfo(view.pid, view.since) if view.pid and view.since else None
            warnings = tuple(
                f"task {task.name!r} ({task.kind}, {task.company}, id {task.id}) failed "
                f"{task.consecutive_failures} time(s) in a row"
                for task in models.failing_tasks(self.failure_warning_threshold)
            )
            status = ServiceStatus(
                state=state, station=view.station,
                text=status_text(state, view.station, self.station, lang),
                host=host if state == "running" else None, warnings=warnings,
                api_url=view.api_url if state == "running" else None,
            )
            return HistoryView(
                instant=instant, events=replayed.applied,
                status=status, account=view.account,
                log_retention_days=view.log_retention_days, session_id=view.session_id,
                companies=models.companies(), tasks=models.tasks(),
            )

    def run_as_of(self, reference: str, instant: datetime
                  ) -> tuple[RunView, list[RunHistoryEntry]]:
        """The run (its id or a prefix) and its event history as they were at ``instant``.

        :raises NotFoundError: if unknown, or not yet recorded at ``instant``.
        """
        current, history = self._runs().run(reference)
        events = [event for event in self._store.history(current.id)
                  if event.timestamp <= instant]
        if not events:
            raise NotFoundError(
                f"run {current.id} was recorded at {history[0].time.isoformat()}, after "
                f"{instant.isoformat()}"
            )
        with self._replays.project(events) as replayed:
            view = replayed.read_models.run(current.id)
        assert view is not None
        return view, [entry for entry in history if entry.time <= instant]

    def export(self, write: Callable[[str], None], *, since: datetime, until: datetime,
               progress: Progress | None = None) -> int:
        """Write each event that happened from ``since`` until before ``until`` as one
        line of JSON (secrets redacted); return how many.

        :raises DomainError: unless ``since`` is before ``until``.
        """
        if since >= until:
            raise DomainError(
                f"the start of the range ({since.isoformat()}) is not before its end "
                f"({until.isoformat()})"
            )
        written = 0
        for position, event in self._replays.events(stop=self._replays.head(),
                                                     progress=progress):
            if since <= event.timestamp < until:
                write(json.dumps(exported(position, event), ensure_ascii=False,
                                 default=_json_default))
                written += 1
        return written

    def _cutoff(self, retention_days: int) -> datetime:
        return self.clock.now() - timedelta(days=retention_days)


def exported(position: int, event: Any) -> dict[str, Any]:
    """An event as one exported record: where it is in the log, when, of which aggregate,
    who caused it, and its fields (secrets redacted)."""
    aggregate_type, _, event_type = type(event).__qualname__.rpartition(".")
    return {
        "position": position,
        "time": event.timestamp.isoformat(),
        "aggregate_id": str(event.originator_id),
        "aggregate_type": aggregate_type,
        "aggregate_version": event.originator_version,
        "event_type": event_type,
        "class_version": getattr(type(event), "class_version", 1),
        "caused_by": getattr(event, "caused_by", None),
        "fields": {name: _redacted(name, value) for name, value in vars(event).items()
                   if name not in NOT_FIELDS},
    }


def _redacted(name: str, value: Any) -> Any:
    """``value`` with every secret hidden: values of fields named like a password, token
    or secret, and the passwords of URLs."""
    if SECRET_NAME.search(name) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return URL_PASSWORD.sub(rf"\g<head>{REDACTED}", value)
    if isinstance(value, dict):
        return {key: _redacted(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(name, item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")
