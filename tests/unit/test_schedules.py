from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from engine.domain.errors import DomainError
from engine.scheduling import (
    InvalidScheduleError,
    Schedule,
    is_business_day,
    next_occurrence,
    occurrences,
    parse_schedule,
)

WARSAW = ZoneInfo("Europe/Warsaw")
ANCHOR = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_day_start(day: date, zone: ZoneInfo = WARSAW) -> datetime:
    """The instant local midnight of ``day`` begins, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_texts(instants: list[datetime], zone: ZoneInfo = WARSAW) -> list[str]:
    return [instant.astimezone(zone).strftime("%Y-%m-%d %a %H:%M") for instant in instants]


# Parsing


@pytest.mark.parametrize(
    ("arguments", "kind", "expression"),
    [
        ({"every": "30s"}, "every", "30s"),
        ({"every": " 5M "}, "every", "5m"),
        ({"every": "2 h"}, "every", "2h"),
        ({"every": "0090m"}, "every", "90m"),
        ({"every": "744h"}, "every", "744h"),
        ({"every": "1s"}, "every", "1s"),
        ({"daily": "06:30"}, "daily", "06:30"),
        ({"daily": "6:30"}, "daily", "06:30"),
        ({"daily": "23:59"}, "daily", "23:59"),
        ({"weekly": "mon,thu@07:00"}, "weekly", "mon,thu@07:00"),
        ({"weekly": "Thu, Mon @ 7:00"}, "weekly", "mon,thu@07:00"),
        ({"weekly": "sun@00:00"}, "weekly", "sun@00:00"),
        ({"monthly": "1@06:00"}, "monthly", "1@06:00"),
        ({"monthly": "01@6:00"}, "monthly", "1@06:00"),
        ({"monthly": "LAST@06:00"}, "monthly", "last@06:00"),
        ({"monthly": "31@23:30"}, "monthly", "31@23:30"),
        ({"cron": "*/15 2 * * *"}, "cron", "*/15 2 * * *"),
        ({"cron": "  0   6 * *  MON-FRI "}, "cron", "0 6 * * mon-fri"),
        ({"cron": "0 6 last jan-mar *"}, "cron", "0 6 last jan-mar *"),
        ({"cron": "0 6 * * sat,sun"}, "cron", "0 6 * * sat,sun"),
    ],
)
def test_each_format_is_parsed_and_normalised(
    arguments: dict[str, str], kind: str, expression: str
) -> None:
    schedule = parse_schedule(**arguments)  # type: ignore[arg-type]
    assert schedule.kind == kind
    assert schedule.expression == expression
    assert schedule.timezone == "Europe/Warsaw"
    assert schedule.business_days is False


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"every": "5x"},
            "every '5x' is not a duration; expected a number with s, m or h, such as 30s, 5m "
            "or 2h",
        ),
        (
            {"every": "1.5h"},
            "every '1.5h' is not a duration; expected a number with s, m or h, such as 30s, 5m "
            "or 2h",
        ),
        (
            {"every": "-5m"},
            "every '-5m' is not a duration; expected a number with s, m or h, such as 30s, 5m "
            "or 2h",
        ),
        (
            {"every": "3d"},
            "every '3d' is not a duration; expected a number with s, m or h, such as 30s, 5m "
            "or 2h",
        ),
        ({"every": "0s"}, "every '0s' is too short; the shortest allowed is 1s"),
        ({"every": "745h"}, "every '745h' is too long; the longest allowed is 31 days (744h)"),
        (
            {"every": "44641m"},
            "every '44641m' is too long; the longest allowed is 31 days (744h)",
        ),
        (
            {"daily": "24:00"},
            "daily '24:00' is not a time of day; expected HH:MM in 24-hour form, such as 06:30 "
            "or 18:00",
        ),
        (
            {"daily": "6.30"},
            "daily '6.30' is not a time of day; expected HH:MM in 24-hour form, such as 06:30 "
            "or 18:00",
        ),
        (
            {"daily": "06:60"},
            "daily '06:60' is not a time of day; expected HH:MM in 24-hour form, such as 06:30 "
            "or 18:00",
        ),
        (
            {"weekly": "mon"},
            "weekly 'mon' is not days@time; expected day names and a time, such as "
            "mon,thu@07:00",
        ),
        (
            {"weekly": "monday@07:00"},
            "weekly 'monday@07:00' has an unknown day 'monday'; allowed are mon, tue, wed, thu, "
            "fri, sat, sun, comma-separated",
        ),
        (
            {"weekly": "mon,mon@07:00"},
            "weekly 'mon,mon@07:00' names mon twice; name each day once",
        ),
        (
            {"weekly": "mon@7"},
            "weekly 'mon@7' has no valid time after @; expected HH:MM in 24-hour form, such as "
            "07:00",
        ),
        (
            {"monthly": "32@06:00"},
            "monthly '32@06:00' has no valid day before @; allowed are 1 to 31 or last, such as "
            "1@06:00 or last@06:00",
        ),
        (
            {"monthly": "0@06:00"},
            "monthly '0@06:00' has no valid day before @; allowed are 1 to 31 or last, such as "
            "1@06:00 or last@06:00",
        ),
        (
            {"cron": "61 6 * * *"},
            "cron '61 6 * * *' is not a valid crontab expression (Error validating expression "
            "'61': the last value (61) is higher than the maximum value (59)); expected 5 "
            "fields: minute hour day-of-month month weekday, such as '30 6 * * mon-fri'",
        ),
        (
            {"cron": "@daily"},
            "cron '@daily' is not a valid crontab expression (Wrong number of fields; got 1, "
            "expected 5); expected 5 fields: minute hour day-of-month month weekday, such as "
            "'30 6 * * mon-fri'",
        ),
        (
            {"cron": "0 6 * * 5-1"},
            "cron '0 6 * * 5-1' has the weekday range '5-1' backwards; write it low-high",
        ),
        (
            {"cron": "0 6 * * mon-fri/2"},
            "cron '0 6 * * mon-fri/2' gives the weekday as 'mon-fri/2'; use crontab numbers (0 "
            "or 7 is Sunday, 1 Monday), ranges such as 1-5, steps such as */2, or day names",
        ),
        (
            {"cron": "0 6 * jan-jun/2 *"},
            "cron '0 6 * jan-jun/2 *' has 'jan-jun/2' in the month field, which APScheduler 3 "
            "would misread; use three-letter names or name ranges without steps, such as "
            "jan-mar or mon,wed,fri",
        ),
        (
            {"cron": "0 6 1 * mon"},
            "cron '0 6 1 * mon' restricts both day of month and weekday; crontab runs when "
            "either matches but APScheduler 3 only when both do, so restrict just one of them",
        ),
        (
            {"cron": "0 0 30 2 *"},
            "cron '0 0 30 2 *' never runs, because no month has that day; choose days that "
            "exist in the chosen months",
        ),
        (
            {},
            "a schedule needs one of every, daily, weekly, monthly or cron; none was given",
        ),
        (
            {"every": "5m", "daily": "06:00"},
            "a schedule takes exactly one of every, daily, weekly, monthly or cron; got every "
            "and daily",
        ),
        (
            {"every": "5m", "business_days": True},
            "every '5m' cannot be limited to business days; business days apply to daily, "
            "weekly, monthly and cron schedules",
        ),
        (
            {"weekly": "sat,sun@10:00", "business_days": True},
            "weekly 'sat,sun@10:00' never runs on business days; include a day from mon to fri "
            "or drop business days",
        ),
        (
            {"daily": "06:00", "timezone": "Mars/Olympus_Mons"},
            "time zone 'Mars/Olympus_Mons' is unknown; expected an IANA name such as "
            "Europe/Warsaw or UTC",
        ),
        (
            {"daily": "06:00", "timezone": ""},
            "time zone '' is unknown; expected an IANA name such as Europe/Warsaw or UTC",
        ),
        (
            {"daily": "06:00", "anchor": ANCHOR},
            "an anchor applies only to every schedules, not to daily '06:00'",
        ),
        (
            {"every": "5m", "anchor": datetime(2026, 1, 1)},
            "anchor 2026-01-01T00:00:00 has no time zone; expected an aware UTC instant",
        ),
    ],
)
def test_bad_input_is_refused_with_a_one_line_message(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        parse_schedule(**arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, DomainError)


def test_several_kinds_are_all_named_in_the_refusal() -> None:
    with pytest.raises(InvalidScheduleError, match=r"got weekly and monthly and cron$"):
        parse_schedule(weekly="mon@07:00", monthly="1@06:00", cron="0 6 * * *")


def test_business_days_and_other_zones_are_accepted_for_wall_clock_kinds() -> None:
    schedule = parse_schedule(weekly="sat,mon@07:00", business_days=True, timezone="UTC")
    assert schedule.business_days is True
    assert schedule.timezone == "UTC"
    assert schedule.expression == "mon,sat@07:00"
    assert parse_schedule(cron="0 6 * * *", business_days=True).business_days is True
    assert parse_schedule(monthly="last@06:00", timezone="America/New_York").anchor is None


def test_every_without_anchor_counts_from_now_in_whole_seconds() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    schedule = parse_schedule(every="5m")
    after = datetime.now(UTC)
    assert schedule.anchor is not None
    assert before <= schedule.anchor <= after
    assert schedule.anchor.microsecond == 0
    assert schedule.anchor.tzinfo is UTC


def test_an_anchor_in_another_zone_is_stored_in_utc() -> None:
    anchor = datetime(2026, 6, 1, 8, 0, tzinfo=WARSAW)
    schedule = parse_schedule(every="1h", anchor=anchor)
    assert schedule.anchor == anchor
    assert schedule.anchor is not None and schedule.anchor.tzinfo is UTC
    assert schedule.anchor.hour == 6


def test_direct_construction_is_checked_and_normalised_too() -> None:
    assert Schedule("daily", "6:30").expression == "06:30"
    with pytest.raises(InvalidScheduleError, match="needs an anchor"):
        Schedule("every", "5m")
    with pytest.raises(InvalidScheduleError, match="schedule kind 'yearly' is unknown"):
        Schedule("yearly", "1@06:00")  # type: ignore[arg-type]


# Storage and description


@pytest.mark.parametrize(
    "schedule",
    [
        parse_schedule(every="5m", anchor=datetime(2026, 6, 1, 12, 0, 7, 250, tzinfo=UTC)),
        parse_schedule(daily="06:30", business_days=True),
        parse_schedule(weekly="mon,thu@07:00", timezone="America/New_York"),
        parse_schedule(monthly="last@06:00", timezone="Australia/Sydney"),
        parse_schedule(cron="*/15 2 * * *", timezone="UTC", business_days=True),
    ],
    ids=lambda schedule: schedule.kind,
)
def test_to_dict_holds_only_primitives_and_round_trips(schedule: Schedule) -> None:
    stored = schedule.to_dict()
    assert set(stored) == {"kind", "expression", "timezone", "business_days", "anchor"}
    assert all(value is None or type(value) in (str, bool) for value in stored.values())
    assert Schedule.from_dict(stored) == schedule
    assert Schedule.from_dict(stored).to_dict() == stored


def test_to_dict_writes_the_anchor_as_an_iso_string() -> None:
    schedule = parse_schedule(every="2h", anchor=utc(2026, 6, 1, 12))
    assert schedule.to_dict() == {
        "kind": "every",
        "expression": "2h",
        "timezone": "Europe/Warsaw",
        "business_days": False,
        "anchor": "2026-06-01T12:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "daily"}, "a stored schedule lacks expression, timezone"),
        (
            {"kind": "hourly", "expression": "5", "timezone": "UTC"},
            "schedule kind 'hourly' is unknown",
        ),
        ({"kind": "daily", "expression": 630, "timezone": "UTC"}, "daily 630 is not a time"),
        (
            {"kind": "daily", "expression": "06:30", "timezone": "UTC", "business_days": "yes"},
            "business days 'yes' is not true or false",
        ),
        (
            {"kind": "every", "expression": "5m", "timezone": "UTC", "anchor": "yesterday"},
            "anchor 'yesterday' is not an ISO 8601 instant",
        ),
        (
            {"kind": "every", "expression": "5m", "timezone": "UTC", "anchor": "2026-01-01T00:00"},
            "anchor 2026-01-01T00:00:00 has no time zone",
        ),
    ],
)
def test_from_dict_refuses_malformed_data(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=f"^{message}"):
        Schedule.from_dict(data)


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (parse_schedule(every="5m", anchor=ANCHOR), "every 5m"),
        (parse_schedule(daily="06:30"), "daily at 06:30 (Europe/Warsaw)"),
        (
            parse_schedule(daily="06:30", business_days=True),
            "daily at 06:30 on business days (Europe/Warsaw)",
        ),
        (parse_schedule(weekly="thu,mon@07:00"), "weekly on mon, thu at 07:00 (Europe/Warsaw)"),
        (parse_schedule(monthly="1@06:00", timezone="UTC"), "monthly on day 1 at 06:00 (UTC)"),
        (
            parse_schedule(monthly="last@06:00"),
            "monthly on the last day at 06:00 (Europe/Warsaw)",
        ),
        (
            parse_schedule(cron="*/15 2 * * *", business_days=True),
            "cron '*/15 2 * * *' on business days (Europe/Warsaw)",
        ),
    ],
)
def test_describe_gives_a_short_human_text(schedule: Schedule, text: str) -> None:
    assert schedule.describe() == text


# Occurrences on ordinary days


def test_every_counts_from_the_anchor_in_absolute_time() -> None:
    schedule = parse_schedule(every="5m", anchor=utc(2026, 6, 1, 12, 2))
    found = occurrences(schedule, utc(2026, 6, 1, 12, 7), utc(2026, 6, 1, 12, 27))
    # Check that the bound ``after`` is exclusive and ``until`` inclusive.
    assert found == [utc(2026, 6, 1, 12, minute) for minute in (12, 17, 22, 27)]
    assert all(instant.tzinfo is UTC for instant in found)


def test_every_starts_at_the_anchor_and_never_before_it() -> None:
    schedule = parse_schedule(every="2h", anchor=utc(2026, 6, 1, 12))
    assert occurrences(schedule, utc(2026, 6, 1), utc(2026, 6, 1, 16)) == [
        utc(2026, 6, 1, 12), utc(2026, 6, 1, 14), utc(2026, 6, 1, 16),
    ]
    assert next_occurrence(schedule, utc(2020, 1, 1)) == utc(2026, 6, 1, 12)


def test_every_in_seconds_and_the_longest_interval() -> None:
    seconds = parse_schedule(every="30s", anchor=utc(2026, 6, 1))
    assert occurrences(seconds, utc(2026, 6, 1), utc(2026, 6, 1, 0, 2)) == [
        utc(2026, 6, 1) + timedelta(seconds=30 * k) for k in range(1, 5)
    ]
    month = parse_schedule(every="744h", anchor=utc(2026, 1, 1))
    assert next_occurrence(month, utc(2026, 1, 1)) == utc(2026, 2, 1)


def test_daily_runs_at_the_local_time_in_summer_and_winter() -> None:
    schedule = parse_schedule(daily="06:30")
    assert occurrences(schedule, utc(2026, 6, 10), utc(2026, 6, 12, 12)) == [
        utc(2026, 6, 10, 4, 30), utc(2026, 6, 11, 4, 30), utc(2026, 6, 12, 4, 30),
    ]
    assert occurrences(schedule, utc(2026, 1, 10), utc(2026, 1, 11, 12)) == [
        utc(2026, 1, 10, 5, 30), utc(2026, 1, 11, 5, 30),
    ]


def test_daily_in_another_zone() -> None:
    schedule = parse_schedule(daily="06:30", timezone="America/New_York")
    assert next_occurrence(schedule, utc(2026, 6, 10)) == utc(2026, 6, 10, 10, 30)


def test_weekly_runs_on_the_named_days() -> None:
    schedule = parse_schedule(weekly="thu,mon@07:00")
    found = occurrences(schedule, utc(2026, 6, 1), utc(2026, 6, 15))
    assert local_texts(found) == [
        "2026-06-01 Mon 07:00", "2026-06-04 Thu 07:00", "2026-06-08 Mon 07:00",
        "2026-06-11 Thu 07:00",
    ]
    # 2026-06-15 07:00 CEST is 05:00Z, after ``until``.


def test_monthly_on_a_day_of_the_month() -> None:
    schedule = parse_schedule(monthly="1@06:00")
    found = occurrences(schedule, utc(2026, 1, 1), utc(2026, 5, 31))
    assert local_texts(found) == [
        "2026-01-01 Thu 06:00", "2026-02-01 Sun 06:00", "2026-03-01 Sun 06:00",
        "2026-04-01 Wed 06:00", "2026-05-01 Fri 06:00",
    ]
    # 06:00 CET is 05:00Z, 06:00 CEST is 04:00Z.
    assert found[0] == utc(2026, 1, 1, 5)
    assert found[-1] == utc(2026, 5, 1, 4)


def test_monthly_last_day_follows_the_month_length() -> None:
    schedule = parse_schedule(monthly="last@06:00")
    found = occurrences(schedule, utc(2027, 12, 1), utc(2028, 4, 30, 12))
    assert [instant.astimezone(WARSAW).date() for instant in found] == [
        date(2027, 12, 31), date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31),
        date(2028, 4, 30),
    ]


def test_monthly_31_skips_the_months_without_a_31st() -> None:
    schedule = parse_schedule(monthly="31@06:00")
    found = occurrences(schedule, utc(2026, 1, 1), utc(2026, 12, 31, 23))
    assert [instant.astimezone(WARSAW).month for instant in found] == [1, 3, 5, 7, 8, 10, 12]


def test_monthly_30_skips_february() -> None:
    schedule = parse_schedule(monthly="30@06:00")
    found = occurrences(schedule, utc(2026, 1, 1), utc(2026, 4, 1))
    assert [instant.astimezone(WARSAW).date() for instant in found] == [
        date(2026, 1, 30), date(2026, 3, 30),
    ]


def test_cron_is_read_as_crontab_with_day_names() -> None:
    schedule = parse_schedule(cron="0 6 * * mon-fri")
    found = occurrences(schedule, utc(2026, 6, 5), utc(2026, 6, 9, 12))
    assert local_texts(found) == [
        "2026-06-05 Fri 06:00", "2026-06-08 Mon 06:00", "2026-06-09 Tue 06:00",
    ]


def test_cron_steps_lists_and_month_names() -> None:
    schedule = parse_schedule(cron="0,30 */12 1 jan,jul *", timezone="UTC")
    found = occurrences(schedule, utc(2026, 1, 1), utc(2026, 12, 31))
    assert found == [
        utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 30),
        utc(2026, 7, 1), utc(2026, 7, 1, 0, 30), utc(2026, 7, 1, 12), utc(2026, 7, 1, 12, 30),
    ]


def test_cron_last_day_of_month() -> None:
    schedule = parse_schedule(cron="0 18 last * *", timezone="UTC")
    assert next_occurrence(schedule, utc(2026, 2, 1)) == utc(2026, 2, 28, 18)


def test_limit_empty_windows_and_bounds() -> None:
    schedule = parse_schedule(daily="06:00", timezone="UTC")
    assert occurrences(schedule, utc(2026, 6, 1), utc(2026, 6, 30), limit=2) == [
        utc(2026, 6, 1, 6), utc(2026, 6, 2, 6),
    ]
    assert occurrences(schedule, utc(2026, 6, 1), utc(2026, 6, 30), limit=0) == []
    assert occurrences(schedule, utc(2026, 6, 30), utc(2026, 6, 1)) == []
    assert occurrences(schedule, utc(2026, 6, 1, 6), utc(2026, 6, 1, 6)) == []
    # Check that ``after`` is exclusive and ``until`` inclusive.
    assert occurrences(schedule, utc(2026, 6, 1, 6), utc(2026, 6, 2, 6)) == [utc(2026, 6, 2, 6)]
    just_before = utc(2026, 6, 1, 6) - timedelta(microseconds=1)
    assert next_occurrence(schedule, just_before) == utc(2026, 6, 1, 6)


def test_bounds_in_another_zone_are_the_same_instants() -> None:
    schedule = parse_schedule(daily="06:00")
    after = datetime(2026, 6, 1, 5, 59, tzinfo=WARSAW)
    until = datetime(2026, 6, 1, 6, 0, tzinfo=WARSAW)
    assert occurrences(schedule, after, until) == [utc(2026, 6, 1, 4)]


def test_naive_bounds_and_negative_limit_are_programming_errors() -> None:
    schedule = parse_schedule(daily="06:00")
    with pytest.raises(ValueError, match="after must be an aware datetime"):
        occurrences(schedule, datetime(2026, 1, 1), utc(2026, 2, 1))
    with pytest.raises(ValueError, match="until must be an aware datetime"):
        occurrences(schedule, utc(2026, 1, 1), datetime(2026, 2, 1))
    with pytest.raises(ValueError, match="limit must not be negative"):
        occurrences(schedule, utc(2026, 1, 1), utc(2026, 2, 1), limit=-1)
    with pytest.raises(ValueError, match="after must be an aware datetime"):
        next_occurrence(schedule, datetime(2026, 1, 1))


# Business days


def test_the_holidays_package_knows_polish_christmas_eve_from_2025() -> None:
    poland = holidays.country_holidays("PL")
    assert date(2024, 12, 24) not in poland
    assert poland.get(date(2025, 12, 24)) == "Christmas Eve"
    assert poland.get(date(2026, 12, 24)) == "Christmas Eve"
    assert poland.get(date(2026, 11, 11)) == "National Independence Day"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 10), True),  # Tuesday
        (date(2026, 11, 11), False),  # Independence Day, a Wednesday
        (date(2026, 11, 14), False),  # Saturday
        (date(2026, 11, 15), False),  # Sunday
        (date(2026, 12, 24), False),  # Christmas Eve, a Thursday
        (date(2024, 12, 24), True),  # Christmas Eve 2024 was a working Tuesday
        (date(2026, 4, 6), False),  # Easter Monday
        (date(2026, 6, 4), False),  # Corpus Christi
    ],
)
def test_business_day(day: date, expected: bool) -> None:
    assert is_business_day(day) is expected


def test_daily_on_business_days_skips_weekends_and_independence_day() -> None:
    schedule = parse_schedule(daily="06:00", business_days=True)
    found = occurrences(
        schedule, local_day_start(date(2026, 11, 9)), local_day_start(date(2026, 11, 17))
    )
    assert local_texts(found) == [
        "2026-11-09 Mon 06:00", "2026-11-10 Tue 06:00", "2026-11-12 Thu 06:00",
        "2026-11-13 Fri 06:00", "2026-11-16 Mon 06:00",
    ]


def test_daily_on_business_days_skips_christmas_eve_and_christmas() -> None:
    schedule = parse_schedule(daily="06:00", business_days=True)
    found = occurrences(
        schedule, local_day_start(date(2026, 12, 22)), local_day_start(date(2027, 1, 8))
    )
    assert local_texts(found) == [
        "2026-12-22 Tue 06:00", "2026-12-23 Wed 06:00", "2026-12-28 Mon 06:00",
        "2026-12-29 Tue 06:00", "2026-12-30 Wed 06:00", "2026-12-31 Thu 06:00",
        "2027-01-04 Mon 06:00", "2027-01-05 Tue 06:00", "2027-01-07 Thu 06:00",
    ]
    # 2027-01-01 is New Year's Day and 2027-01-06 Epiphany.


def test_without_business_days_holidays_run() -> None:
    schedule = parse_schedule(daily="06:00")
    assert next_occurrence(schedule, local_day_start(date(2026, 12, 24))) == utc(2026, 12, 24, 5)


def test_business_days_use_the_local_date_not_the_utc_date() -> None:
    # 00:30 in Warsaw on Monday 2026-11-16 is still Sunday in UTC.
    schedule = parse_schedule(daily="00:30", business_days=True)
    assert next_occurrence(schedule, utc(2026, 11, 14)) == utc(2026, 11, 15, 23, 30)


def test_weekly_monthly_and_cron_on_business_days() -> None:
    weekly = parse_schedule(weekly="wed,sat@07:00", business_days=True)
    found = occurrences(
        weekly, local_day_start(date(2026, 11, 9)), local_day_start(date(2026, 11, 23))
    )
    assert local_texts(found) == ["2026-11-18 Wed 07:00"]
    monthly = parse_schedule(monthly="1@06:00", business_days=True)
    found = occurrences(monthly, utc(2026, 10, 1), utc(2027, 3, 31))
    # Check that 1 November (Sunday, All Saints) and 1 January (New Year) are left out.
    assert local_texts(found) == [
        "2026-10-01 Thu 06:00", "2026-12-01 Tue 06:00", "2027-02-01 Mon 06:00",
        "2027-03-01 Mon 06:00",
    ]
    cron = parse_schedule(cron="0 8,16 24-28 12 *", business_days=True)
    found = occurrences(cron, utc(2026, 12, 1), utc(2026, 12, 31))
    assert local_texts(found) == ["2026-12-28 Mon 08:00", "2026-12-28 Mon 16:00"]


def test_next_occurrence_is_none_when_nothing_runs_within_the_horizon() -> None:
    schedule = parse_schedule(cron="0 6 25 12 *", business_days=True)
    assert next_occurrence(schedule, utc(2026, 1, 1)) is None
    weekend = parse_schedule(cron="0 6 * * sat,sun", business_days=True)
    assert next_occurrence(weekend, utc(2026, 1, 1)) is None


# Speed


def test_ten_thousand_next_occurrences_are_fast() -> None:
    zones = ["Europe/Warsaw", "America/New_York", "UTC", "Australia/Sydney"]
    schedules: list[Schedule] = []
    for index in range(10_000):
        zone = zones[index % 4]
        time_of_day = f"{index % 24:02d}:{index % 60:02d}"
        business = index % 3 == 0
        match index % 5:
            case 0:
                schedules.append(parse_schedule(every=f"{index % 600 + 1}m", anchor=ANCHOR))
            case 1:
                schedules.append(
                    parse_schedule(daily=time_of_day, timezone=zone, business_days=business)
                )
            case 2:
                schedules.append(
                    parse_schedule(weekly=f"mon,thu@{time_of_day}", timezone=zone)
                )
            case 3:
                schedules.append(parse_schedule(monthly=f"last@{time_of_day}", timezone=zone))
            case _:
                schedules.append(
                    parse_schedule(cron="*/15 2 * * *", timezone=zone, business_days=business)
                )
    now = utc(2026, 10, 25, 0, 45)
    started = time.perf_counter()
    found = [next_occurrence(schedule, now) for schedule in schedules]
    elapsed = time.perf_counter() - started
    assert all(instant is not None and instant > now for instant in found)
    # About 0.3 s on a 2-core machine once the triggers are built; generous for CI.
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("weekdays", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sat,sun"),
        ("*/2", "tue,thu,sat,sun"),
        ("1-5/2", "mon,wed,fri"),
        ("mon-fri", "mon-fri"),
    ],
)
def test_crontab_weekday_numbers_mean_what_crontab_means(weekdays: str, names: str) -> None:
    schedule = parse_schedule(cron=f"0 6 * * {weekdays}")
    assert schedule.expression == f"0 6 * * {names}"


def test_the_issue_example_runs_monday_to_friday_at_six_warsaw_time() -> None:
    schedule = parse_schedule(cron="0 6 * * 1-5")
    start = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday
    found = occurrences(schedule, start, start + timedelta(days=7))
    assert [moment.astimezone(WARSAW).strftime("%a %H:%M") for moment in found] == [
        "Mon 06:00", "Tue 06:00", "Wed 06:00", "Thu 06:00", "Fri 06:00",
    ]
