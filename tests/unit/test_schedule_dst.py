"""The DST policy on the days the clocks change.

Europe/Warsaw: spring forward 02:00 CET -> 03:00 CEST (01:00Z) on 2026-03-29 and 2027-03-28;
fall back 03:00 CEST -> 02:00 CET (01:00Z) on 2026-10-25 and 2027-10-31. CET = UTC+1,
CEST = UTC+2. A missing wall-clock time runs once at the end of the gap, a repeated one
once at its first occurrence, and ``every`` follows absolute time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from engine.scheduling import Schedule, next_occurrence, occurrences, parse_schedule

WARSAW = ZoneInfo("Europe/Warsaw")
SPRING_DAYS = [date(2026, 3, 29), date(2027, 3, 28)]
FALL_DAYS = [date(2026, 10, 25), date(2027, 10, 31)]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """An instant in UTC on ``day``."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def local_midnight(day: date, zone: ZoneInfo = WARSAW) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def runs_on_local_day(schedule: Schedule, day: date, zone: ZoneInfo = WARSAW) -> list[datetime]:
    """The runs from local midnight of ``day`` (inclusive) to the next local midnight."""
    start = local_midnight(day, zone) - timedelta(microseconds=1)
    end = local_midnight(day + timedelta(days=1), zone) - timedelta(microseconds=1)
    return occurrences(schedule, start, end)


def test_apscheduler_alone_breaks_the_policy_which_is_why_the_layer_exists() -> None:
    # APScheduler 3.11 CronTrigger facts the DST layer exists for; if they change, it may go.
    trigger = CronTrigger(hour=2, minute=30, timezone=WARSAW)
    spring = trigger.get_next_fire_time(None, datetime(2026, 3, 29, tzinfo=WARSAW))
    assert spring.astimezone(UTC) == at(date(2026, 3, 29), 1, 30)  # 03:30 CEST, not 03:00
    first = trigger.get_next_fire_time(None, datetime(2026, 10, 25, tzinfo=WARSAW))
    second = trigger.get_next_fire_time(first, first)
    assert first.astimezone(UTC) == at(date(2026, 10, 25), 0, 30)
    assert second.astimezone(UTC) == at(date(2026, 10, 25), 1, 30)  # 02:30 twice


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_daily_at_a_missing_time_runs_once_when_the_gap_ends(day: date) -> None:
    schedule = parse_schedule(daily="02:30")
    assert runs_on_local_day(schedule, day) == [at(day, 1, 0)]  # 03:00 CEST
    # The days around it run at 02:30 as usual.
    assert runs_on_local_day(schedule, day - timedelta(days=1)) == [
        at(day - timedelta(days=1), 1, 30)
    ]
    assert runs_on_local_day(schedule, day + timedelta(days=1)) == [at(day, 0, 30) + timedelta(days=1)]


@pytest.mark.parametrize("time_of_day", ["02:00", "02:01", "02:59"])
def test_every_missing_time_maps_to_the_end_of_the_gap(time_of_day: str) -> None:
    schedule = parse_schedule(daily=time_of_day)
    assert runs_on_local_day(schedule, date(2026, 3, 29)) == [at(date(2026, 3, 29), 1, 0)]


@pytest.mark.parametrize("day", FALL_DAYS)
def test_daily_at_a_repeated_time_runs_once_at_its_first_occurrence(day: date) -> None:
    schedule = parse_schedule(daily="02:30")
    assert runs_on_local_day(schedule, day) == [at(day, 0, 30)]  # 02:30 CEST, not 02:30 CET
    assert runs_on_local_day(schedule, day + timedelta(days=1)) == [
        at(day + timedelta(days=1), 1, 30)
    ]


