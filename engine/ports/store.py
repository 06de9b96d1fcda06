"""The event store as the application layer sees it, and the errors of storage."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from engine.domain.errors import DomainError, SoaError


class StoreUnavailableError(SoaError):
    """Signals that the database cannot be used (unreachable, locked, broken); nothing of
    the command was recorded. Adapters raise it in place of their library's errors."""


class InvalidDatabaseUrlError(DomainError):
    """Signals a database URL (the store's or a company's) the engine cannot use."""


class WriteConflictError(Exception):
    """Signals that another writer changed one of the saved aggregates first; nothing of
    the save was recorded. The application layer turns it into a user-facing error or
    applies the command again."""


class EventStore(ABC):
    """The one source of truth: aggregates by id, saved with optimistic concurrency."""

    @abstractmethod
    def get(self, aggregate_id: UUID) -> Any | None:
        """Return the aggregate with ``aggregate_id`` as of its last event, or None.

        :raises StoreUnavailableError: if the store cannot be read.
        """

    @abstractmethod
    def save(self, *items: Any) -> None:
        """Record the pending events of the given aggregates (or the given events) in one
        transaction: all of them or none.

        :raises WriteConflictError: if another writer changed one of them first.
        :raises StoreUnavailableError: if the store cannot be written.
        """

    @abstractmethod
    def history(self, aggregate_id: UUID) -> Sequence[Any]:
        """Every event of the aggregate, oldest first (empty if there is none)."""


class PendingSave(ABC):
    """A save queued in a :class:`GroupCommit`, written with others."""

    @abstractmethod
    def wait(self) -> bool:
        """Block until written; True if recorded, False if a conflict refused it.

        :raises StoreUnavailableError: if the store failed.
        """


class GroupCommit(ABC):
    """Saves like :meth:`EventStore.save`, sharing transactions between threads that save
    at the same moment. Each save keeps its own terms: its events are recorded together
    or not at all, and a conflict refuses only the save that caused it."""

    @abstractmethod
    def save(self, *aggregates: Any) -> bool:
        """Record the aggregates' pending events together; False if a conflict refused them
        (the objects are then stale)."""

    @abstractmethod
    def submit(self, *aggregates: Any) -> PendingSave:
        """Queue the aggregates' pending events; the next write by any thread takes them."""

    @abstractmethod
    def save_each(self, aggregates: Sequence[Any]) -> list[bool]:
        """Save each aggregate on its own terms, in as few transactions as conflicts
        allow; one result per aggregate, in order."""
