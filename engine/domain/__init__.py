"""The domain: aggregates and value objects of the service.

Imports only the standard library and ``eventsourcing.domain``; never adapters,
projections or the service host.
"""

from engine.domain.account import ServiceAccount
from engine.domain.errors import DomainError
from engine.domain.log_retention import LogRetention
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station import StationName
from engine.domain.station_ownership import StationOwnership

__all__ = [
    "DomainError",
    "LogRetention",
    "ServiceAccount",
    "ServiceConfiguration",
    "StationName",
    "StationOwnership",
]
