"""Group commit: concurrent saves share transactions; a conflict refuses only its own."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from engine.adapters.event_store import EventsourcingStore
from engine.adapters.group_commit import GroupCommitter
from engine.adapters.soa_store import SoaStore, memory_soa_store
from engine.domain.task_run import TaskRun
from engine.ports.store import EventStore

AT = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
TASK = uuid4()


def new_run(minutes: int) -> TaskRun:
    return TaskRun(task_id=TASK, company="Firma A", kind="probe",
                   scheduled_for=AT + timedelta(minutes=minutes), manual=False, max_attempts=1)


class SlowStore(EventsourcingStore):
    """A store whose writes take a while: saves arriving meanwhile must queue."""

    def __init__(self, store: SoaStore, seconds: float) -> None:
        super().__init__(lambda: store)
        self.seconds = seconds
        self.writes: list[int] = []

    def save(self, *events: Any) -> None:
        time.sleep(self.seconds)
        self.writes.append(len(events))
        super().save(*events)


def port(store: SoaStore) -> EventStore:
    return EventsourcingStore(lambda: store)


def test_concurrent_saves_are_all_recorded_in_fewer_transactions() -> None:
    store = memory_soa_store()
    slow = SlowStore(store, 0.02)
    committer = GroupCommitter(slow)
    runs = [new_run(minutes) for minutes in range(40)]
    results: list[bool] = []
    barrier = threading.Barrier(len(runs))

    def save(run: TaskRun) -> None:
        barrier.wait()
        results.append(committer.save(run))

    threads = [threading.Thread(target=save, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * len(runs)
    assert sum(slow.writes) == len(runs)
    assert committer.transactions == len(slow.writes) < len(runs)
    for run in runs:
        assert isinstance(store.repository.get(run.id), TaskRun)


def test_a_conflict_refuses_only_the_submission_that_caused_it() -> None:
    store = memory_soa_store()
    committer = GroupCommitter(port(store))
    first = new_run(0)
    assert committer.save(first)
    again = new_run(0)  # the same occurrence recorded a second time: the same id
    fresh = new_run(1)
    started: object = store.repository.get(first.id)
    assert isinstance(started, TaskRun)
    started.start("BIURO", 1, uuid4())
    assert committer.save_each([again, fresh, started]) == [False, True, True]
    assert store.repository.get(fresh.id).version == 1
    assert store.repository.get(first.id).status == "running"
    assert committer.save_each([]) == []
