"""Scheduling: the schedule value object, the instants it runs at, and which of the
due instants a host records (the catch-up rules).

Imports the standard library, APScheduler 3 triggers (arithmetic only, no scheduler),
``holidays`` and the domain's errors; never adapters, projections or the service host.
The names below are loaded on first use, so that importing the schedule value object
does not import the occurrence arithmetic.
"""

from __future__ import annotations

from engine.lazy_exports import lazy_exports as _lazy_exports

_WHERE = {
    "DEFAULT_TIMEZONE": "schedule",
    "InvalidScheduleError": "schedule",
    "Schedule": "schedule",
    "ScheduleKind": "schedule",
    "ScheduleSpec": "schedule",
    "parse_schedule": "schedule",
    "NEXT_OCCURRENCE_HORIZON": "arithmetic",
    "is_business_day": "arithmetic",
    "next_occurrence": "arithmetic",
    "occurrences": "arithmetic",
    "ON_TIME_SECONDS": "catch_up",
    "DuePlan": "catch_up",
    "plan_due": "catch_up",
}

__all__, __getattr__ = _lazy_exports(__name__, _WHERE)
