"""Occurrence arithmetic: the instants at which a schedule runs.

APScheduler 3 triggers do the arithmetic of the rules (``CronTrigger``, ``IntervalTrigger``).
This module adds the written DST policy for the wall-clock kinds (daily, weekly, monthly,
cron), read in the schedule's time zone:

* a wall-clock time that does not exist (clocks spring forward) runs once, at the first
  valid instant after it, i.e. the instant the gap ends (Europe/Warsaw 2026-03-29: 02:30
  runs at 03:00 CEST = 01:00Z);
* a wall-clock time that occurs twice (clocks fall back) runs once, at its first occurrence
  (2026-10-25: 02:30 runs at 00:30Z only);
* wall-clock times that map to the same instant run once (``*/15 2 * * *`` on the
  spring-forward day runs once, at 03:00 local).

``every`` follows absolute time: ``anchor + k * interval`` in UTC, unaffected by DST.

How: a ``CronTrigger`` in a DST zone does not keep this policy (see docs/scheduling.md), so
the trigger runs in UTC over "floating" wall-clock values (local wall time written as if
it were UTC, a zone without DST); each wall-clock candidate is then mapped to an instant
with ``zoneinfo`` (``fold=0`` for a repeated time, the end of the gap for a missing one)
and repeated instants are dropped. The mapping never decreases, so the bounds are exact:
the search starts just after the wall time of ``after`` and stops at the first instant
past ``until``; candidates mapping to or before ``after`` (the repeated hour) are skipped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from engine.scheduling.schedule import Schedule, ScheduleKind, wall_clock_fields

NEXT_OCCURRENCE_HORIZON = timedelta(days=3653)
"""How far ahead :func:`next_occurrence` looks (ten years)."""

_ONE_MICROSECOND = timedelta(microseconds=1)
_ONE_SECOND = timedelta(seconds=1)


class _Trigger(Protocol):
    """The part of an APScheduler 3 trigger used here."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None: ...


@dataclass(frozen=True)
class _CompiledSchedule:
    """A schedule's trigger; ``zone`` is None for an interval (absolute time)."""

    trigger: _Trigger
    zone: ZoneInfo | None
    business_days: bool


def occurrences(
    schedule: Schedule, after: datetime, until: datetime, *, limit: int | None = None
) -> list[datetime]:
    """The aware UTC instants of ``schedule`` strictly after ``after`` and at or before
    ``until``, ascending, without duplicates, at most ``limit`` of them.

    :raises ValueError: when ``after`` or ``until`` is naive or ``limit`` is negative.
    """
    after_utc = _aware_in_utc(after, "after")
    until_utc = _aware_in_utc(until, "until")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if until_utc <= after_utc:
        return []
    compiled = _compile(schedule)
    if compiled.zone is None:
        instants = _interval_instants(compiled.trigger, after_utc, until_utc)
    else:
        instants = _wall_clock_instants(compiled, compiled.zone, after_utc, until_utc)
    return list(islice(instants, limit))


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    """The first instant of ``schedule`` strictly after ``after`` (aware UTC), or None when
    there is none within :data:`NEXT_OCCURRENCE_HORIZON` (e.g. a cron for 25 December on
    business days).

    :raises ValueError: when ``after`` is naive.
    """
    after_utc = _aware_in_utc(after, "after")
    found = occurrences(schedule, after_utc, after_utc + NEXT_OCCURRENCE_HORIZON, limit=1)
    return found[0] if found else None


def is_business_day(day: date) -> bool:
    """Whether ``day`` is Monday to Friday and not a Polish public holiday."""
    return day.weekday() < 5 and day not in _polish_public_holidays()


@functools.cache
def _polish_public_holidays() -> holidays.HolidayBase:
    """Poland's public holidays; one shared object that adds years as they are asked for."""
    return holidays.country_holidays("PL")


@functools.lru_cache(maxsize=65_536)
def _compile(schedule: Schedule) -> _CompiledSchedule:
    """The schedule's trigger and zone, built once per schedule (schedules are hashable)."""
    trigger: _Trigger
    if schedule.kind == "every":
        trigger = IntervalTrigger(
            seconds=int(schedule.interval().total_seconds()),
            start_date=schedule.anchor,
            timezone=UTC,
        )
        return _CompiledSchedule(trigger=trigger, zone=None, business_days=False)
    return _CompiledSchedule(
        trigger=_floating_cron_trigger(schedule.kind, schedule.expression),
        zone=ZoneInfo(schedule.timezone),
        business_days=schedule.business_days,
    )


@functools.lru_cache(maxsize=16_384)
def _floating_cron_trigger(kind: ScheduleKind, expression: str) -> _Trigger:
    """The CronTrigger of a wall-clock rule, evaluated in UTC on floating wall-clock values;
    shared by all schedules with the same kind and expression, whatever their zone."""
    trigger: _Trigger
    if kind == "cron":
        trigger = CronTrigger.from_crontab(expression, timezone=UTC)
    else:
        trigger = CronTrigger(**wall_clock_fields(kind, expression), timezone=UTC)
    return trigger


def _interval_instants(trigger: _Trigger, after: datetime, until: datetime) -> Iterator[datetime]:
    fire_time = trigger.get_next_fire_time(None, after)
    while fire_time is not None and fire_time <= after:  # landed exactly on ``after``
        fire_time = trigger.get_next_fire_time(fire_time, fire_time)
    while fire_time is not None and fire_time <= until:
        yield fire_time
        fire_time = trigger.get_next_fire_time(fire_time, fire_time)


def _wall_clock_instants(
    compiled: _CompiledSchedule, zone: ZoneInfo, after: datetime, until: datetime
) -> Iterator[datetime]:
    """The instants of a wall-clock rule in (after, until], by the DST policy above."""
    # Candidates at or before the wall time of ``after`` map to instants at or before it.
    cursor = after.astimezone(zone).replace(tzinfo=UTC, fold=0)
    last_instant: datetime | None = None
    while True:
        floating = compiled.trigger.get_next_fire_time(None, cursor + _ONE_MICROSECOND)
        if floating is None:
            return
        cursor = floating
        wall_time = floating.replace(tzinfo=None)
        instant = _instant_of_wall_time(wall_time, zone)
        if instant > until:
            return
        if instant <= after or instant == last_instant:
            continue
        last_instant = instant
        if compiled.business_days:
            local_day = instant.astimezone(zone).date()
            if not is_business_day(local_day):
                if local_day == wall_time.date():  # skip the rest of that day at once
                    cursor = datetime.combine(local_day, time.max, tzinfo=UTC)
                continue
        yield instant


def _instant_of_wall_time(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the naive ``wall_time`` runs in ``zone``: its first
    occurrence if it occurs twice, the end of the gap if it does not exist."""
    instant = wall_time.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall_time:
        return instant
    return _end_of_gap(wall_time, zone)


def _end_of_gap(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jump forward over the non-existent ``wall_time``.

    With offsets ``before`` and ``after`` the jump, the instant lies in
    (wall_time - after, wall_time - before]; zoneinfo gives both ends (fold=1 and fold=0
    in a gap), and a bisection on whole seconds finds the first instant with the new offset.
    """
    earliest = wall_time.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the jump
    latest = wall_time.replace(tzinfo=zone, fold=0).astimezone(UTC)  # after the jump
    new_offset = latest.astimezone(zone).utcoffset()
    while latest - earliest > _ONE_SECOND:
        middle = earliest + (latest - earliest) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == new_offset:
            latest = middle
        else:
            earliest = middle
    return latest


def _aware_in_utc(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)
