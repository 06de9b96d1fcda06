"""The catch-up rules as a pure function: live, on time, missed, and the policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.domain.task_definition import MISSED_COUNT_LIMIT
from engine.scheduling import DuePlan, parse_schedule, plan_due

ANCHOR = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
EVERY_10S = parse_schedule(every="10s", anchor=ANCHOR)
EVERY_2M = parse_schedule(every="2m", anchor=ANCHOR)


def at(seconds: float) -> datetime:
    return ANCHOR + timedelta(seconds=seconds)


def plan(policy: str, *, after: float, now: float, live_from: float, cap: int = 100,
         schedule: object = EVERY_10S) -> DuePlan:
    return plan_due(schedule, policy=policy, after=at(after), now=at(now),  # type: ignore[arg-type]
                    live_from=at(live_from), max_catch_up=cap)


@pytest.mark.parametrize("policy", ["all", "latest", "skip"])
def test_a_late_timer_of_a_live_host_runs_every_occurrence_whatever_the_policy(
    policy: str,
) -> None:
    # Up since 0, cursor at 0; the timer of +10 s fires 11 s late, at +21 s.
    assert plan(policy, after=0, now=21, live_from=0) == DuePlan(runs=(at(10), at(20)))
    # Hours late (machine busy, the loop still ticking): still every one, no limit.
    late = plan(policy, after=0, now=3600 * 5, live_from=0, cap=2)
    assert late.runs == tuple(at(10 * k) for k in range(1, 1801)) and late.missed == 0


@pytest.mark.parametrize(
    ("policy", "runs"),
    [("all", (60, 70, 80, 90, 100)), ("latest", (100,)), ("skip", (100,))],
)
def test_at_a_start_the_latest_recent_occurrence_is_on_time_and_the_rest_follow_the_policy(
    policy: str, runs: tuple[int, ...]
) -> None:
    # Down from 0 to 105: ten occurrences; the last (100) is 5 s old, so on time.
    due = plan(policy, after=0, now=105, live_from=105, cap=4)
    assert due.runs == tuple(at(seconds) for seconds in runs)
    assert due.missed == 9
    assert due.replayed == len(runs) - 1
    assert due.bounded == (policy == "all")
    assert due.missed_through == at(100) - timedelta(microseconds=1)


@pytest.mark.parametrize(("policy", "runs"), [("all", 3), ("latest", 1), ("skip", 0)])
def test_with_nothing_on_time_every_due_occurrence_is_missed(policy: str, runs: int) -> None:
    # Down from 0 to 15 min 1 s, every 2 min: the last occurrence (14 min) is 61 s old.
    due = plan(policy, after=0, now=901, live_from=901, cap=3, schedule=EVERY_2M)
    assert due.missed == 7 and len(due.runs) == runs and due.replayed == runs
    assert due.runs == tuple(at(120 * k) for k in range(1, 8))[7 - runs:]
    assert due.missed_through == at(901)


def test_missed_occurrences_before_live_ones_are_not_replayed_by_latest() -> None:
    # Down until 100 (missed 10..90, 100 on time), live since 100: 110 and 120 run.
    due = plan("latest", after=0, now=125, live_from=100)
    assert due.runs == (at(100), at(110), at(120))
    assert (due.missed, due.replayed) == (9, 0)
    due = plan("all", after=0, now=125, live_from=100, cap=2)
    assert due.runs == (at(80), at(90), at(100), at(110), at(120)) and due.bounded


def test_nothing_due_and_nothing_new() -> None:
    assert plan("all", after=20, now=20, live_from=0) == DuePlan(runs=())
    assert plan("all", after=20, now=25, live_from=0) == DuePlan(runs=())
    assert plan("latest", after=10, now=19, live_from=30) == DuePlan(runs=())


def test_a_very_long_downtime_counts_up_to_the_limit_and_stays_cheap() -> None:
    years = 3600 * 24 * 400  # far more than MISSED_COUNT_LIMIT occurrences every 10 s
    due = plan("all", after=0, now=years + 5, live_from=years + 5, cap=3)
    assert due.missed == MISSED_COUNT_LIMIT + 1
    assert due.runs == (at(years - 30), at(years - 20), at(years - 10), at(years))
    assert due.bounded


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan("all", after=0, now=100, live_from=0, cap=0)


def test_the_latest_occurrence_is_on_time_only_while_younger_than_sixty_seconds() -> None:
    # Down from 0, every 2 min; the last occurrence (240) is just under, then exactly,
    # 60 s old.
    young = plan("skip", after=0, now=299.999, live_from=400, schedule=EVERY_2M)
    assert young.runs == (at(240),) and young.missed == 1
    aged = plan("skip", after=0, now=300, live_from=400, schedule=EVERY_2M)
    assert aged.runs == () and aged.missed == 2


@pytest.mark.parametrize(("cap", "bounded"), [(9, False), (8, True)])
def test_the_limit_is_reported_only_when_it_cut_a_missed_occurrence(
    cap: int, bounded: bool
) -> None:
    # Down from 0 to 105: nine missed (10..90), 100 on time.
    due = plan("all", after=0, now=105, live_from=105, cap=cap)
    assert due.missed == 9 and due.replayed == cap and due.bounded is bounded


def test_all_replays_the_missed_occurrences_oldest_first_then_the_on_time_one() -> None:
    due = plan("all", after=0, now=45, live_from=45)
    assert due.runs == (at(10), at(20), at(30), at(40))
    assert (due.missed, due.replayed, due.bounded) == (3, 3, False)
