"""Which due occurrences of a task a host records as runs: the on-time, late and catch-up
rules, as one pure function.

A host looks at a task's occurrences after its cursor (where its schedule got to) and up
to now, and sorts them in two:

* **Live** occurrences fell due after ``live_from``, while this host was recording the
  task's occurrences (its timer set, its lease safe, its loop running). Each of them runs,
  however late its timer fired and whatever the catch-up policy: an occurrence that fell
  due while the host was up is never missed.
* The **others** fell due while no host recorded them: before the host started, while it
  could not record (its lease unsafe, the database unreachable, the process stalled), or
  while the task was paused. The latest of them is **on time** if it is less than
  :data:`ON_TIME_SECONDS` old and runs; every other one is **missed** and the task's
  policy decides: ``all`` runs the most recent ``max_catch_up`` of them, ``latest`` runs the
  most recent one unless an on-time or live occurrence runs, ``skip`` runs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.domain.task_definition import MISSED_COUNT_LIMIT
from engine.scheduling.arithmetic import occurrences
from engine.scheduling.schedule import Schedule

ON_TIME_SECONDS = 60.0
"""The latest occurrence that fell due while no host recorded it still runs if it is less
than this old when a host gets to it (exactly this old is missed)."""

_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class DuePlan:
    """The runs to record for one task now, and what was missed.

    ``runs`` are ascending. ``missed`` counts missed occurrences up to
    ``MISSED_COUNT_LIMIT`` + 1 (more are "more than"); ``replayed`` of them are among
    ``runs``; ``bounded`` tells that ``max_catch_up`` cut some. ``missed_through`` is the
    instant up to which missed occurrences were considered (None when none was missed).
    """

    runs: tuple[datetime, ...]
    missed: int = 0
    replayed: int = 0
    bounded: bool = False
    missed_through: datetime | None = None


def plan_due(
    schedule: Schedule, *, policy: str, after: datetime, now: datetime, live_from: datetime,
    max_catch_up: int,
) -> DuePlan:
    """The occurrences of ``schedule`` in (``after``, ``now``] to record as runs at ``now``,
    by the rules of this module. ``live_from`` is the instant from which this host has been
    recording the task's occurrences (at or after ``now``: nothing is live).

    :raises ValueError: for naive datetimes or a limit below 1.
    """
    if max_catch_up < 1:
        raise ValueError(f"max_catch_up must be at least 1, got {max_catch_up}")
    if now <= after:
        return DuePlan(runs=())
    boundary = min(max(live_from, after), now)
    live = occurrences(schedule, boundary, now)
    if boundary <= after:
        return DuePlan(runs=tuple(live))
    latest = _most_recent(schedule, after, boundary, 1)
    on_time = [moment for moment in latest if moment > now - timedelta(seconds=ON_TIME_SECONDS)]
    missed_until = on_time[0] - _ONE_MICROSECOND if on_time else boundary
    if missed_until <= after:
        return DuePlan(runs=(*on_time, *live))
    counted = occurrences(schedule, after, missed_until, limit=MISSED_COUNT_LIMIT + 1)
    if not counted:
        return DuePlan(runs=(*on_time, *live))
    replay, bounded = _replayed(
        schedule, policy, counted, after, missed_until, max_catch_up,
        something_runs=bool(on_time or live),
    )
    return DuePlan(
        runs=(*replay, *on_time, *live), missed=len(counted), replayed=len(replay),
        bounded=bounded, missed_through=missed_until,
    )


def _replayed(
    schedule: Schedule, policy: str, counted: list[datetime], after: datetime,
    until: datetime, max_catch_up: int, *, something_runs: bool,
) -> tuple[list[datetime], bool]:
    """The missed occurrences the policy replays, and whether the limit cut some.
    ``counted`` holds the first of them (all of them unless there are more than
    ``MISSED_COUNT_LIMIT``)."""
    complete = len(counted) <= MISSED_COUNT_LIMIT
    if policy == "skip":
        return [], False
    if policy == "latest":
        if something_runs:
            return [], False
        return (counted[-1:] if complete else _most_recent(schedule, after, until, 1)), False
    if policy != "all":
        raise ValueError(f"catch-up policy {policy!r} is not known")
    if len(counted) <= max_catch_up:
        return counted, False
    recent = counted[-max_catch_up:] if complete else _most_recent(
        schedule, after, until, max_catch_up
    )
    return recent, True


def _most_recent(
    schedule: Schedule, after: datetime, until: datetime, count: int
) -> list[datetime]:
    """The last ``count`` occurrences in (after, until], searching back in widening
    windows so that a long downtime of a frequent schedule stays cheap."""
    window = timedelta(hours=1)
    while True:
        start = max(after, until - window)
        found = occurrences(schedule, start, until)
        if len(found) >= count or start == after:
            return found[-count:]
        window *= 8
