"""The service view: configuration and ownership as the status and ``configure show`` need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, update

from engine.adapters.schema import SERVICE_VIEW_ROW_ID, service_view
from engine.domain.log_retention import DEFAULT_LOG_RETENTION_DAYS
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership
from engine.projections.runner import NumberedEvent, Projection

SERVICE_EVENTS = (ServiceConfiguration.Event, StationOwnership.Event)


class ServiceViewProjection(Projection):
    """One row, ``soa_service_view``, updated by configuration and ownership events."""

    name = "service_view"
    tables = (service_view,)

    def reset(self, connection: Connection) -> None:
        connection.execute(delete(service_view))
        connection.execute(
            insert(service_view).values(
                id=SERVICE_VIEW_ROW_ID, log_retention_days=DEFAULT_LOG_RETENTION_DAYS
            )
        )

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        changes: dict[str, Any] = {}
        for _, event in events:
            if isinstance(event, SERVICE_EVENTS):  # most events are of tasks and runs
                changes.update(self._changes(event))
        if changes:
            the_row = service_view.c.id == SERVICE_VIEW_ROW_ID
            connection.execute(update(service_view).where(the_row).values(**changes))

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
                    "api_url": event.api_url,
                }
            case StationOwnership.Stopped() | StationOwnership.Crashed():
                return {"session_id": None, "pid": None, "host": None, "since": None,
                        "api_url": None}
        return {}
