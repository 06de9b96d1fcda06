"""Replays of the event log for the audit use cases (:class:`SqlReplays`, the
application layer's ``Replays``): rebuilds into scratch databases, in two processes
when they are big, comparisons with the live tables, and the events in order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from engine.adapters.sql import store_errors
from engine.projections.comparison import Difference, compare_with_live
from engine.projections.read_models import all_projections
from engine.projections.runner import NotificationLog, NumberedEvent
from engine.projections.scratch import (
    REPLAY_BATCH,
    Progress,
    ScratchModels,
    collector_paused,
    replay,
)

PARALLEL_FROM = 200_000
"""A rebuild of at least this many events shares its projections with a second process
(where :class:`SqlReplays` can open one)."""
SECOND_PROCESS = ("companies", "log_list", "service_view", "tasks")
"""The projections a second process rebuilds: together about as costly as the run list."""


class EventLog(NotificationLog, Protocol):
    """The notification log, and where it ends."""

    def max_position(self) -> int:
        """The last notification id (0 for an empty log)."""


class SqlReplays:
    """Replays of the event log into :class:`ScratchModels` (the application layer's
    ``Replays``), compared with the live tables of ``live``.

    With ``open_log`` (a picklable function that opens another reader of the same log),
    a rebuild of at least ``parallel_from`` events on a machine of several cores runs in
    two processes: this one rebuilds the run list, a second one (started for it) the
    other projections into a file of its own, which this one then copies in.
    """

    def __init__(self, live: Engine, log: EventLog, *,
                 open_log: Callable[[], EventLog] | None = None,
                 parallel_from: int = PARALLEL_FROM) -> None:
        self._live = live
        self._log = log
        self._open_log = open_log
        self._parallel_from = parallel_from

    def head(self) -> int:
        return self._log.max_position()

    @contextmanager
    def rebuild(self, *, stop: int, until: datetime | None = None, output: Path | None = None,
                progress: Progress | None = None) -> Iterator[ScratchModels]:
        with store_errors():
            scratch = ScratchModels(output)
        try:
            with store_errors():
                if (self._open_log is not None and stop >= self._parallel_from
                        and (os.cpu_count() or 1) > 1):
                    self._rebuild_in_two(scratch, stop, until, progress)
                else:
                    replay(self._log, scratch, stop=stop, until=until, progress=progress)
            yield scratch
        finally:
            scratch.close()

    def _rebuild_in_two(self, scratch: ScratchModels, stop: int, until: datetime | None,
                        progress: Progress | None) -> None:
        assert self._open_log is not None
        part = scratch.path.with_name(f"{scratch.path.stem}-part.db")
        context = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as second:
                done = second.submit(_rebuild_part, self._open_log, part, SECOND_PROCESS, stop,
                                     until)
                here = {name: 0 if name in SECOND_PROCESS else stop for name in scratch.positions}
                replay(self._log, scratch, stop=here, until=until, progress=progress)
                applied = scratch.applied
                try:
                    positions: dict[str, int] | None = done.result()
                except BrokenProcessPool:  # the second process could not run: do it here
                    positions = None
            if positions is None:
                replay(self._log, scratch, stop=stop, until=until)
                scratch.applied = applied
            else:
                scratch.take(part, positions)
        finally:
            part.unlink(missing_ok=True)

    @contextmanager
    def project(self, events: Sequence[Any]) -> Iterator[ScratchModels]:
        numbered = list(enumerate(events, start=1))
        with store_errors():
            scratch = ScratchModels()
        try:
            with store_errors():
                scratch.apply(numbered, through=len(numbered),
                              targets=dict.fromkeys(scratch.positions, len(numbered)))
            scratch.applied = len(numbered)
            yield scratch
        finally:
            scratch.close()

    def compare(self, replayed: Any, *, log_cutoff: Callable[[int], datetime]
                ) -> tuple[dict[str, int], list[Difference]]:
        assert isinstance(replayed, ScratchModels)
        return compare_with_live(self._live, self._log, replayed, log_cutoff=log_cutoff)

    def events(self, *, stop: int, progress: Progress | None = None
               ) -> Iterator[NumberedEvent]:
        position = 0
        with collector_paused():
            while position < stop:
                events = self._log.events_after(position, limit=REPLAY_BATCH, stop=stop)
                if not events:
                    return
                yield from events
                position = events[-1][0]
                if progress is not None:
                    progress(position, stop)


def _rebuild_part(open_log: Callable[[], EventLog], path: Path, names: Collection[str],
                  stop: int, until: datetime | None) -> dict[str, int]:
    """In a second process: rebuild the projections ``names`` into the file ``path``;
    return their positions."""
    log = open_log()
    projections = [projection for projection in all_projections() if projection.name in names]
    scratch = ScratchModels(path, projections=projections)
    try:
        replay(log, scratch, stop=stop, until=until)
        return dict(scratch.positions)
    finally:
        scratch.close()
