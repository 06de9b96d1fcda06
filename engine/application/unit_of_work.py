"""Typed loads and saves of aggregates, and what a write conflict means for a command."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from engine.application.errors import ConcurrentChangeError
from engine.domain.errors import DomainError, NotFoundError
from engine.ports.store import EventStore, WriteConflictError

T = TypeVar("T")
R = TypeVar("R")

COMMAND_ATTEMPTS = 5
"""How often a command that does not depend on what another writer did is applied,
at most, when other writers keep getting in first."""


class UnitOfWork:
    """The application's access to aggregates.

    A command loads the aggregates it needs, calls their methods and saves them all in
    one :meth:`save`. A write conflict (another writer saved one of them first) becomes
    :class:`ConcurrentChangeError`, or the command's own error; :meth:`retrying` applies a
    command again instead, for commands whose effect does not depend on what the other
    writer did (adding a task to a company, pausing it). Claims (the station ownership)
    are never retried: the first writer wins and the others are refused.
    """

    def __init__(self, store: EventStore, *, rng: random.Random | None = None) -> None:
        self.store = store
        self._rng = rng or random.Random()

    def get(self, aggregate_id: UUID, cls: type[T]) -> T | None:
        """The aggregate, or None if it does not exist.

        :raises NotFoundError: if the id belongs to an aggregate of another type.
        """
        found = self.store.get(aggregate_id)
        if found is None:
            return None
        if not isinstance(found, cls):
            raise NotFoundError(f"{aggregate_id} is not a {cls.__name__}")
        return found

    def get_or_create(self, aggregate_id: UUID, cls: Callable[[], T]) -> T:
        """The aggregate, or a new one (of a class whose id is fixed) if none exists yet."""
        found = self.store.get(aggregate_id)
        return found if found is not None else cls()

    def save(self, *aggregates: Any, conflict: Callable[[], DomainError] | None = None) -> None:
        """Record the pending events of ``aggregates`` in one transaction.

        :raises ConcurrentChangeError: (or ``conflict()``) if another writer changed one
            of them first; nothing is recorded.
        """
        try:
            self.store.save(*aggregates)
        except WriteConflictError:
            raise (conflict() if conflict else ConcurrentChangeError()) from None

    def retrying(self, command: Callable[[], R], *, attempts: int = COMMAND_ATTEMPTS) -> R:
        """Run ``command`` (it loads, changes and saves); when another writer got in first,
        load and apply it again, at most ``attempts`` times in all, with a short random
        pause between tries.

        :raises ConcurrentChangeError: if every try met a conflict.
        """
        for attempt in range(1, attempts + 1):
            try:
                return command()
            except ConcurrentChangeError:
                if attempt == attempts:
                    raise
                time.sleep(self._rng.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")
