"""Loading the service's two aggregates of fixed id, its configuration and its station
ownership.

Their classes are imported on the first load, not with this module: the service's
queries read only the read models, so a status query never builds the aggregates'
event classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.application.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from engine.domain.service_configuration import ServiceConfiguration
    from engine.domain.station_ownership import StationOwnership


def ownership(uow: UnitOfWork) -> StationOwnership | None:
    """The station ownership, or None before the service was first configured."""
    from engine.domain.station_ownership import STATION_OWNERSHIP_ID, StationOwnership

    return uow.get(STATION_OWNERSHIP_ID, StationOwnership)


def ownership_or_new(uow: UnitOfWork) -> StationOwnership:
    """The station ownership, or a new one to be saved with the caller's change."""
    from engine.domain.station_ownership import STATION_OWNERSHIP_ID, StationOwnership

    return uow.get_or_create(STATION_OWNERSHIP_ID, StationOwnership)


def configuration_or_new(uow: UnitOfWork) -> ServiceConfiguration:
    """The service configuration, or a new one to be saved with the caller's change."""
    from engine.domain.service_configuration import (
        SERVICE_CONFIGURATION_ID,
        ServiceConfiguration,
    )

    return uow.get_or_create(SERVICE_CONFIGURATION_ID, ServiceConfiguration)
