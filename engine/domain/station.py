"""Station (stanowisko) names: the workstation a command comes from."""

from __future__ import annotations

from engine.domain.errors import DomainError
from engine.domain.names import check_printable_name

MAX_STATION_LENGTH = 64


class InvalidStationError(DomainError):
    """Signals a station name that is empty, too long or has control characters."""


class StationName:
    """Validation of station names."""

    @staticmethod
    def check(name: str) -> str:
        """Return ``name`` stripped of surrounding blanks.

        :raises InvalidStationError: if it is empty, longer than 64 characters or
            contains control characters.
        """
        return check_printable_name(
            name, what="station name", max_length=MAX_STATION_LENGTH, error=InvalidStationError
        )
