"""The log retention: delete log entries older than N days."""

from __future__ import annotations

from engine.domain.errors import DomainError

DEFAULT_LOG_RETENTION_DAYS = 10
MIN_LOG_RETENTION_DAYS = 5
MAX_LOG_RETENTION_DAYS = 30


class InvalidLogRetentionError(DomainError):
    """Signals a log retention outside 5 to 30 days."""


class LogRetention:
    """Validation of the number of days log entries are kept."""

    @staticmethod
    def check(days: object) -> int:
        """Return ``days`` as an int.

        :raises InvalidLogRetentionError: unless it is a whole number from 5 to 30.
        """
        if isinstance(days, bool) or not isinstance(days, int):
            raise InvalidLogRetentionError(
                f"log retention {days!r} is not a whole number of days; allowed are "
                f"{MIN_LOG_RETENTION_DAYS} to {MAX_LOG_RETENTION_DAYS}"
            )
        if not MIN_LOG_RETENTION_DAYS <= days <= MAX_LOG_RETENTION_DAYS:
            raise InvalidLogRetentionError(
                f"log retention {days} days is out of range; allowed are "
                f"{MIN_LOG_RETENTION_DAYS} to {MAX_LOG_RETENTION_DAYS} days"
            )
        return days
