"""The one place that decides whether the recorded host session is alive, and records
the crash of a dead one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from engine.application import service_aggregates
from engine.application.errors import ConcurrentChangeError
from engine.application.unit_of_work import UnitOfWork
from engine.ports.host import Clock, HostLease, HostLeases, Processes

if TYPE_CHECKING:
    from engine.domain.station_ownership import StationOwnership


@dataclass(frozen=True)
class RecordedSession:
    """A host session as the events recorded it (``host``, ``since`` unknown for sessions
    recorded by release 0.1 and loaded from a snapshot)."""

    session_id: UUID
    pid: int | None
    host: str | None
    since: datetime | None


class HostLiveness:
    """A recorded session is dead when its lease expired (or, before its first lease,
    one lease period after its start), or when it ran on this machine and its process
    is gone. Readers that find it dead record its crash, so the status tells the truth
    within one lease period of a crash, and at once on the crashed host's machine."""

    def __init__(
        self, *, uow: UnitOfWork, leases: HostLeases, processes: Processes, clock: Clock,
        lease_seconds: float,
    ) -> None:
        self._uow = uow
        self._leases = leases
        self._processes = processes
        self._clock = clock
        self.lease_seconds = lease_seconds

    def is_alive(self, session: RecordedSession, *, quick: bool = False) -> bool:
        """Whether the session's host lives. ``quick`` (for queries) trusts a heartbeat
        younger than half the lease (a live host renews at least that often) and looks at
        the process only when the host has missed a beat."""
        lease = self._leases.current()
        now = self._clock.now()
        if lease is not None and lease.session_id == session.session_id:
            if now > lease.expires_at:
                return False
            if quick and now - lease.heartbeat_at <= (lease.expires_at - lease.heartbeat_at) / 2:
                return True
        elif session.since is None or now > session.since + timedelta(seconds=self.lease_seconds):
            return False  # it never wrote its lease in time
        return not self._gone_from_this_machine(session)

    def _gone_from_this_machine(self, session: RecordedSession) -> bool:
        return (
            session.host == self._processes.machine() and session.pid is not None
            and session.since is not None and self._processes.is_gone(session.pid, session.since)
        )

    def settled_ownership(self) -> StationOwnership:
        """The ownership (new if none yet), with its dead session's ``Crashed`` event
        pending, to be saved with the caller's own change."""
        ownership = service_aggregates.ownership_or_new(self._uow)
        session = running_session(ownership)
        if session is not None and not self.is_alive(session):
            self._add_crash(ownership, session.session_id)
        return ownership

    def record_crash_if_dead(self) -> bool:
        """Record the crash of the running session if it is dead; True if it was (also
        when another process recorded it or changed the service meanwhile)."""
        ownership = service_aggregates.ownership(self._uow)
        if ownership is None:
            return False
        session = running_session(ownership)
        if session is None or self.is_alive(session):
            return False
        self.record_crash(session.session_id, ownership)
        return True

    def record_crash(self, session_id: UUID, ownership: StationOwnership | None = None) -> bool:
        """Record that ``session_id``'s process is gone; False if the session had already
        ended, or another process changed the service meanwhile."""
        ownership = ownership or service_aggregates.ownership(self._uow)
        if ownership is None or ownership.session_id != session_id:
            return False
        self._add_crash(ownership, session_id)
        try:
            self._uow.save(ownership)
        except ConcurrentChangeError:
            return False
        self._leases.release(session_id)
        return True

    def _add_crash(self, ownership: StationOwnership, session_id: UUID) -> None:
        ownership.record_crash(session_id, _last_heartbeat(session_id, self._leases.current()))


def running_session(ownership: StationOwnership) -> RecordedSession | None:
    if ownership.session_id is None:
        return None
    return RecordedSession(
        session_id=ownership.session_id, pid=ownership.pid, host=ownership.host,
        since=ownership.started_at,
    )


def _last_heartbeat(session_id: UUID, lease: HostLease | None) -> str | None:
    if lease is not None and lease.session_id == session_id:
        return lease.heartbeat_at.isoformat()
    return None