@pytest.mark.parametrize("day", FALL_DAYS)
def test_a_window_starting_between_the_two_passes_does_not_run_the_repeat(day: date) -> None:
    schedule = parse_schedule(daily="02:30")
    # At 01:00Z the clocks show 02:00 CET again; 02:30 has already run at 00:30Z.
    assert next_occurrence(schedule, at(day, 1, 0)) == at(day + timedelta(days=1), 1, 30)
    assert next_occurrence(schedule, at(day, 0, 30)) == at(day + timedelta(days=1), 1, 30)
    assert next_occurrence(schedule, at(day, 0, 29)) == at(day, 0, 30)


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_a_window_ending_or_starting_at_the_jump(day: date) -> None:
    schedule = parse_schedule(daily="02:30")
    jump = at(day, 1, 0)
    assert occurrences(schedule, local_midnight(day), jump) == [jump]
    assert occurrences(schedule, local_midnight(day), jump - timedelta(seconds=1)) == []
    assert next_occurrence(schedule, jump) == at(day + timedelta(days=1), 0, 30)


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_daily_0600_on_the_spring_day(day: date) -> None:
    schedule = parse_schedule(daily="06:00")
    assert runs_on_local_day(schedule, day - timedelta(days=1)) == [
        at(day - timedelta(days=1), 5, 0)  # 06:00 CET
    ]
    assert runs_on_local_day(schedule, day) == [at(day, 4, 0)]  # 06:00 CEST


@pytest.mark.parametrize("day", FALL_DAYS)
def test_daily_0600_on_the_fall_day(day: date) -> None:
    schedule = parse_schedule(daily="06:00")
    assert runs_on_local_day(schedule, day - timedelta(days=1)) == [
        at(day - timedelta(days=1), 4, 0)  # 06:00 CEST
    ]
    assert runs_on_local_day(schedule, day) == [at(day, 5, 0)]  # 06:00 CET


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_cron_quarter_hours_in_the_missing_hour_run_once(day: date) -> None:
    schedule = parse_schedule(cron="*/15 2 * * *")
    assert runs_on_local_day(schedule, day) == [at(day, 1, 0)]  # one run, at 03:00 CEST
    assert [run.astimezone(WARSAW).strftime("%H:%M") for run in runs_on_local_day(
        schedule, day + timedelta(days=1)
    )] == ["02:00", "02:15", "02:30", "02:45"]


@pytest.mark.parametrize("day", FALL_DAYS)
def test_cron_quarter_hours_in_the_repeated_hour_run_once_each_in_the_first_pass(
    day: date,
) -> None:
    schedule = parse_schedule(cron="*/15 2 * * *")
    assert runs_on_local_day(schedule, day) == [
        at(day, 0, 0), at(day, 0, 15), at(day, 0, 30), at(day, 0, 45),
    ]
    # Check that a window inside the second pass finds nothing that day.
    assert occurrences(schedule, at(day, 1, 0), at(day, 2, 0)) == []


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_cron_over_the_missing_hour_and_the_next_runs_once_at_the_jump(day: date) -> None:
    schedule = parse_schedule(cron="0,30 2,3 * * *")
    # 02:00, 02:30 and 03:00 all map to 03:00 CEST; 03:30 CEST runs as usual.
    assert runs_on_local_day(schedule, day) == [at(day, 1, 0), at(day, 1, 30)]


@pytest.mark.parametrize("day", SPRING_DAYS)
def test_every_hour_gives_23_runs_on_the_23_hour_day(day: date) -> None:
    schedule = parse_schedule(every="1h", anchor=local_midnight(day))
    runs = occurrences(
        schedule, local_midnight(day), local_midnight(day + timedelta(days=1))
    )
    assert len(runs) == 23
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(runs))
    assert [run.astimezone(WARSAW).hour for run in runs[:3]] == [1, 3, 4]


@pytest.mark.parametrize("day", FALL_DAYS)
def test_every_hour_gives_25_runs_on_the_25_hour_day(day: date) -> None:
    schedule = parse_schedule(every="1h", anchor=local_midnight(day))
    runs = occurrences(
        schedule, local_midnight(day), local_midnight(day + timedelta(days=1))
    )
    assert len(runs) == 25
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(runs))
    assert [run.astimezone(WARSAW).hour for run in runs[:4]] == [1, 2, 2, 3]


