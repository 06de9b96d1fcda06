"""The service's use cases: what the CLI, the host and the ERP call.

Each command loads the aggregates, calls their methods, saves them in one
transaction and brings the projections up to date. A conflicting concurrent
save is refused, never retried into a different outcome.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Engine

from engine.adapters.event_store import SoaStore
from engine.domain.account import ServiceAccount
from engine.domain.errors import DomainError
from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration
from engine.domain.station import StationName
from engine.domain.station_ownership import (
    STATION_OWNERSHIP_ID,
    NotRunningError,
    RunningElsewhereError,
    StationOwnership,
)
from engine.ports import Clock, CredentialChecker, HostLease, HostLeases
from engine.projections import LogEntry, LogList, ProjectionRunner, ServiceView, status_text
from engine.projections.log_list import LogStatus
from engine.projections.service_view import ServiceViewProjection
from engine.projections.status_texts import State
from engine.projections.tasks import TaskList

SAVE_ATTEMPTS = 5
"""How often the host's own records (stop, lease lost) are retried after a conflict."""

TAggregate = TypeVar("TAggregate", ServiceConfiguration, StationOwnership)


class ConcurrentChangeError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "another command changed the service at the same moment (on this or another "
            "station); nothing was recorded; run the command again"
        )


class CloudEditionError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "the service configuration does not exist in the cloud edition; configure each "
            "automatic operation directly (SOA_EDITION=stationary enables it)"
        )


@dataclass(frozen=True)
class HostInfo:
    pid: int
    since: datetime


@dataclass(frozen=True)
class ServiceStatus:
    state: State
    station: str | None
    text: str
    host: HostInfo | None
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "station": self.station,
            "text": self.text,
            "host": (
                {"pid": self.host.pid, "since": self.host.since.isoformat()} if self.host else None
            ),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Connection:
    """Where the engine's data lives: read-only fields, filled from the settings."""

    sql_server: str
    config_database: str
    key_server: str | None
    edition: str


@dataclass(frozen=True)
class ConfigurationView:
    account: str | None
    log_retention_days: int
    connection: Connection
    station: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "log_retention_days": self.log_retention_days,
            "sql_server": self.connection.sql_server,
            "config_database": self.connection.config_database,
            "key_server": self.connection.key_server,
            "edition": self.connection.edition,
            "station": self.station,
        }


