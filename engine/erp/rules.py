"""The calendar and decision rules of the operations, as pure functions.

Dates are calendar days in Polish time; an operation turns its run's instant into
today's date with :func:`polish_date`.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from engine.erp.document import WARSAW, DunningStage

DayOfMonth = int | Literal["last"]


def polish_date(instant: datetime) -> date:
    """The calendar date in Poland at ``instant`` (a timezone-aware time)."""
    return instant.astimezone(WARSAW).date()


def add_months(anchor: date, months: int, day: DayOfMonth | None = None) -> date:
    """``anchor`` moved by ``months``, on ``day`` (default: the anchor's day); a day the
    month lacks, or ``last``, means the month's last day."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    wanted = anchor.day if day is None else day
    return date(year, month, last if wanted == "last" else min(wanted, last))


def invoice_periods(start: date, every: int, unit: Literal["day", "week", "month"],
                    day_of_month: DayOfMonth | None, end: date | None) -> Iterator[date]:
    """The period dates of a recurring invoice template, oldest first, none before
    ``start`` nor after ``end`` (endless if ``end`` is None)."""
    step = 0
    while True:
        if unit == "month":
            period = add_months(start, step * every, day_of_month)
        else:
            period = start + timedelta(days=step * every * (7 if unit == "week" else 1))
        step += 1
        if period < start:
            continue
        if end is not None and period > end:
            return
        yield period


def due_periods(start: date, every: int, unit: Literal["day", "week", "month"],
                day_of_month: DayOfMonth | None, end: date | None, *,
                after: date | None, until: date) -> list[date]:
    """The periods with a date up to ``until`` and after ``after`` (the latest generated),
    oldest first."""
    due = []
    for period in invoice_periods(start, every, unit, day_of_month, end):
        if period > until:
            break
        if after is None or period > after:
            due.append(period)
    return due


def next_order_date(start: date, every_months: int, current: date) -> date:
    """The first date of the service order rhythm after ``current``: ``start`` plus a
    multiple of ``every_months`` months, on the start's day clamped to the month's end."""
    step = 1
    while True:
        candidate = add_months(start, step * every_months)
        if candidate > current:
            return candidate
        step += 1


@dataclass(frozen=True)
class DunningStep:
    """What dunning does for a receivable today: execute stage ``execute`` (numbered
    from 1) and record ``skipped`` earlier stages as skipped; nothing if ``execute`` is
    None."""

    execute: int | None
    skipped: tuple[int, ...]


def dunning_step(stages: Sequence[DunningStage], done: set[int], due_date: date,
                 today: date) -> DunningStep:
    """The most advanced stage due by ``today`` (due date + its days at or before
    today), if not done yet; the earlier stages not done are skipped, so the customer
    gets one message, never several at once."""
    due = [number for number, stage in enumerate(stages, start=1)
           if due_date + timedelta(days=stage.days) <= today]
    if not due or due[-1] in done:
        return DunningStep(None, ())
    latest = due[-1]
    return DunningStep(latest, tuple(number for number in due[:-1] if number not in done))


def reminder_due(start: datetime, minutes_before: int, now: datetime) -> bool:
    """True from ``minutes_before`` the task's start until it starts."""
    return start - timedelta(minutes=minutes_before) <= now < start


def order_notice_due(order_date: date, remind_days_before: int, today: date) -> bool:
    """True from ``remind_days_before`` days before the order's date to the date itself."""
    return order_date - timedelta(days=remind_days_before) <= today <= order_date


def days_between(earlier: date, later: date) -> int:
    return (later - earlier).days
