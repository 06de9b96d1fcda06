"""The host lease in a SQL table, shared by all stations using the database."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Engine, delete, insert, select, update

from engine.adapters.schema import host_lease
from engine.adapters.sql import translating_store_errors
from engine.ports.host import HostLease, HostLeases

LEASE_KEY = "soa"


class SqlHostLeases(HostLeases):
    """One row in ``soa_host_lease``; ``expires_at`` is set by the host that beats."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @translating_store_errors
    def acquire(self, lease: HostLease) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(host_lease).where(host_lease.c.service == LEASE_KEY))
            connection.execute(
                insert(host_lease).values(
                    service=LEASE_KEY,
                    session_id=str(lease.session_id),
                    station=lease.station,
                    pid=lease.pid,
                    started_at=lease.started_at,
                    heartbeat_at=lease.heartbeat_at,
                    expires_at=lease.expires_at,
                )
            )

    @translating_store_errors
    def renew(self, session_id: UUID, heartbeat_at: datetime, expires_at: datetime) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(host_lease)
                .where(host_lease.c.service == LEASE_KEY)
                .where(host_lease.c.session_id == str(session_id))
                .values(heartbeat_at=heartbeat_at, expires_at=expires_at)
            )
            return result.rowcount == 1

    @translating_store_errors
    def release(self, session_id: UUID) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                delete(host_lease)
                .where(host_lease.c.service == LEASE_KEY)
                .where(host_lease.c.session_id == str(session_id))
            )

    @translating_store_errors
    def current(self) -> HostLease | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(host_lease).where(host_lease.c.service == LEASE_KEY)
            ).first()
        if row is None:
            return None
        return HostLease(
            session_id=UUID(row.session_id),
            station=row.station,
            pid=row.pid,
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
            expires_at=row.expires_at,
        )
