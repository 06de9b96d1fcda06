"""The schedule value object: when an automatic operation runs.

Five kinds, each with its own expression (stored normalised):

* ``every``: an interval in absolute time, ``30s``, ``5m`` or ``2h`` (1 s to 31 days),
  counted from ``anchor``; the runs are ``anchor + k * interval`` for k = 0, 1, 2, ...
* ``daily``: a wall-clock time, ``06:30``.
* ``weekly``: day names and a time, ``mon,thu@07:00``.
* ``monthly``: a day of the month or ``last`` and a time, ``1@06:00`` or ``last@06:00``;
  a month that lacks the day (31 in April, 30 in February) has no run that month.
* ``cron``: a standard 5-field crontab string, ``*/15 2 * * *``, checked by APScheduler's
  ``CronTrigger.from_crontab``.

The wall-clock kinds (all but ``every``) are read in ``timezone`` and may be limited to
business days; how they behave when the clocks change is defined in
:mod:`engine.scheduling.arithmetic`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.domain.errors import DomainError

ScheduleKind = Literal["every", "daily", "weekly", "monthly", "cron"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = get_args(ScheduleKind)
WALL_CLOCK_KINDS: frozenset[ScheduleKind] = frozenset({"daily", "weekly", "monthly", "cron"})

DEFAULT_TIMEZONE = "Europe/Warsaw"
MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(days=31)
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BUSINESS_WEEKDAY_NAMES = frozenset(WEEKDAY_NAMES[:5])

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+)\s*([smh])")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")
_DAY_OF_MONTH = re.compile(r"\d{1,2}|last")
_CRON_NAME_TOKEN = re.compile(r"[a-z]{3}(?:-[a-z]{3})?")
_CRON_FIELD_NAMES = ("minute", "hour", "day of month", "month", "weekday")
_CRON_EXAMPLE = "such as '30 6 * * mon-fri'"
# A cron that matches some date matches one within 8 years (29 February); search 2000-2399.
_CRON_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)


class InvalidScheduleError(DomainError):
    """Signals a schedule that cannot be parsed or is not allowed."""


@dataclass(frozen=True)
class Schedule:
    """When an operation runs; valid by construction (``__post_init__`` checks and normalises).

    ``anchor`` is an aware UTC instant, required for ``every`` (the instant the interval
    counts from) and refused for the other kinds. ``business_days`` keeps only runs on a
    Monday to Friday that is not a Polish public holiday, local date in ``timezone``.
    """

    kind: ScheduleKind
    expression: str
    timezone: str = DEFAULT_TIMEZONE
    business_days: bool = False
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        _as_kind(self.kind)
        if not isinstance(self.expression, str):
            raise InvalidScheduleError(_not_a_form(self.kind, self.expression))
        object.__setattr__(self, "expression", _NORMALISERS[self.kind](self.expression))
        _check_timezone(self.timezone)
        if not isinstance(self.business_days, bool):
            raise InvalidScheduleError(
                f"business days {self.business_days!r} is not true or false"
            )
        if self.kind == "every":
            self._check_interval_rules()
        else:
            self._check_wall_clock_rules()

    def _check_interval_rules(self) -> None:
        if self.business_days:
            raise InvalidScheduleError(
                f"every {self.expression!r} cannot be limited to business days; business days "
                "apply to daily, weekly, monthly and cron schedules"
            )
        if self.anchor is None:
            raise InvalidScheduleError(
                f"every {self.expression!r} needs an anchor, the instant the interval counts from"
            )
        object.__setattr__(self, "anchor", _aware_utc(self.anchor))

    def _check_wall_clock_rules(self) -> None:
        if self.anchor is not None:
            raise InvalidScheduleError(
                f"an anchor applies only to every schedules, not to {self.kind} "
                f"{self.expression!r}"
            )
        if self.kind == "weekly" and self.business_days:
            days = set(self.expression.split("@")[0].split(","))
            if not days & BUSINESS_WEEKDAY_NAMES:
                raise InvalidScheduleError(
                    f"weekly {self.expression!r} never runs on business days; include a day "
                    "from mon to fri or drop business days"
                )

    def interval(self) -> timedelta:
        """The interval of an ``every`` schedule.

        :raises ValueError: for the other kinds.
        """
        if self.kind != "every":
            raise ValueError(f"a {self.kind} schedule has no interval")
        return timedelta(seconds=int(self.expression[:-1]) * _UNIT_SECONDS[self.expression[-1]])

    def wall_clock_fields(self) -> dict[str, str]:
        """See :func:`wall_clock_fields`."""
        return wall_clock_fields(self.kind, self.expression)

    def describe(self) -> str:
        """A short human text, e.g. ``every 5m`` or
        ``daily at 06:30 on business days (Europe/Warsaw)``."""
        if self.kind == "every":
            return f"every {self.expression}"
        prefix, _, time_of_day = self.expression.rpartition("@")
        if self.kind == "daily":
            text = f"daily at {self.expression}"
        elif self.kind == "weekly":
            text = f"weekly on {prefix.replace(',', ', ')} at {time_of_day}"
        elif self.kind == "monthly":
            day = "the last day" if prefix == "last" else f"day {prefix}"
            text = f"monthly on {day} at {time_of_day}"
        else:
            text = f"cron '{self.expression}'"
        if self.business_days:
            text += " on business days"
        return f"{text} ({self.timezone})"

    def to_dict(self) -> dict[str, str | bool | None]:
        """The schedule as primitives (the anchor as an ISO 8601 string), fit for an event."""
        return {
            "kind": self.kind,
            "expression": self.expression,
            "timezone": self.timezone,
            "business_days": self.business_days,
            "anchor": None if self.anchor is None else self.anchor.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Schedule:
        """The schedule that :meth:`to_dict` gave, checked again.

        :raises InvalidScheduleError: when a key is missing or a value is malformed.
        """
        missing = [key for key in ("kind", "expression", "timezone") if key not in data]
        if missing:
            raise InvalidScheduleError(
                f"a stored schedule lacks {', '.join(missing)}; expected kind, expression, "
                "timezone, business_days and anchor"
            )
        kind, expression, timezone = data["kind"], data["expression"], data["timezone"]
        known_kind = _as_kind(kind)
        if not isinstance(expression, str):
            raise InvalidScheduleError(_not_a_form(known_kind, expression))
        if not isinstance(timezone, str):
            raise InvalidScheduleError(
                f"time zone {timezone!r} is not text; expected an IANA name such as Europe/Warsaw"
            )
        business_days = data.get("business_days", False)
        if not isinstance(business_days, bool):
            raise InvalidScheduleError(f"business days {business_days!r} is not true or false")
        return cls(
            kind=known_kind,
            expression=expression,
            timezone=timezone,
            business_days=business_days,
            anchor=_anchor_from_text(data.get("anchor")),
        )


def parse_schedule(
    *,
    every: str | None = None,
    daily: str | None = None,
    weekly: str | None = None,
    monthly: str | None = None,
    cron: str | None = None,
    business_days: bool = False,
    timezone: str = DEFAULT_TIMEZONE,
    anchor: datetime | None = None,
) -> Schedule:
    """The schedule a user wrote; exactly one of ``every``, ``daily``, ``weekly``,
    ``monthly`` and ``cron`` must be given.

    Formats: every ``30s``/``5m``/``2h`` (1 s to 31 days); daily ``HH:MM`` (24-hour);
    weekly ``mon,thu@07:00`` (names mon..sun, each once); monthly ``1@06:00`` or
    ``last@06:00`` (day 1..31; a month without that day, e.g. 31 in April, is skipped);
    cron a standard 5-field crontab string. An ``every`` schedule without ``anchor``
    counts from now (UTC, whole seconds).

    :raises InvalidScheduleError: with a one-line message saying what is wrong and what is
        allowed.
    """
    given: dict[ScheduleKind, str | None] = {
        "every": every,
        "daily": daily,
        "weekly": weekly,
        "monthly": monthly,
        "cron": cron,
    }
    chosen = [kind for kind, value in given.items() if value is not None]
    if not chosen:
        raise InvalidScheduleError(
            f"a schedule needs one of {_kind_list()}; none was given"
        )
    if len(chosen) > 1:
        raise InvalidScheduleError(
            f"a schedule takes exactly one of {_kind_list()}; got {' and '.join(chosen)}"
        )
    kind = chosen[0]
    if kind == "every" and anchor is None:
        anchor = datetime.now(UTC).replace(microsecond=0)
    return Schedule(
        kind=kind,
        expression=given[kind] or "",
        timezone=timezone,
        business_days=business_days,
        anchor=anchor,
    )


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as a user gives it (CLI options, API fields): at most one rule (``every``,
    ``daily``, ``weekly``, ``monthly`` or ``cron``), and optionally the business-days limit
    and the time zone. :meth:`new` makes the schedule of a new task; :meth:`applied_to`
    changes an existing one."""

    every: str | None = None
    daily: str | None = None
    weekly: str | None = None
    monthly: str | None = None
    cron: str | None = None
    business_days: bool | None = None
    timezone: str | None = None

    @property
    def has_rule(self) -> bool:
        return any(rule is not None for rule in self._rules().values())

    @property
    def is_empty(self) -> bool:
        return not self.has_rule and self.business_days is None and self.timezone is None

    def _rules(self) -> dict[str, str | None]:
        return {"every": self.every, "daily": self.daily, "weekly": self.weekly,
                "monthly": self.monthly, "cron": self.cron}

    def new(self, *, now: datetime) -> Schedule:
        """The schedule of a new task: an ``every`` rule counts from ``now`` (whole
        seconds), the zone defaults to Europe/Warsaw, every day unless limited.

        :raises InvalidScheduleError: as :func:`parse_schedule`.
        """
        return parse_schedule(
            **self._rules(), business_days=bool(self.business_days),
            timezone=self.timezone or DEFAULT_TIMEZONE,
            anchor=now.replace(microsecond=0) if self.every is not None else None,
        )

    def applied_to(self, current: Schedule, *, now: datetime) -> Schedule | None:
        """``current`` changed by this spec, or None when the spec changes nothing.

        A new rule keeps the current zone and, unless it is ``every``, the current
        business-days limit; a spec without a rule changes only the zone or the limit.

        :raises InvalidScheduleError: if the result is not a valid schedule.
        """
        if self.has_rule:
            business_days = self.business_days
            if business_days is None:
                business_days = current.business_days and self.every is None
            return parse_schedule(
                **self._rules(), business_days=business_days,
                timezone=self.timezone or current.timezone,
                anchor=now.replace(microsecond=0) if self.every is not None else None,
            )
        if self.is_empty:
            return None
        return Schedule(
            kind=current.kind, expression=current.expression,
            timezone=self.timezone or current.timezone,
            business_days=current.business_days if self.business_days is None
            else self.business_days,
            anchor=current.anchor,
        )