def test_every_keeps_absolute_spacing_across_a_whole_dst_season() -> None:
    schedule = parse_schedule(every="90m", anchor=at(date(2026, 3, 1), 0, 0))
    runs = occurrences(schedule, at(date(2026, 3, 1), 0, 0), at(date(2026, 11, 30), 0, 0))
    assert all(later - earlier == timedelta(minutes=90) for earlier, later in pairwise(runs))
    anchor = schedule.anchor
    assert anchor is not None
    assert all((run - anchor) % timedelta(minutes=90) == timedelta() for run in runs)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 29), at(date(2026, 3, 29), 1, 0)),
        (date(2027, 3, 28), at(date(2027, 3, 28), 1, 0)),
        (date(2026, 10, 25), at(date(2026, 10, 25), 0, 30)),
        (date(2027, 10, 31), at(date(2027, 10, 31), 0, 30)),
    ],
)
def test_weekly_on_the_change_days(day: date, expected: datetime) -> None:
    # All four change days are Sundays.
    schedule = parse_schedule(weekly="sun,wed@02:30")
    assert runs_on_local_day(schedule, day) == [expected]
    week = occurrences(schedule, local_midnight(day), local_midnight(day + timedelta(days=7)))
    assert len(week) == 2


@pytest.mark.parametrize(
    ("expression", "day", "expected"),
    [
        ("29@02:30", date(2026, 3, 29), at(date(2026, 3, 29), 1, 0)),
        ("28@02:30", date(2027, 3, 28), at(date(2027, 3, 28), 1, 0)),
        ("25@02:30", date(2026, 10, 25), at(date(2026, 10, 25), 0, 30)),
        ("last@02:30", date(2027, 10, 31), at(date(2027, 10, 31), 0, 30)),
        ("29@06:00", date(2026, 3, 29), at(date(2026, 3, 29), 4, 0)),
        ("last@06:00", date(2027, 10, 31), at(date(2027, 10, 31), 5, 0)),
    ],
)
def test_monthly_on_the_change_days(expression: str, day: date, expected: datetime) -> None:
    schedule = parse_schedule(monthly=expression)
    month_start = local_midnight(day.replace(day=1))
    assert occurrences(schedule, month_start, month_start + timedelta(days=31)) == [expected]


def test_business_days_do_not_change_the_dst_mapping() -> None:
    # 2027-03-29 is Easter Monday, so the Monday after the spring change is skipped.
    schedule = parse_schedule(cron="*/15 2 * * *", business_days=True)
    runs = occurrences(schedule, local_midnight(date(2027, 3, 26)), local_midnight(date(2027, 4, 1)))
    assert {run.astimezone(WARSAW).date() for run in runs} == {
        date(2027, 3, 26), date(2027, 3, 30), date(2027, 3, 31),
    }


@pytest.mark.parametrize(
    ("zone_name", "time_of_day", "expected"),
    [
        # New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        ("America/New_York", "02:30", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ("America/New_York", "01:30", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        # Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT.
        ("Australia/Sydney", "02:30", datetime(2026, 4, 4, 15, 30, tzinfo=UTC)),
        ("Australia/Sydney", "02:30", datetime(2026, 10, 3, 16, 0, tzinfo=UTC)),
        # Lord Howe moves by half an hour: 2026-10-04 02:00 -> 02:30 (+11).
        ("Australia/Lord_Howe", "02:15", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
    ],
)
def test_the_policy_in_other_zones(zone_name: str, time_of_day: str, expected: datetime) -> None:
    zone = ZoneInfo(zone_name)
    schedule = parse_schedule(daily=time_of_day, timezone=zone_name)
    day = expected.astimezone(zone).date()
    assert runs_on_local_day(schedule, day, zone) == [expected]
