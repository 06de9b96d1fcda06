"""The :class:`engine.ports.EventStore` port over the engine's eventsourcing application
(:mod:`engine.adapters.soa_store`), which is built, and imported, on first use: a command
that only reads the read models never loads eventsourcing's persistence."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.exc import SQLAlchemyError

from engine.adapters.sql import first_line
from engine.ports.store import EventStore, StoreUnavailableError, WriteConflictError

if TYPE_CHECKING:
    from engine.adapters.soa_store import SoaStore

EVENTS_TABLE = "soa_events"


@contextmanager
def _translated() -> Iterator[None]:
    """eventsourcing's and SQLAlchemy's errors as the port's."""
    from eventsourcing.persistence import IntegrityError, PersistenceError

    try:
        yield
    except IntegrityError:
        raise WriteConflictError() from None
    except (PersistenceError, SQLAlchemyError) as error:
        raise StoreUnavailableError(first_line(error)) from error


class EventsourcingStore(EventStore):
    """The event store port over :class:`SoaStore`, built by ``build`` on first use."""

    def __init__(self, build: Callable[[], SoaStore]) -> None:
        self._build = build
        self._app: SoaStore | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> SoaStore:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    with _translated():
                        self._app = self._build()
        return self._app

    def get(self, aggregate_id: UUID) -> Any | None:
        from eventsourcing.application import AggregateNotFoundError

        with _translated():
            try:
                return self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None

    def save(self, *items: Any) -> None:
        with _translated():
            self.app.save(*items)

    def history(self, aggregate_id: UUID) -> Sequence[Any]:
        with _translated():
            return list(self.app.events.get(aggregate_id))

    def events_after(self, position: int, *, limit: int, stop: int) -> list[tuple[int, Any]]:
        """Up to ``limit`` events recorded after notification ``position`` and at most at
        ``stop``, with their notification ids, in order."""
        with _translated():
            notifications = self.app.recorder.select_notifications(
                start=position, limit=limit, stop=stop, inclusive_of_start=False
            )
            return [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]

    def max_position(self) -> int:
        """The last notification id (0 for an empty store)."""
        with _translated():
            return self.app.recorder.max_notification_id() or 0

    def close(self) -> None:
        if self._app is not None:
            with _translated():
                self._app.close()