def wall_clock_fields(kind: ScheduleKind, expression: str) -> dict[str, str]:
    """The cron fields (``day``, ``day_of_week``, ``hour``, ``minute``, ``second``) of a
    normalised daily, weekly or monthly expression, in local wall-clock time, named as
    APScheduler's CronTrigger names them.

    :raises ValueError: for ``every`` and ``cron`` (a cron's fields are its expression).
    """
    if kind not in ("daily", "weekly", "monthly"):
        raise ValueError(f"a {kind} schedule has no daily, weekly or monthly fields")
    prefix, _, time_of_day = expression.rpartition("@")
    hour, minute = time_of_day.split(":")
    fields = {"hour": str(int(hour)), "minute": str(int(minute)), "second": "0"}
    if kind == "weekly":
        fields["day_of_week"] = prefix
    elif kind == "monthly":
        fields["day"] = prefix
    return fields


def _normalise_every(text: str) -> str:
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidScheduleError(_not_a_form("every", text))
    number, unit = int(match.group(1)), match.group(2)
    length = number * _UNIT_SECONDS[unit]
    if length < MIN_INTERVAL.total_seconds():
        raise InvalidScheduleError(f"every {text!r} is too short; the shortest allowed is 1s")
    if length > MAX_INTERVAL.total_seconds():
        raise InvalidScheduleError(
            f"every {text!r} is too long; the longest allowed is 31 days (744h)"
        )
    return f"{number}{unit}"


