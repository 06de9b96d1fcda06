from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from engine.adapters.soa_store import memory_soa_store
from engine.domain.task_run import TaskRun, TaskRunError, run_id_for

AT = datetime(2026, 11, 28, 5, 30, tzinfo=UTC)


def new_run(max_attempts: int = 3, task_id: object = None) -> TaskRun:
    return TaskRun(
        task_id=task_id or uuid4(), company="Firma A", kind="sync_hrm", scheduled_for=AT,
        manual=False, max_attempts=max_attempts,
    )


def test_one_occurrence_can_never_be_recorded_twice() -> None:
    store = memory_soa_store()
    task_id = uuid4()
    store.save(new_run(task_id=task_id))
    # Check: the id derives from (task, instant), the same in any zone.
    warsaw = AT.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Warsaw"))
    assert run_id_for(task_id, warsaw) == run_id_for(task_id, AT)
    with pytest.raises(IntegrityError):
        store.save(new_run(task_id=task_id))
    assert run_id_for(task_id, AT + timedelta(microseconds=1)) != run_id_for(task_id, AT)


def test_success_on_the_second_attempt() -> None:
    run = new_run()
    session = uuid4()
    assert run.start("BIURO", 10, session) == 1
    run.fail_attempt("ConnectionError", "refused", 0.5, False, AT + timedelta(seconds=30))
    assert (run.status, run.due_at) == ("retrying", AT + timedelta(seconds=30))
    assert run.start("BIURO", 10, session) == 2
    run.succeed({"invoices": 3}, 1.25)
    assert run.status == "succeeded" and run.is_final
    with pytest.raises(TaskRunError, match="is succeeded"):
        run.start("BIURO", 10, session)


def test_last_failed_attempt_fails_the_run() -> None:
    run = new_run(max_attempts=1)
    run.start("BIURO", 10, uuid4())
    run.fail_attempt("TimeoutError", "timed out after 600 s", 600.0, True, AT)
    names = [type(event).__name__ for event in run.collect_events()]
    assert names == ["Scheduled", "Started", "AttemptFailed", "Failed"]
    assert run.status == "failed"


def test_abandoned_attempt_is_retried_while_attempts_remain() -> None:
    run = new_run(max_attempts=2)
    run.start("BIURO", 10, uuid4())
    run.abandon("host process 10 died", AT + timedelta(seconds=5))
    assert run.status == "retrying"
    run.start("KASA", 11, uuid4())
    run.abandon("host process 11 died", AT + timedelta(seconds=9))
    assert run.status == "abandoned" and run.attempt == 2


def test_skip_only_before_it_runs() -> None:
    run = new_run()
    run.skip("catch-up policy latest", "BIURO")
    assert run.status == "skipped"
    other = new_run()
    other.start("BIURO", 1, uuid4())
    with pytest.raises(TaskRunError):
        other.skip("too late", "BIURO")
