"""Projections rebuilt in a scratch SQLite database: the live projection code applied
to tables of the same names in a file of their own (:class:`ScratchModels`), filled from
the event log by :func:`replay`. The live tables are never touched, and the same
read-model code (:class:`SqlReadModels`) reads the result.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.pool import NullPool

from engine.adapters.schema import projection_positions
from engine.projections.read_models import SqlReadModels, all_projections
from engine.projections.runner import NotificationLog, NumberedEvent, Projection

REPLAY_BATCH = 10_000
"""Events read and applied per transaction of the scratch database."""
STUB_EVENTS_TABLE = "soa_events"
"""An empty table of that name in the scratch database: the scratch read models' own
catch-up finds nothing to apply."""

Progress = Callable[[int, int], None]
"""Told ``(position reached, last position)`` as a replay goes."""


class ScratchModels:
    """The projections' tables, and their read models, in a scratch SQLite database:
    a file in a temporary directory (deleted by :meth:`close`) or the new file ``path``
    (kept).

    The file is written without a journal or syncs: it is rebuilt, never repaired.
    """

    def __init__(self, path: Path | None = None, *,
                 projections: Sequence[Projection] | None = None) -> None:
        self._directory: Path | None = None
        if path is None:
            self._directory = Path(tempfile.mkdtemp(prefix="soa-replay-"))
            path = self._directory / "replay.db"
        elif path.exists():
            raise FileExistsError(f"{path} exists; the rebuilt tables go to a new file")
        self.path = path
        self.engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool)
        event.listen(self.engine, "connect", _fast_writes)
        self.projections = list(projections if projections is not None else all_projections())
        self.positions = {projection.name: 0 for projection in self.projections}
        self.applied = 0
        """How many events were applied (to one projection or more)."""
        metadata = MetaData()
        for projection in self.projections:
            for projection_table in projection.tables:
                projection_table.to_metadata(metadata)
        projection_positions.to_metadata(metadata)
        Table(STUB_EVENTS_TABLE, metadata, Column("id", BigInteger, primary_key=True))
        metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            for projection in self.projections:
                projection.reset(connection)
                connection.execute(
                    insert(projection_positions).values(name=projection.name, position=0)
                )
        self.read_models = SqlReadModels(self.engine, _NoEvents(), events_table=STUB_EVENTS_TABLE)

    def rows(self) -> dict[str, int]:
        """How many rows each projection table has."""
        with self.engine.connect() as connection:
            return {
                projection_table.name: int(connection.execute(
                    select(func.count()).select_from(projection_table)).scalar_one())
                for projection in self.projections for projection_table in projection.tables
            }

    @property
    def position(self) -> int:
        """The notification id every projection has reached."""
        return min(self.positions.values(), default=0)

    def apply(self, events: Sequence[NumberedEvent], *, through: int,
              targets: Mapping[str, int]) -> None:
        """Apply ``events`` (in order, some of those read up to notification
        ``through``) to each projection, up to its target position, in one transaction."""
        with self.engine.begin() as connection:
            for projection in self.projections:
                target = targets[projection.name]
                position = self.positions[projection.name]
                if target <= position:
                    chosen: Sequence[NumberedEvent] = ()
                elif events and position < events[0][0] and events[-1][0] <= target:
                    chosen = events
                else:
                    chosen = [numbered for numbered in events
                              if position < numbered[0] <= target]
                if chosen:
                    projection.apply(connection, chosen)
                new = self.positions[projection.name] = max(position, min(target, through))
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == projection.name)
                    .values(position=new)
                )

    def take(self, path: Path, positions: Mapping[str, int]) -> None:
        """Take the tables of the projections at ``positions`` from the scratch file at
        ``path`` (rebuilt by :func:`_rebuild_part`), in place of those here."""
        taken = [projection for projection in self.projections if projection.name in positions]
        with self.engine.connect() as connection:
            connection.exec_driver_sql("ATTACH DATABASE ? AS part", (str(path),))
            for projection in taken:
                for projection_table in projection.tables:
                    columns = ", ".join(f'"{column.name}"' for column in projection_table.columns)
                    connection.exec_driver_sql(f"DELETE FROM main.{projection_table.name}")
                    connection.exec_driver_sql(
                        f"INSERT INTO main.{projection_table.name} ({columns}) "
                        f"SELECT {columns} FROM part.{projection_table.name}"
                    )
                self.positions[projection.name] = positions[projection.name]
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == projection.name)
                    .values(position=positions[projection.name])
                )
            connection.commit()
            connection.exec_driver_sql("DETACH DATABASE part")

    def close(self) -> None:
        self.engine.dispose()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> ScratchModels:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _fast_writes(dbapi_connection: Any, _: Any) -> None:
    """No journal, no syncs, and a page cache of 64 MiB (the indexes of a million
    events' runs outgrow SQLite's default 2 MiB)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=OFF")
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


class _NoEvents:
    """The notification log of the scratch read models: they never catch up."""

    def events_after(self, position: int, *, limit: int, stop: int) -> list[NumberedEvent]:
        return []


def replay(
    log: NotificationLog, scratch: ScratchModels, *, stop: int | Mapping[str, int],
    until: datetime | None = None, progress: Progress | None = None,
) -> int:
    """Apply the events after the scratch projections' positions, up to ``stop`` (for
    every projection, or per projection name), leaving out those that happened after
    ``until``; return how many events were applied.

    Events are read and applied :data:`REPLAY_BATCH` at a time.
    """
    targets = stop if isinstance(stop, Mapping) else dict.fromkeys(scratch.positions, stop)
    last = max(targets.values(), default=0)
    with collector_paused():
        return _replay(log, scratch, targets, last, until, progress)


def _replay(log: NotificationLog, scratch: ScratchModels, targets: Mapping[str, int],
            last: int, until: datetime | None, progress: Progress | None) -> int:
    position = scratch.position
    applied = 0
    while position < last:
        events = log.events_after(position, limit=REPLAY_BATCH, stop=last)
        if not events:
            break
        chosen = events if until is None else [
            numbered for numbered in events if numbered[1].timestamp <= until
        ]
        position = events[-1][0]
        scratch.apply(chosen, through=position, targets=targets)
        scratch.applied += len(chosen)
        applied += len(chosen)
        if progress is not None:
            progress(position, last)
    return applied


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading many events: a replay allocates
    millions of short-lived objects and makes no cycles, and the collections they would
    trigger cost a tenth of its time or more."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