def _normalise_time_of_day(text: str) -> str | None:
    match = _TIME_OF_DAY.fullmatch(text.strip())
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _normalise_daily(text: str) -> str:
    normalised = _normalise_time_of_day(text)
    if normalised is None:
        raise InvalidScheduleError(_not_a_form("daily", text))
    return normalised


def _split_at(kind: ScheduleKind, text: str) -> tuple[str, str]:
    """The part before ``@`` (lower case, no spaces) and the normalised time after it."""
    prefix, at, time_text = text.partition("@")
    if not at or "@" in time_text:
        raise InvalidScheduleError(_not_a_form(kind, text))
    time_of_day = _normalise_time_of_day(time_text)
    if time_of_day is None:
        raise InvalidScheduleError(
            f"{kind} {text!r} has no valid time after @; expected HH:MM in 24-hour form, "
            "such as 07:00"
        )
    return "".join(prefix.split()).lower(), time_of_day


def _normalise_weekly(text: str) -> str:
    days_text, time_of_day = _split_at("weekly", text)
    names = days_text.split(",")
    for name in names:
        if name not in WEEKDAY_NAMES:
            raise InvalidScheduleError(
                f"weekly {text!r} has an unknown day {name!r}; allowed are "
                f"{', '.join(WEEKDAY_NAMES)}, comma-separated"
            )
        if names.count(name) > 1:
            raise InvalidScheduleError(f"weekly {text!r} names {name} twice; name each day once")
    ordered = [name for name in WEEKDAY_NAMES if name in names]
    return f"{','.join(ordered)}@{time_of_day}"


