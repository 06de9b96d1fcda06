"""The station ownership aggregate: on which station the service is and whether it runs.

Only one station owns the service at a time. Concurrent claims are decided by
the event store's optimistic concurrency: two commands that read the same
version cannot both be recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from engine.domain.aggregate import Aggregate
from engine.domain.ownership_rules import (
    STATION_OWNERSHIP_ID,
    AlreadyRunningError,
    ConfiguredElsewhereError,
    NotConfiguredError,
    NotRunningError,
    OwnershipError,
    RunningElsewhereError,
)

__all__ = [
    "STATION_OWNERSHIP_ID",
    "AlreadyRunningError",
    "ConfiguredElsewhereError",
    "NotConfiguredError",
    "NotRunningError",
    "OwnershipError",
    "RunningElsewhereError",
    "StationOwnership",
]


class StationOwnership(Aggregate):
    """Which station the service is configured on, and the host session running it.

    ``session_id`` names one run of a host process from its start to its stop,
    crash or loss of its lease; ``pid``, ``host`` and ``started_at`` describe it.
    """

    # Defaults for snapshots taken before these attributes existed.
    host: str | None = None
    started_at: datetime | None = None

    class Created(Aggregate.Created):
        """Signals that the ownership record came into being (no station yet)."""

    class Assigned(Aggregate.Event):
        """Signals that the service is now configured on ``station``."""

        station: str
        previous_station: str | None

    class Started(Aggregate.Event):
        """Signals that host process ``pid`` on machine ``host`` began running the service."""

        station: str
        session_id: UUID
        pid: int
        host: str
        api_url: str | None = None
        """Where the host serves its HTTP API (None: no API; events before 0.3)."""

        def mutate(self, aggregate: Any) -> Any:
            """Apply the event, then note its time as the session's start (the method
            body runs before ``modified_on`` moves to this event)."""
            mutated = super().mutate(aggregate)
            if mutated is not None:
                mutated.started_at = self.timestamp
            return mutated

    class Stopped(Aggregate.Event):
        """Signals that the host session stopped gracefully."""

        station: str
        session_id: UUID

    class Crashed(Aggregate.Event):
        """Signals that the host session ended without a stop (its lease expired or it died)."""

        station: str
        session_id: UUID
        pid: int | None
        last_heartbeat: str | None

    class LeaseLost(Aggregate.Event):
        """Signals that a host found its session ended by others and stopped itself."""

        station: str
        session_id: UUID
        pid: int
        owner: str | None

    @staticmethod
    def create_id() -> UUID:
        return STATION_OWNERSHIP_ID

    @event(Created)
    def __init__(self) -> None:
        self.station: str | None = None
        self.session_id: UUID | None = None
        self.pid: int | None = None

    @property
    def is_running(self) -> bool:
        return self.session_id is not None

    def check_can_assign(self, station: str) -> None:
        if self.is_running and self.station != station:
            assert self.station is not None
            raise RunningElsewhereError(self.station, "the account can be set")

    def assign(self, station: str) -> None:
        """Configure the service on ``station``, moving it there if it was elsewhere.

        :raises RunningElsewhereError: while it runs on another station.
        """
        self.check_can_assign(station)
        if self.station != station:
            self._assign(station=station, previous_station=self.station)

    @event(Assigned)
    def _assign(self, station: str, previous_station: str | None) -> None:
        self.station = station

    def check_can_start(self, station: str) -> None:
        if self.station is None:
            raise NotConfiguredError()
        if self.is_running:
            if self.station == station:
                raise AlreadyRunningError(self.station)
            raise RunningElsewhereError(self.station, "it can be started or stopped")
        if self.station != station:
            raise ConfiguredElsewhereError(self.station, station)

    def start(
        self, station: str, session_id: UUID, pid: int, host: str, api_url: str | None = None
    ) -> None:
        """Record that a host process ``pid`` on machine ``host`` runs the service (and
        serves its API at ``api_url``).

        :raises NotConfiguredError, ConfiguredElsewhereError, AlreadyRunningError,
            RunningElsewhereError: as the names say.
        """
        self.check_can_start(station)
        self._start(station=station, session_id=session_id, pid=pid, host=host,
                    api_url=api_url)

    @event(Started)
    def _start(
        self, station: str, session_id: UUID, pid: int, host: str, api_url: str | None = None
    ) -> None:
        self.session_id = session_id
        self.pid = pid
        self.host = host
        self.api_url = api_url  # started_at: set by Started.mutate

    def check_is_current(self, session_id: UUID) -> None:
        if self.session_id != session_id:
            raise NotRunningError()

    def stop(self, session_id: UUID) -> None:
        """Record that the host session stopped gracefully.

        :raises NotRunningError: unless ``session_id`` is the running session.
        """
        self.check_is_current(session_id)
        assert self.station is not None
        self._stop(station=self.station, session_id=session_id)

    @event(Stopped)
    def _stop(self, station: str, session_id: UUID) -> None:
        self._end_session()

    def _end_session(self) -> None:
        self.session_id = None
        self.pid = None
        self.host = None
        self.started_at = None

    def record_crash(self, session_id: UUID, last_heartbeat: str | None) -> None:
        """Record that the host session died without stopping (its lease expired).

        ``last_heartbeat`` is the ISO time of its last heartbeat, if any.

        :raises NotRunningError: unless ``session_id`` is the running session.
        """
        self.check_is_current(session_id)
        assert self.station is not None
        self._crash(
            station=self.station, session_id=session_id, pid=self.pid,
            last_heartbeat=last_heartbeat,
        )

    @event(Crashed)
    def _crash(
        self, station: str, session_id: UUID, pid: int | None, last_heartbeat: str | None
    ) -> None:
        self._end_session()

    def record_lease_lost(self, station: str, session_id: UUID, pid: int) -> None:
        """Record that a host found its session ended by others and stopped itself.

        :raises OwnershipError: if ``session_id`` is still the running session.
        """
        if self.session_id == session_id:
            raise OwnershipError("the session still holds the service; its lease is not lost")
        self._lose_lease(station=station, session_id=session_id, pid=pid, owner=self.station)

    @event(LeaseLost)
    def _lose_lease(self, station: str, session_id: UUID, pid: int, owner: str | None) -> None:
        pass
