"""Feeding projections from the notification log, each event exactly once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    column,
    delete,
    func,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError

from engine.adapters.schema import projection_positions

BATCH_SIZE = 1000

NumberedEvent = tuple[int, Any]
"""A domain event with its notification id (its position in the event log)."""


class NotificationLog(Protocol):
    """Where the events come from, in the order they were recorded."""

    def events_after(self, position: int, *, limit: int, stop: int) -> list[NumberedEvent]:
        """Up to ``limit`` events after ``position`` and at most at ``stop``."""


class Projection(ABC):
    """A read model in SQL tables, derived from domain events."""

    name: str
    tables: tuple[Table, ...]

    @abstractmethod
    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        """Apply consecutive events in the runner's transaction; skip those it does not know."""

    def reset(self, connection: Connection) -> None:
        """Delete the rows of the projection, before a rebuild."""
        for projection_table in self.tables:
            connection.execute(delete(projection_table))


class ProjectionRunner:
    """Pulls notifications after each projection's position and applies them.

    Safe to call from several processes at once: a batch is applied to a projection
    only by the transaction that moves its position from the value it read
    (compare-and-set), in the same transaction as the projection's rows. When no
    projection is behind, a catch-up costs one query and never opens the event store.
    """

    def __init__(
        self,
        engine: Engine,
        log: NotificationLog,
        projections: Callable[[], Sequence[Projection]],
        *,
        names: Collection[str],
        events_table: str,
    ) -> None:
        """``projections`` builds the projections named ``names``; it is called only when
        one of them must apply or reset rows, so a catch-up that finds nothing to do
        never imports the projections (nor the domain events they match)."""
        self._engine = engine
        self._log = log
        self._build = projections
        self._built: list[Projection] | None = None
        self.names = tuple(sorted(names))
        self._head_query: Select[tuple[Any]] = select(func.max(column("id"))).select_from(
            table(events_table)
        )

    @property
    def projections(self) -> list[Projection]:
        """The projections, sorted by name, built on first use."""
        if self._built is None:
            built = sorted(self._build(), key=lambda projection: projection.name)
            if tuple(projection.name for projection in built) != self.names:
                raise ValueError(
                    f"the projections built are {[p.name for p in built]}, "
                    f"not the names given {list(self.names)}"
                )
            self._built = built
        return self._built

    def _add_missing_positions(self, names: set[str]) -> None:
        """Start the projections without a position row at 0, emptied."""
        for projection in self.projections:
            if projection.name in names:
                continue
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        insert(projection_positions).values(name=projection.name, position=0)
                    )
                    projection.reset(connection)
            except IntegrityError:
                pass  # another process inserted it at the same time

    def position(self, name: str) -> int:
        return self._positions_and_head()[0][name]

    def lag(self) -> int:
        """How many events the furthest-behind projection has yet to apply."""
        positions, head = self._positions_and_head()
        return max((head - position for position in positions.values()), default=head)

    def _positions_and_head(self) -> tuple[dict[str, int], int]:
        """Every projection's position and the last notification id, on one connection."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(projection_positions.c.name, projection_positions.c.position)
            ).all()
            head = connection.execute(self._head_query).scalar()
        positions = {row.name: int(row.position) for row in rows}
        if any(name not in positions for name in self.names):
            self._add_missing_positions(set(positions))
            return self._positions_and_head()
        return positions, int(head or 0)

    def catch_up(self) -> int:
        """Apply every event recorded before the call to every projection.

        Events recorded meanwhile may be applied too, or left to the next call: a
        call ends even while other threads or processes keep recording.
        Returns how many (event, projection) applications this call made.
        """
        applied = 0
        target: int | None = None
        while True:
            positions, head = self._positions_and_head()
            if target is None:
                target = head
            behind = [name for name in self.names if positions[name] < target]
            if not behind:
                return applied
            start = min(positions[name] for name in behind)
            group = [p for p in self.projections if positions[p.name] == start]
            events = self._log.events_after(start, limit=BATCH_SIZE, stop=target)
            if not events:
                return applied
            with self._engine.begin() as connection:
                for projection in group:
                    if self._move(connection, projection.name, start, events[-1][0]):
                        projection.apply(connection, events)
                        applied += len(events)

    @staticmethod
    def _move(connection: Connection, name: str, expected: int, new: int) -> bool:
        moved = connection.execute(
            update(projection_positions)
            .where(projection_positions.c.name == name)
            .where(projection_positions.c.position == expected)
            .values(position=new)
        ).rowcount
        return bool(moved == 1)

    def rebuild(self) -> int:
        """Empty every projection and apply the whole event log again."""
        self._positions_and_head()  # every projection has its position row
        with self._engine.begin() as connection:
            for projection in self.projections:
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == projection.name)
                    .values(position=0)
                )
                projection.reset(connection)
        return self.catch_up()