def _normalise_monthly(text: str) -> str:
    day_text, time_of_day = _split_at("monthly", text)
    if _DAY_OF_MONTH.fullmatch(day_text) is None or (
        day_text != "last" and not 1 <= int(day_text) <= 31
    ):
        raise InvalidScheduleError(
            f"monthly {text!r} has no valid day before @; allowed are 1 to 31 or last, "
            "such as 1@06:00 or last@06:00"
        )
    day = day_text if day_text == "last" else str(int(day_text))
    return f"{day}@{time_of_day}"


@functools.lru_cache(maxsize=4096)
def _normalise_cron(text: str) -> str:
    """Whitespace-normalised, lower-case crontab text that APScheduler 3 reads as crontab does.

    Weekday numbers are crontab's (0 or 7 is Sunday) and are rewritten as day names,
    because APScheduler 3 counts Monday as 0. Beyond ``CronTrigger.from_crontab`` it
    refuses what APScheduler 3 reads differently from crontab: a step after a name range
    (ignored), both day fields restricted (it requires both, crontab either), and dates
    that never occur.
    """
    normalised = " ".join(text.split()).lower()
    fields = normalised.split(" ")
    if len(fields) == len(_CRON_FIELD_NAMES):
        fields[4] = _crontab_weekdays_as_names(text, fields[4])
        normalised = " ".join(fields)
    # Imported here: reading the store's views (``soa status``) needs no cron parser.
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    try:
        trigger = CronTrigger.from_crontab(normalised, timezone=UTC)
    except ValueError as error:
        raise InvalidScheduleError(
            f"cron {text!r} is not a valid crontab expression ({error}); expected 5 fields: "
            f"minute hour day-of-month month weekday, {_CRON_EXAMPLE}"
        ) from None
    fields = normalised.split(" ")
    for field_name, field in zip(_CRON_FIELD_NAMES, fields, strict=True):
        for token in field.split(","):
            _check_cron_token(text, field_name, token)
    day_of_month, weekday = fields[2], fields[4]
    if day_of_month != "*" and weekday != "*":
        raise InvalidScheduleError(
            f"cron {text!r} restricts both day of month and weekday; crontab runs when either "
            "matches but APScheduler 3 only when both do, so restrict just one of them"
        )
    if trigger.get_next_fire_time(None, _CRON_PROBE_START) is None:
        raise InvalidScheduleError(
            f"cron {text!r} never runs, because no month has that day; choose days that exist "
            "in the chosen months"
        )
    return normalised


