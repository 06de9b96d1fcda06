"""Properties of occurrences for random schedules and windows (2026-2027, up to 60 days),
half of them around a change of the clocks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.scheduling import (
    InvalidScheduleError,
    Schedule,
    next_occurrence,
    occurrences,
    parse_schedule,
)

ZONES = ["Europe/Warsaw", "America/New_York", "UTC", "Australia/Sydney"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_KINDS = ("every", "daily", "weekly", "monthly", "cron")
POLAND = holidays.country_holidays("PL")
# The changes of the clocks in the zones above, in 2026-2027 (each at 02:00 or 03:00 local).
CLOCK_CHANGES = [
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ("Europe/Warsaw", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 4, 16, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 10, 3, 16, tzinfo=UTC)),
    ("Europe/Warsaw", datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Europe/Warsaw", datetime(2027, 3, 28, 1, tzinfo=UTC)),
    ("Europe/Warsaw", datetime(2027, 10, 31, 1, tzinfo=UTC)),
]
PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

minutes = st.one_of(st.sampled_from([0, 15, 30, 45]), st.integers(0, 59))


@st.composite
def cron_expressions(draw: st.DrawFn, near_changes: bool) -> str:
    if near_changes:
        hour = draw(st.sampled_from(["*", "2", "1-3", "2,3", "1,2"]))
    else:
        hour = draw(st.sampled_from(["*", "2", "1-3", "*/6", "0,12", "2,3", "22", "*/2"]))
    if hour in ("*", "*/2"):
        minute = draw(st.sampled_from(["0", "30", "45"]))
    else:
        minute = draw(st.sampled_from(["0", "30", "0,30", "*/15", "59"]))
    month = draw(st.sampled_from(["*", "*", "mar,oct,nov", "jan-jun", "*/2"]))
    if draw(st.booleans()):
        day = draw(st.sampled_from(["1", "15", "28-31", "last", "1,15", "*/10"]))
        weekday = "*"
    else:
        day = "*"
        weekday = draw(st.sampled_from(["*", "mon-fri", "sun", "sat,sun", "tue,thu"]))
    return f"{minute} {hour} {day} {month} {weekday}"


anchors = st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2027, 12, 31)
).map(lambda moment: moment.replace(microsecond=0, tzinfo=UTC))


@st.composite
def schedules(
    draw: st.DrawFn, kinds: tuple[str, ...], zones: list[str], near_changes: bool
) -> Schedule:
    """A valid schedule of one of ``kinds``; with ``near_changes`` its times of day fall in
    the hours the clocks change (0 to 3 local)."""
    # Near a change, crons and dailies (where times collide or go missing) come up more often.
    weighted = kinds + tuple(kind for kind in kinds if kind in ("cron", "daily"))
    kind = draw(st.sampled_from(weighted if near_changes else kinds))
    zone = draw(st.sampled_from(zones))
    # The clocks change on Sundays, so business days would hide the change days.
    business_days = kind != "every" and not near_changes and draw(st.booleans())
    if kind == "every":
        interval = draw(
            st.one_of(
                st.integers(10, 2880).map(lambda minutes: f"{minutes}m"),
                st.sampled_from(["1h", "7h", "25h", "744h", "3600s", "90061s"]),
            )
        )
        return parse_schedule(every=interval, anchor=draw(anchors), timezone=zone)
    hour = draw(st.integers(0, 3) if near_changes else st.integers(0, 23))
    time_of_day = f"{hour:02d}:{draw(minutes):02d}"
    try:
        if kind == "daily":
            return parse_schedule(daily=time_of_day, timezone=zone, business_days=business_days)
        if kind == "weekly":
            days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
            return parse_schedule(
                weekly=f"{','.join(days)}@{time_of_day}",
                timezone=zone,
                business_days=business_days,
            )
        if kind == "monthly":
            day = draw(st.one_of(st.integers(1, 31).map(str), st.just("last")))
            return parse_schedule(
                monthly=f"{day}@{time_of_day}", timezone=zone, business_days=business_days
            )
        return parse_schedule(
            cron=draw(cron_expressions(near_changes)),
            timezone=zone,
            business_days=business_days,
        )
    except InvalidScheduleError:  # e.g. weekly on sat,sun with business days
        assume(False)
        raise


Case = tuple[Schedule, datetime, datetime]


@st.composite
def cases(draw: st.DrawFn, kinds: tuple[str, ...] = ALL_KINDS) -> Case:
    """``(schedule, after, until)``: after within 2026-2027 and a span up to 60 days; half of
    them are a window of up to 6 days around a change of the clocks in the schedule's zone."""
    if draw(st.booleans()):
        zone, change = draw(st.sampled_from(CLOCK_CHANGES))
        schedule = draw(schedules(kinds, [zone], near_changes=True))
        three_days = timedelta(days=3)
        after = change - draw(st.timedeltas(min_value=timedelta(0), max_value=three_days))
        until = change + draw(st.timedeltas(min_value=timedelta(0), max_value=three_days))
        return schedule, after, until
    schedule = draw(schedules(kinds, ZONES, near_changes=False))
    after = draw(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31))
    ).replace(tzinfo=UTC)
    span = timedelta(days=draw(st.integers(0, 59))) + draw(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))
    )
    return schedule, after, after + span


