"""The service view: configuration and ownership as the status and ``configure show`` need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, delete, insert, select, update

from engine.adapters.schema import service_view
from engine.domain.log_retention import DEFAULT_LOG_RETENTION_DAYS
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership
from engine.ports.read_models import ServiceView
from engine.projections.runner import NumberedEvent, Projection

VIEW_ROW_ID = 1


class ServiceViewProjection(Projection):
    """One row, ``soa_service_view``, updated by configuration and ownership events."""

    name = "service_view"
    tables = (service_view,)

    def reset(self, connection: Connection) -> None:
        connection.execute(delete(service_view))
        connection.execute(
            insert(service_view).values(
                id=VIEW_ROW_ID, log_retention_days=DEFAULT_LOG_RETENTION_DAYS
            )
        )

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        changes: dict[str, Any] = {}
        for _, event in events:
            changes.update(self._changes(event))
        if changes:
            connection.execute(
                update(service_view).where(service_view.c.id == VIEW_ROW_ID).values(**changes)
            )

    @staticmethod
    def _changes(event: Any) -> dict[str, Any]:
        match event:
            case ServiceConfiguration.Configured() | ServiceConfiguration.AccountChanged():
                return {"account": event.account}
            case ServiceConfiguration.LogRetentionChanged():
                return {"log_retention_days": event.days}
            case StationOwnership.Assigned():
                return {"station": event.station}
            case StationOwnership.Started():
                return {
                    "session_id": str(event.session_id),
                    "pid": event.pid,
                    "host": event.host,
                    "since": event.timestamp,
                }
            case StationOwnership.Stopped() | StationOwnership.Crashed():
                return {"session_id": None, "pid": None, "host": None, "since": None}
        return {}

    @staticmethod
    def read(engine: Engine) -> ServiceView:
        with engine.connect() as connection:
            row = connection.execute(
                select(service_view).where(service_view.c.id == VIEW_ROW_ID)
            ).one()
        return ServiceView(
            account=row.account,
            log_retention_days=row.log_retention_days,
            station=row.station,
            session_id=UUID(row.session_id) if row.session_id else None,
            pid=row.pid,
            host=row.host,
            since=row.since,
        )