_CRONTAB_WEEKDAY_NUMBER = re.compile(r"^(\*|[0-7](?:-[0-7])?)(?:/([1-9]\d*))?$")
_DAY_NAMES_FROM_SUNDAY = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays_as_names(text: str, field: str) -> str:
    """Crontab's weekday field with numbers (0 or 7 = sun) written as day names.

    A field without digits is returned as it is.
    """
    if not any(character.isdigit() for character in field):
        return field
    days: set[int] = set()
    for token in field.split(","):
        match = _CRONTAB_WEEKDAY_NUMBER.fullmatch(token)
        if match is None:
            raise InvalidScheduleError(
                f"cron {text!r} gives the weekday as {token!r}; use crontab numbers (0 or 7 "
                "is Sunday, 1 Monday), ranges such as 1-5, steps such as */2, or day names"
            )
        base, step = match[1], int(match[2] or 1)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (int(part) for part in base.split("-"))
        else:
            first = int(base)
            last = 7 if match[2] else first
        if first > last:
            raise InvalidScheduleError(
                f"cron {text!r} has the weekday range {token!r} backwards; write it low-high"
            )
        days.update(day % 7 for day in range(first, last + 1, step))
    week_order = [1, 2, 3, 4, 5, 6, 0]
    return ",".join(_DAY_NAMES_FROM_SUNDAY[day] for day in week_order if day in days)


def _check_cron_token(text: str, field_name: str, token: str) -> None:
    if not any(character.isalpha() for character in token):
        return
    if field_name == "day of month" and token == "last":
        return
    if field_name in ("month", "weekday") and _CRON_NAME_TOKEN.fullmatch(token):
        return
    raise InvalidScheduleError(
        f"cron {text!r} has {token!r} in the {field_name} field, which APScheduler 3 would "
        "misread; use three-letter names or name ranges without steps, such as jan-mar or "
        "mon,wed,fri"
    )


_NORMALISERS: dict[ScheduleKind, Callable[[str], str]] = {
    "every": _normalise_every,
    "daily": _normalise_daily,
    "weekly": _normalise_weekly,
    "monthly": _normalise_monthly,
    "cron": _normalise_cron,
}

_FORMS: dict[ScheduleKind, tuple[str, str]] = {
    "every": ("a duration", "a number with s, m or h, such as 30s, 5m or 2h"),
    "daily": ("a time of day", "HH:MM in 24-hour form, such as 06:30 or 18:00"),
    "weekly": ("days@time", "day names and a time, such as mon,thu@07:00"),
    "monthly": ("day@time", "a day 1 to 31 or last and a time, such as 1@06:00 or last@06:00"),
    "cron": ("a crontab expression", f"5 fields, {_CRON_EXAMPLE}"),
}


def _not_a_form(kind: ScheduleKind, text: object) -> str:
    what, expected = _FORMS[kind]
    return f"{kind} {text!r} is not {what}; expected {expected}"


def _kind_list() -> str:
    return ", ".join(SCHEDULE_KINDS[:-1]) + f" or {SCHEDULE_KINDS[-1]}"


def _as_kind(kind: object) -> ScheduleKind:
    for known in SCHEDULE_KINDS:
        if kind == known:
            return known
    raise InvalidScheduleError(f"schedule kind {kind!r} is unknown; allowed are {_kind_list()}")


def _check_timezone(name: object) -> None:
    message = f"time zone {name!r} is unknown; expected an IANA name such as Europe/Warsaw or UTC"
    if not isinstance(name, str) or not name:
        raise InvalidScheduleError(message)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleError(message) from None


def _aware_utc(anchor: object) -> datetime:
    if not isinstance(anchor, datetime):
        raise InvalidScheduleError(
            f"anchor {anchor!r} is not a date and time; expected an aware UTC instant"
        )
    if anchor.utcoffset() is None:
        raise InvalidScheduleError(
            f"anchor {anchor.isoformat()} has no time zone; expected an aware UTC instant"
        )
    return anchor.astimezone(UTC)


def _anchor_from_text(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidScheduleError(
            f"anchor {value!r} is not an ISO 8601 text; expected such as 2026-01-01T00:00:00+00:00"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidScheduleError(
            f"anchor {value!r} is not an ISO 8601 instant; expected such as "
            "2026-01-01T00:00:00+00:00"
        ) from None