class ServiceApplication:
    """The service as seen from one station (``station``)."""

    def __init__(
        self,
        *,
        store: SoaStore,
        engine: Engine,
        leases: HostLeases,
        credentials: CredentialChecker,
        clock: Clock,
        station: str,
        connection: Connection,
        lease_seconds: float,
        projections: ProjectionRunner,
        failure_warning_threshold: int = 3,
    ) -> None:
        self.store = store
        self.engine = engine
        self.leases = leases
        self.credentials = credentials
        self.clock = clock
        self.station = StationName.check(station)
        self.connection = connection
        self.lease_seconds = lease_seconds
        self.projections = projections
        self.failure_warning_threshold = failure_warning_threshold

    # -- queries ---------------------------------------------------------------------

    def status(self, lang: str = "pl") -> ServiceStatus:
        """Return the status as seen from this station, recording a dead host's crash first."""
        self._check_stationary()
        view = self._settled_view()
        state: State
        if not view.is_configured:
            state = "not_configured"
        elif view.session_id is None:
            state = "stopped"
        else:
            state = "running"
        host = HostInfo(view.pid, view.since) if view.pid and view.since else None
        return ServiceStatus(
            state=state,
            station=view.station,
            text=status_text(state, view.station, self.station, lang),
            host=host if state == "running" else None,
            warnings=self._warnings(),
        )

    def _warnings(self) -> tuple[str, ...]:
        """One line per task whose latest runs all failed (at least the threshold)."""
        return tuple(
            f"task {task.name!r} ({task.kind}, {task.company}, id {task.id}) failed "
            f"{task.consecutive_failures} time(s) in a row"
            for task in TaskList.failing(self.engine, self.failure_warning_threshold)
        )

    def configuration(self) -> ConfigurationView:
        """Return the configuration; never a password (none is kept)."""
        self._check_stationary()
        view = self.view()
        return ConfigurationView(
            account=view.account,
            log_retention_days=view.log_retention_days,
            connection=self.connection,
            station=view.station,
        )

    def logs(
        self,
        *,
        since: datetime | None = None,
        status: LogStatus | None = None,
        operation: str | None = None,
        company: str | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """Return log entries, newest first, never older than the retention."""
        view = self._settled_view()
        cutoff = self._retention_cutoff(view)
        not_before = max(cutoff, since) if since else cutoff
        return LogList.read(
            self.engine, not_before=not_before, status=status, operation=operation,
            company=company, limit=limit,
        )

    def view(self) -> ServiceView:
        """Return the service view after applying every recorded event."""
        self.projections.catch_up()
        return ServiceViewProjection.read(self.engine)

    # -- configuration commands --------------------------------------------------------

    def check_can_set_account(self, account: str) -> None:
        """Refuse early, before a password is asked for, what :meth:`set_account` would."""
        self._check_stationary()
        ServiceAccount.parse(account)
        self._load_settled_ownership()[0].check_can_assign(self.station)

    def set_account(self, account: str, password: str) -> None:
        """Set the account the service runs under, configuring it on this station.

        The password goes to the credential check only.

        :raises DomainError: if the account is malformed, the password refused,
            the service runs on another station, or another station changed it meanwhile.
        """
        self._check_stationary()
        account = str(ServiceAccount.parse(account))
        ownership, _ = self._load_settled_ownership()
        ownership.check_can_assign(self.station)
        self.credentials.check(account, password)
        configuration = self._load_or_create(SERVICE_CONFIGURATION_ID, ServiceConfiguration)
        ownership.assign(self.station)
        configuration.set_account(account, self.station)
        self._save(configuration, ownership)

    def set_log_retention(self, days: int) -> bool:
        """Keep log entries ``days`` days (5 to 30) and delete older ones now.

        Allowed from any station. Returns False if the retention already was ``days``.
        """
        self._check_stationary()
        configuration = self._load_or_create(SERVICE_CONFIGURATION_ID, ServiceConfiguration)
        changed = configuration.set_log_retention(days, self.station)
        if changed:
            self._save(configuration)
        self.prune_logs()
        return changed

    def rebuild_projections(self) -> int:
        """Rebuild the read models from the whole event log; return the events applied.

        Entries older than the retention, which a rebuild brings back, are deleted again.
        """
        applied = self.projections.rebuild()
        self.prune_logs()
        return applied

    def prune_logs(self) -> int:
        """Delete log entries older than the retention; return how many."""
        return LogList.delete_older_than(self.engine, self._retention_cutoff(self.view()))

    # -- host session ------------------------------------------------------------------

    def check_can_start(self) -> None:
        """Refuse what :meth:`begin_host_session` would, recording a dead host's crash first."""
        self._check_stationary()
        self._load_settled_ownership(save=True)[0].check_can_start(self.station)

    def begin_host_session(self, pid: int, host: str) -> UUID:
        """Record that host process ``pid`` on machine ``host`` runs the service here.

        :raises DomainError: if not configured here, already running, or raced.
        """
        self._check_stationary()
        ownership, _ = self._load_settled_ownership()
        session_id = uuid4()
        ownership.start(self.station, session_id, pid, host)
        self._save(ownership)
        now = self.clock.now()
        self.leases.acquire(
            HostLease(
                session_id=session_id, station=self.station, pid=pid,
                started_at=now, heartbeat_at=now, expires_at=self._expiry(now),
            )
        )
        return session_id

    def heartbeat(self, session_id: UUID) -> bool:
        """Renew the lease of ``session_id``; False if the session no longer owns the service."""
        now = self.clock.now()
        if not self.leases.renew(session_id, now, self._expiry(now)):
            return False
        return self.view().session_id == session_id

    def end_host_session(self, session_id: UUID, pid: int) -> bool:
        """Record the graceful stop of ``session_id``; False if it had lost the service.

        Retries when a concurrent change (such as another station recording a
        crash) got in first, then records whichever outcome is true.
        """
        try:
            for _ in range(SAVE_ATTEMPTS):
                ownership = self._load(STATION_OWNERSHIP_ID, StationOwnership)
                if ownership is None or ownership.session_id != session_id:
                    self.record_lease_lost(session_id, pid)
                    return False
                ownership.stop(session_id)
                with suppress(ConcurrentChangeError):
                    self._save(ownership)
                    return True
            raise ConcurrentChangeError()
        finally:
            self.leases.release(session_id)

    def record_lease_lost(self, session_id: UUID, pid: int) -> None:
        """Record that the host session ``session_id`` found it no longer owns the service."""
        for _ in range(SAVE_ATTEMPTS):
            ownership = self._load(STATION_OWNERSHIP_ID, StationOwnership)
            if ownership is None:
                return
            ownership.record_lease_lost(self.station, session_id, pid)
            with suppress(ConcurrentChangeError):
                self._save(ownership)
                return
        raise ConcurrentChangeError()

    def running_session_to_stop(self) -> ServiceView:
        """Return the view of the running service, if this station may stop it.

        :raises NotRunningError, RunningElsewhereError: otherwise.
        """
        self._check_stationary()
        view = self._settled_view()
        if view.session_id is None:
            raise NotRunningError()
        if view.station != self.station:
            assert view.station is not None
            raise RunningElsewhereError(view.station, "it can be stopped")
        return view

    def record_crash(self, session_id: UUID) -> bool:
        """Record that ``session_id``'s process is gone; False if it had already ended."""
        ownership = self._load(STATION_OWNERSHIP_ID, StationOwnership)
        if ownership is None or ownership.session_id != session_id:
            return False
        lease = self.leases.current()
        ownership.record_crash(session_id, self._last_heartbeat(session_id, lease))
        try:
            self._save(ownership)
        except ConcurrentChangeError:
            return False
        self.leases.release(session_id)
        return True

    # -- internals ---------------------------------------------------------------------

    def _check_stationary(self) -> None:
        if self.connection.edition == "cloud":
            raise CloudEditionError()

    def _settled_view(self) -> ServiceView:
        """Return the view after recording the crash of a host whose lease expired."""
        view = self.view()
        if view.session_id is not None and not self._is_alive(view):
            self._load_settled_ownership(save=True)
            view = self.view()
        return view

    def _is_alive(self, view: ServiceView) -> bool:
        lease = self.leases.current()
        now = self.clock.now()
        if lease is not None and lease.session_id == view.session_id:
            return now <= lease.expires_at
        # Started but the lease not written yet: give it one lease period.
        assert view.since is not None
        return now <= view.since + timedelta(seconds=self.lease_seconds)

    def _load_settled_ownership(self, *, save: bool = False) -> tuple[StationOwnership, bool]:
        """Load the ownership with a pending crash event if its host is dead.

        With ``save``, record that crash at once; a concurrent recording is fine.
        """
        ownership = self._load_or_create(STATION_OWNERSHIP_ID, StationOwnership)
        session_id = ownership.session_id
        if session_id is None:
            return ownership, False
        view = self.view()
        if view.session_id == session_id and self._is_alive(view):
            return ownership, False
        lease = self.leases.current()
        ownership.record_crash(session_id, self._last_heartbeat(session_id, lease))
        if save:
            try:
                self._save(ownership)
            except ConcurrentChangeError:
                return ownership, True  # recorded (or changed) by another process meanwhile
            self.leases.release(session_id)
        return ownership, True

    def _last_heartbeat(self, session_id: UUID, lease: HostLease | None) -> str | None:
        if lease is not None and lease.session_id == session_id:
            return lease.heartbeat_at.isoformat()
        return None

    def _load(self, aggregate_id: UUID, cls: type[TAggregate]) -> TAggregate | None:
        try:
            aggregate: object = self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, cls)
        return aggregate

    def _load_or_create(self, aggregate_id: UUID, cls: type[TAggregate]) -> TAggregate:
        aggregate = self._load(aggregate_id, cls)
        return aggregate if aggregate is not None else cls()

    def _save(self, *aggregates: ServiceConfiguration | StationOwnership) -> None:
        try:
            self.store.save(*aggregates)
        except IntegrityError:
            raise ConcurrentChangeError() from None
        self.projections.catch_up()

    def _retention_cutoff(self, view: ServiceView) -> datetime:
        return self.clock.now() - timedelta(days=view.log_retention_days)

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)
