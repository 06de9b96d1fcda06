"""The service's use cases: its configuration, which station owns it, its status and
its log list, and the host sessions that run it.

Queries bring the read models up to date once, then read them. Commands load
aggregates, call their methods and save them in one transaction; the readers after
them catch up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from engine.application import service_aggregates
from engine.application.errors import CloudEditionError
from engine.application.liveness import HostLiveness, RecordedSession
from engine.application.unit_of_work import UnitOfWork
from engine.domain.account import ServiceAccount
from engine.domain.ownership_rules import NotRunningError, RunningElsewhereError
from engine.domain.station import StationName
from engine.domain.status_texts import State, status_text
from engine.ports.host import Clock, CredentialChecker, HostLease, HostLeases
from engine.ports.read_models import LogEntry, LogStatus, ReadModels, ServiceView

SAVE_ATTEMPTS = 5
"""How often the host's own records (stop, lease lost) are retried after a conflict."""


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
    api_url: str | None = None
    """Where the running host serves its HTTP API and dashboard."""

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "station": self.station,
            "text": self.text,
            "host": (
                {"pid": self.host.pid, "since": self.host.since.isoformat()} if self.host else None
            ),
            "warnings": list(self.warnings),
            "api_url": self.api_url,
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
        uow: UnitOfWork,
        read_models: ReadModels,
        liveness: HostLiveness,
        leases: HostLeases,
        credentials: CredentialChecker,
        clock: Clock,
        station: str,
        connection: Connection,
        failure_warning_threshold: int = 3,
    ) -> None:
        self._uow = uow
        self.read_models = read_models
        self._liveness = liveness
        self._leases = leases
        self._credentials = credentials
        self.clock = clock
        self.station = StationName.check(station)
        self.connection = connection
        self.failure_warning_threshold = failure_warning_threshold

    @property
    def lease_seconds(self) -> float:
        return self._liveness.lease_seconds

    # -- queries ---------------------------------------------------------------------

    def status(self, lang: str = "pl", *, station: str | None = None) -> ServiceStatus:
        """The status as seen from ``station`` (default: this one), recording a dead
        host's crash first."""
        self._check_stationary()
        asking = StationName.check(station) if station is not None else self.station
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
            text=status_text(state, view.station, asking, lang),
            host=host if state == "running" else None,
            warnings=self._warnings(),
            api_url=view.api_url if state == "running" else None,
        )

    def _warnings(self) -> tuple[str, ...]:
        """One line per task whose latest runs all failed (at least the threshold)."""
        return tuple(
            f"task {task.name!r} ({task.kind}, {task.company}, id {task.id}) failed "
            f"{task.consecutive_failures} time(s) in a row"
            for task in self.read_models.failing_tasks(self.failure_warning_threshold)
        )

    def configuration(self) -> ConfigurationView:
        """The configuration; never a password (none is kept)."""
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
        offset: int = 0,
    ) -> list[LogEntry]:
        """Log entries, newest first, never older than the retention; the ``offset``
        newest that match are skipped."""
        view = self._settled_view()
        cutoff = self._retention_cutoff(view.log_retention_days)
        not_before = max(cutoff, since) if since else cutoff
        return self.read_models.log_entries(
            not_before=not_before, status=status, operation=operation, company=company,
            limit=limit, offset=offset,
        )

    def view(self) -> ServiceView:
        """The service view after applying every recorded event."""
        self.read_models.catch_up()
        return self.read_models.service_view()

    def _settled_view(self) -> ServiceView:
        """The view, after recording the crash of a dead host session if there is one."""
        view = self.view()
        session = _recorded_session(view)
        if session is None or self._liveness.is_alive(session, quick=True):
            return view
        if self._liveness.record_crash_if_dead():
            return self.view()
        return view

    # -- configuration commands --------------------------------------------------------

    def check_can_set_account(self, account: str) -> None:
        """Refuse early, before a password is asked for, what :meth:`set_account` would."""
        self._check_stationary()
        ServiceAccount.parse(account)
        self._liveness.settled_ownership().check_can_assign(self.station)

    def set_account(self, account: str, password: str) -> None:
        """Set the account the service runs under, configuring it on this station.

        The password goes to the credential check only. Never applied again after a
        conflict: the first station to claim the service wins.

        :raises DomainError: if the account is malformed, the password refused,
            the service runs on another station, or another station changed it meanwhile.
        """
        self._check_stationary()
        account = str(ServiceAccount.parse(account))
        ownership = self._liveness.settled_ownership()
        ownership.check_can_assign(self.station)
        self._credentials.check(account, password)
        configuration = service_aggregates.configuration_or_new(self._uow)
        ownership.assign(self.station)
        configuration.set_account(account, self.station)
        self._uow.save(configuration, ownership)

    def set_log_retention(self, days: int) -> bool:
        """Keep log entries ``days`` days (5 to 30) and delete older ones now.

        Allowed from any station. Returns False if the retention already was ``days``.
        """
        self._check_stationary()

        def change() -> bool:
            configuration = service_aggregates.configuration_or_new(self._uow)
            changed = configuration.set_log_retention(days, self.station)
            if changed:
                self._uow.save(configuration)
            return changed

        changed = self._uow.retrying(change)
        self.read_models.delete_log_entries_before(self._retention_cutoff(days))
        return changed

    def rebuild_projections(self) -> int:
        """Rebuild the read models from the whole event log; return the events applied.

        Entries older than the retention, which a rebuild brings back, are deleted again.
        """
        applied = self.read_models.rebuild()
        self.prune_logs()
        return applied

    def prune_logs(self) -> int:
        """Delete log entries older than the retention; return how many."""
        retention = self.view().log_retention_days
        return self.read_models.delete_log_entries_before(self._retention_cutoff(retention))

    # -- host session ------------------------------------------------------------------

    def check_can_start(self) -> None:
        """Refuse what :meth:`begin_host_session` would, recording a dead host's crash first."""
        self._check_stationary()
        self._liveness.record_crash_if_dead()
        self._liveness.settled_ownership().check_can_start(self.station)

    def begin_host_session(self, pid: int, host: str, api_url: str | None = None) -> UUID:
        """Record that host process ``pid`` on machine ``host`` runs the service here
        (serving its API at ``api_url``).

        Never applied again after a conflict: two hosts starting at once, one wins.

        :raises DomainError: if not configured here, already running, or raced.
        """
        self._check_stationary()
        ownership = self._liveness.settled_ownership()
        session_id = uuid4()
        ownership.start(self.station, session_id, pid, host, api_url)
        self._uow.save(ownership)
        now = self.clock.now()
        self._leases.acquire(
            HostLease(
                session_id=session_id, station=self.station, pid=pid,
                started_at=now, heartbeat_at=now, expires_at=self._expiry(now),
            )
        )
        return session_id

    def heartbeat(self, session_id: UUID) -> bool:
        """Renew the lease of ``session_id``; False if the session no longer owns the service."""
        return self.renew_lease(session_id) and self.owns_service(session_id)

    def renew_lease(self, session_id: UUID) -> bool:
        """Renew the lease of ``session_id`` only (no read model: safe from any thread);
        False if another session holds the lease."""
        now = self.clock.now()
        return self._leases.renew(session_id, now, self._expiry(now))

    def owns_service(self, session_id: UUID) -> bool:
        """Whether the recorded events still say ``session_id`` runs the service."""
        return self.view().session_id == session_id

    def end_host_session(self, session_id: UUID, pid: int) -> bool:
        """Record the graceful stop of ``session_id``; False if it had lost the service.

        Retries when a concurrent change (such as another station recording a
        crash) got in first, then records whichever outcome is true.
        """
        def stop() -> bool:
            ownership = service_aggregates.ownership(self._uow)
            if ownership is None or ownership.session_id != session_id:
                return False
            ownership.stop(session_id)
            self._uow.save(ownership)
            return True

        try:
            stopped = self._uow.retrying(stop, attempts=SAVE_ATTEMPTS)
            if not stopped:
                self.record_lease_lost(session_id, pid)
            return stopped
        finally:
            self._leases.release(session_id)

    def record_lease_lost(self, session_id: UUID, pid: int) -> None:
        """Record that the host session ``session_id`` found it no longer owns the service."""

        def record() -> None:
            ownership = service_aggregates.ownership(self._uow)
            if ownership is not None:
                ownership.record_lease_lost(self.station, session_id, pid)
                self._uow.save(ownership)

        self._uow.retrying(record, attempts=SAVE_ATTEMPTS)

    def running_session_to_stop(self) -> ServiceView:
        """The view of the running service, if this station may stop it.

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
        return self._liveness.record_crash(session_id)

    # -- internals ---------------------------------------------------------------------

    def _check_stationary(self) -> None:
        if self.connection.edition == "cloud":
            raise CloudEditionError()

    def _retention_cutoff(self, days: int) -> datetime:
        return self.clock.now() - timedelta(days=days)

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)


def _recorded_session(view: ServiceView) -> RecordedSession | None:
    if view.session_id is None:
        return None
    return RecordedSession(
        session_id=view.session_id, pid=view.pid, host=view.host, since=view.since
    )
