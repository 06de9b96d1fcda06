"""Station (stanowisko) names: the workstation a command comes from."""

from __future__ import annotations

from engine.domain.errors import DomainError

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
        stripped = name.strip()
        if not stripped:
            raise InvalidStationError("station name is empty; give a name such as the host name")
        if len(stripped) > MAX_STATION_LENGTH:
            raise InvalidStationError(
                f"station name {stripped[:20]!r}... is longer than {MAX_STATION_LENGTH} characters"
            )
        if any(ord(char) < 32 or ord(char) == 127 for char in stripped):
            raise InvalidStationError(
                f"station name {stripped!r} contains control characters; use printable ones"
            )
        return stripped
