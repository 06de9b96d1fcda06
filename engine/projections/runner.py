"""Feeding projections from the notification log, each event exactly once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper
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
    (compare-and-set), in the same transaction as the projection's rows.
    """

    def __init__(
        self,
        engine: Engine,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        projections: list[Projection],
        *,
        events_table: str,
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self._mapper = mapper
        self.projections = sorted(projections, key=lambda projection: projection.name)
        self._head_query: Select[tuple[Any]] = select(func.max(column("id"))).select_from(
            table(events_table)
        )
        self._ensure_positions()

    def _ensure_positions(self) -> None:
        for projection in self.projections:
            try:
                with self._engine.begin() as connection:
                    exists = connection.execute(
                        select(projection_positions.c.position).where(
                            projection_positions.c.name == projection.name
                        )
                    ).first()
                    if exists is None:
                        connection.execute(
                            insert(projection_positions).values(name=projection.name, position=0)
                        )
                        projection.reset(connection)
            except IntegrityError:
                pass  # another process inserted it at the same time

    def position(self, name: str) -> int:
        return self._positions_and_head()[0][name]

    def _positions_and_head(self) -> tuple[dict[str, int], int]:
        """Every projection's position and the last notification id, on one connection."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(projection_positions.c.name, projection_positions.c.position)
            ).all()
            head = connection.execute(self._head_query).scalar()
        return {row.name: int(row.position) for row in rows}, int(head or 0)

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
            behind = [p for p in self.projections if positions[p.name] < target]
            if not behind:
                return applied
            start = min(positions[p.name] for p in behind)
            group = [p for p in behind if positions[p.name] == start]
            notifications = self._recorder.select_notifications(
                start=start, limit=BATCH_SIZE, stop=target, inclusive_of_start=False
            )
            if not notifications:
                return applied
            events = [(n.id, self._mapper.to_domain_event(n)) for n in notifications]
            with self._engine.begin() as connection:
                for projection in group:
                    if self._move(connection, projection.name, start, notifications[-1].id):
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
        with self._engine.begin() as connection:
            for projection in self.projections:
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == projection.name)
                    .values(position=0)
                )
                projection.reset(connection)
        return self.catch_up()
