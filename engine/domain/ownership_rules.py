"""The refusals of the station ownership rules, importable without the aggregate (the
status query needs them, not the aggregate), and the ownership's fixed id."""

from __future__ import annotations

from uuid import UUID, uuid5

from engine.domain.errors import ConflictError, DomainError, NotPermittedError

STATION_OWNERSHIP_ID = uuid5(UUID(int=0), "soa-engine/station-ownership")


class OwnershipError(DomainError):
    """Signals a start, stop or move that the ownership rules refuse."""


class NotConfiguredError(OwnershipError, ConflictError):
    def __init__(self) -> None:
        super().__init__(
            "the service is not configured; set its account first: "
            "soa configure account DOMAIN\\user"
        )


class ConfiguredElsewhereError(OwnershipError, NotPermittedError):
    def __init__(self, owner: str, station: str) -> None:
        super().__init__(
            f"the service is configured on station {owner}, not on {station}; "
            f"start it there, or set the account on {station} to move it here"
        )


class RunningElsewhereError(OwnershipError, NotPermittedError):
    def __init__(self, owner: str, action: str) -> None:
        super().__init__(
            f"the service is running on station {owner}; {action} only on that station "
            "(or after it has stopped)"
        )


class AlreadyRunningError(OwnershipError, ConflictError):
    def __init__(self, owner: str) -> None:
        super().__init__(f"the service is already running on station {owner}; stop it first")


class NotRunningError(OwnershipError, ConflictError):
    def __init__(self) -> None:
        super().__init__("the service is not running; start it with: soa start")
