"""Scheduling: the schedule value object and the instants it runs at.

Imports the standard library, APScheduler 3 triggers (arithmetic only, no scheduler),
``holidays`` and the domain's errors; never adapters, projections or the service host.
"""

from engine.scheduling.occurrences import (
    NEXT_OCCURRENCE_HORIZON,
    is_business_day,
    next_occurrence,
    occurrences,
)
from engine.scheduling.schedule import (
    DEFAULT_TIMEZONE,
    InvalidScheduleError,
    Schedule,
    ScheduleKind,
    parse_schedule,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "NEXT_OCCURRENCE_HORIZON",
    "InvalidScheduleError",
    "Schedule",
    "ScheduleKind",
    "is_business_day",
    "next_occurrence",
    "occurrences",
    "parse_schedule",
]