def is_polish_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in POLAND


@PROPERTY_SETTINGS
@given(case=cases())
def test_occurrences_are_ascending_unique_aware_utc_and_inside_the_window(case: Case) -> None:
    schedule, after, until = case
    found = occurrences(schedule, after, until)
    assert all(earlier < later for earlier, later in pairwise(found))
    assert all(after < instant <= until for instant in found)
    assert all(instant.tzinfo is UTC for instant in found)
    if schedule.business_days:
        zone = ZoneInfo(schedule.timezone)
        assert all(is_polish_business_day(instant.astimezone(zone).date()) for instant in found)
    if schedule.kind == "every":
        anchor = schedule.anchor
        assert anchor is not None
        assert all(instant >= anchor for instant in found)
        assert all((instant - anchor) % schedule.interval() == timedelta() for instant in found)
    assert occurrences(schedule, after, until, limit=3) == found[:3]


@PROPERTY_SETTINGS
@given(case=cases(), fraction=st.floats(0, 1), split_at_a_run=st.booleans(), index=st.integers(0))
def test_splitting_a_window_loses_and_doubles_nothing(
    case: Case, fraction: float, split_at_a_run: bool, index: int
) -> None:
    schedule, after, until = case
    whole = occurrences(schedule, after, until)
    if split_at_a_run and whole:
        split = whole[index % len(whole)]  # the catch-up case: resume from the last run
    else:
        split = after + (until - after) * fraction
    assert occurrences(schedule, after, split) + occurrences(schedule, split, until) == whole


@PROPERTY_SETTINGS
@given(case=cases())
def test_next_occurrence_is_the_first_of_the_occurrences(case: Case) -> None:
    schedule, after, _ = case
    far = after + timedelta(days=800)
    two = occurrences(schedule, after, far, limit=2)
    following = next_occurrence(schedule, after)
    if two:
        assert following == two[0]
    else:
        assert following is None or following > far
    # Check the chain: the next after a run is the run after it.
    if len(two) == 2:
        assert next_occurrence(schedule, two[0]) == two[1]


def gap_end_check(instant: datetime, zone: ZoneInfo, configured: datetime) -> None:
    """``configured`` (naive local) did not exist; ``instant`` is the first valid one after it."""
    for fold in (0, 1):
        candidate = configured.replace(tzinfo=zone, fold=fold)
        round_trip = candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        assert round_trip != configured
    just_before = (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
    at_instant = instant.astimezone(zone).replace(tzinfo=None)
    assert just_before < configured < at_instant


@PROPERTY_SETTINGS
@given(case=cases(kinds=("daily",)))
def test_daily_runs_once_per_local_day_at_its_time_or_where_the_gap_ends(case: Case) -> None:
    schedule, after, until = case
    zone = ZoneInfo(schedule.timezone)
    found = occurrences(schedule, after, until)
    per_day = Counter(instant.astimezone(zone).date() for instant in found)
    assert all(count == 1 for count in per_day.values())
    # Every full local day strictly inside the window has its run (or none: not a business day).
    day = after.astimezone(zone).date() + timedelta(days=1)
    last_full_day = until.astimezone(zone).date() - timedelta(days=1)
    while day <= last_full_day:
        expected = not schedule.business_days or is_polish_business_day(day)
        assert (day in per_day) is expected, day
        day += timedelta(days=1)
    hour, minute = (int(part) for part in schedule.expression.split(":"))
    configured_time = time(hour, minute)
    for instant in found:
        local = instant.astimezone(zone)
        if local.time() == configured_time:
            assert local.fold == 0  # the first of a repeated time
        else:
            gap_end_check(instant, zone, datetime.combine(local.date(), configured_time))


@PROPERTY_SETTINGS
@given(case=cases(kinds=("weekly", "monthly")))
def test_weekly_and_monthly_run_on_their_local_dates(case: Case) -> None:
    schedule, after, until = case
    zone = ZoneInfo(schedule.timezone)
    found = occurrences(schedule, after, until)
    prefix = schedule.expression.split("@")[0]
    dates = [instant.astimezone(zone).date() for instant in found]
    assert len(set(dates)) == len(dates)
    for day in dates:
        if schedule.kind == "weekly":
            assert WEEKDAYS[day.weekday()] in prefix.split(",")
        elif prefix == "last":
            assert (day + timedelta(days=1)).day == 1
        else:
            assert day.day == int(prefix)
