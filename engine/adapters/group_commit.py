"""Group commit: saves from many threads share one transaction when they coincide.

A commit costs far more than the rows it writes, so when several threads save at
the same moment (timers firing together, attempts starting and finishing), one of
them writes everything queued in one transaction while the others wait for it.
Each submission keeps its own guarantee: its events are recorded together or not
at all, and a conflict (another writer got there first) refuses that submission
alone, never its neighbours.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.ports.store import EventStore, GroupCommit, PendingSave, WriteConflictError


@dataclass(eq=False)
class Submission(PendingSave):
    """Events to record together, and what became of them."""

    committer: GroupCommitter
    events: list[Any]
    done: bool = False
    saved: bool = False
    error: BaseException | None = None

    def wait(self) -> bool:
        return self.committer.wait(self)


class GroupCommitter(GroupCommit):
    """Saves aggregates like :meth:`EventStore.save`, batching concurrent calls.

    Leader and followers: the caller that finds no write in progress writes every
    submission queued so far in one transaction; the callers that arrive meanwhile
    queue theirs and are written by the next leader, or wait for the current one.
    No thread of its own, so nothing to start or stop.
    """

    def __init__(self, store: EventStore, *, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[Submission] = []
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.transactions = 0
        """How many transactions the committer has written (for measurements)."""

    def save(self, *aggregates: Any) -> bool:
        """Record the pending events of ``aggregates`` in one transaction.

        Returns False when a conflict refused them (another writer changed one of the
        aggregates first): nothing of them is recorded and the objects are stale.
        Any other failure of the store is raised, and nothing of them is recorded.
        """
        return self.wait(self.submit(*aggregates))

    def submit(self, *aggregates: Any) -> Submission:
        """Queue the pending events of ``aggregates`` without writing them yet: the next
        write by any thread takes them along. :meth:`wait` tells the outcome."""
        submission = Submission(
            self, [event for aggregate in aggregates for event in aggregate.collect_events()]
        )
        if submission.events:
            with self._queue_lock:
                self._queue.append(submission)
        return submission

    def wait(self, submission: Submission) -> bool:
        """Write ``submission`` (with what else is queued) unless a write took it along
        already; then return or raise as :meth:`save` does."""
        return self._wait([submission])[0]

    def save_each(self, aggregates: Sequence[Any]) -> list[bool]:
        """Record each aggregate's pending events on its own terms, as :meth:`save` would,
        in as few transactions as conflicts allow; one result per aggregate, in order."""
        return self._wait([self.submit(aggregate) for aggregate in aggregates])

    def _wait(self, submissions: list[Submission]) -> list[bool]:
        for submission in submissions:
            while submission.events and not submission.done:
                with self._write_lock:
                    if not submission.done:
                        self._write_queued()
        for submission in submissions:
            if submission.error is not None:
                raise submission.error
        return [submission.saved or not submission.events for submission in submissions]

    def _write_queued(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        if not batch:
            return
        if len(batch) > 1:
            try:
                self._write([event for submission in batch for event in submission.events])
            except Exception:
                pass
            else:
                self._finish(batch, saved=True)
                return
        for submission in batch:
            try:
                self._write(submission.events)
            except WriteConflictError:
                self._finish([submission], saved=False)
            except Exception as error:
                submission.error = error
                self._finish([submission], saved=False)
            else:
                self._finish([submission], saved=True)

    def _write(self, events: list[Any]) -> None:
        self.store.save(*events)
        self.transactions += 1

    @staticmethod
    def _finish(batch: list[Submission], *, saved: bool) -> None:
        for submission in batch:
            submission.saved = saved
            submission.done = True
