"""What a run keeps across its attempts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from uuid import UUID


class CheckpointStore(ABC):
    """Key-value storage of one run's progress, kept across its attempts.

    An operation that processes many items saves where it got to, so that the
    next attempt after a failure or a crash resumes there instead of repeating
    finished work.
    """

    @abstractmethod
    def get(self, key: str) -> str | None:
        """Return the value saved under ``key`` by this run, or None."""

    @abstractmethod
    def put(self, key: str, value: str) -> None:
        """Save ``value`` under ``key`` for this run (durably, before returning)."""


class CheckpointStores(ABC):
    """The checkpoints of every run."""

    @abstractmethod
    def for_run(self, run_id: UUID) -> CheckpointStore:
        """The checkpoint store of the run ``run_id`` (cheap; nothing is read yet)."""
