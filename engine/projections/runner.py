"""Feeding projections from the notification log, each event exactly once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.adapters.schema import projection_positions

BATCH_SIZE = 500


class Projection(ABC):
    """A read model in SQL tables, derived from domain events."""

    name: str
    tables: tuple[Table, ...]

    @abstractmethod
    def apply(self, connection: Connection, event: Any, notification_id: int) -> None:
        """Apply one event in the runner's transaction; ignore events it does not know."""

    def reset(self, connection: Connection) -> None:
        """Delete the rows of the projection, before a rebuild."""
        for table in self.tables:
            connection.execute(delete(table))


class ProjectionRunner:
    """Pulls notifications after each projection's position and applies them.

    Safe to call from several processes at once: a batch is applied only by the
    transaction that moves the position from the value it read.
    """

    def __init__(
        self,
        engine: Engine,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        projections: list[Projection],
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self._mapper = mapper
        self.projections = projections
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
        with self._engine.connect() as connection:
            value = connection.execute(
                select(projection_positions.c.position).where(projection_positions.c.name == name)
            ).scalar_one()
        return int(value)

    def catch_up(self) -> int:
        """Apply every event recorded so far to every projection; return how many were applied."""
        return sum(self._catch_up(projection) for projection in self.projections)

    def _catch_up(self, projection: Projection) -> int:
        applied = 0
        while True:
            position = self.position(projection.name)
            notifications = self._recorder.select_notifications(
                start=position, limit=BATCH_SIZE, inclusive_of_start=False
            )
            if not notifications:
                return applied
            last = notifications[-1].id
            with self._engine.begin() as connection:
                moved = connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == projection.name)
                    .where(projection_positions.c.position == position)
                    .values(position=last)
                ).rowcount
                if moved != 1:
                    continue  # another process applied this batch; read the new position
                for notification in notifications:
                    event = self._mapper.to_domain_event(notification)
                    projection.apply(connection, event, notification.id)
            applied += len(notifications)

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
