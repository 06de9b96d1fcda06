from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from engine.adapters.soa_store import memory_soa_store
from engine.domain.task_definition import (
    RetryPolicy,
    TaskDefinition,
    TaskDefinitionError,
    TaskRemovedError,
)
from engine.scheduling import Schedule

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SCHEDULE = Schedule(kind="daily", expression="06:30", timezone="Europe/Warsaw")


def define(**overrides: object) -> TaskDefinition:
    settings: dict[str, object] = {
        "company_id": uuid4(), "company": "Firma A", "kind": "sync_hrm", "name": "HRM nightly",
        "schedule": SCHEDULE, "catch_up": "latest", "retry": RetryPolicy(3, 30.0),
        "timeout_seconds": 600.0, "params": {"full": False}, "at": NOW,
    }
    settings.update(overrides)
    return TaskDefinition.define(**settings)  # type: ignore[arg-type]


def test_definition_round_trips_through_the_store() -> None:
    store = memory_soa_store()
    task = define()
    store.save(task)
    loaded = store.repository.get(task.id)
    assert (loaded.kind, loaded.schedule, loaded.params) == ("sync_hrm", SCHEDULE, {"full": False})
    assert loaded.retry == RetryPolicy(3, 30.0) and loaded.is_active
    assert loaded.schedule_from == NOW


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"catch_up": "some"}, "allowed are all, latest and skip"),
        ({"name": "  "}, "1 to 200 printable"),
        ({"timeout_seconds": 0.0}, "more than 0 s"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(TaskDefinitionError, match=fragment):
        define(**overrides)


@pytest.mark.parametrize(("attempts", "backoff"), [(0, 30.0), (101, 30.0), (3, 0.0), (3, 1e6)])
def test_retry_policy_bounds(attempts: int, backoff: float) -> None:
    with pytest.raises(TaskDefinitionError):
        RetryPolicy(attempts, backoff)


def test_backoff_grows_exponentially_with_jitter() -> None:
    policy = RetryPolicy(5, 10.0)
    rng = random.Random(7)
    delays = [policy.delay_before(attempt, rng) for attempt in (2, 3, 4, 5)]
    for attempt, delay in zip((2, 3, 4, 5), delays, strict=True):
        base = 10.0 * 2 ** (attempt - 2)
        assert 0.5 * base <= delay <= 1.5 * base


def test_schedule_change_moves_schedule_from_but_resume_does_not() -> None:
    task = define()
    created = task.schedule_from
    task.pause()
    task.resume()
    assert task.schedule_from == created
    later = NOW + timedelta(hours=1)
    assert task.edit(catch_up="all", at=later) is True
    assert task.schedule_from == created
    assert task.edit(catch_up="all", at=later) is False
    task.edit(schedule=Schedule(kind="daily", expression="07:00"), at=later)
    assert task.schedule_from == later
    task.disable()
    assert not task.is_active
    task.enable(NOW + timedelta(hours=2))
    assert task.schedule_from == NOW + timedelta(hours=2)
    names = [type(event).__name__ for event in task.collect_events()]
    assert names == ["Defined", "Paused", "Resumed", "Edited", "Edited", "Disabled", "Enabled"]


def test_removed_task_refuses_changes() -> None:
    task = define()
    task.remove()
    assert not task.is_active
    for command in (task.pause, lambda: task.enable(NOW), lambda: task.edit(name="x", at=NOW),
                    task.remove):
        with pytest.raises(TaskRemovedError):
            command()
