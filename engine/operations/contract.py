"""The contract between the engine and an automatic operation (built-in or plugin)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel


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


@dataclass(frozen=True)
class RunContext:
    """What an operation gets for one attempt of one run.

    ``run_id`` is the idempotency key for every effect of the run: it is the
    same on every attempt of the occurrence and never shared with another.
    """

    run_id: str
    task_id: str
    company: str
    company_database_url: str
    scheduled_for: datetime
    attempt: int
    params: Any
    checkpoints: CheckpointStore
    cancelled: threading.Event = field(default_factory=threading.Event)

    def is_cancelled(self) -> bool:
        """True once the run passed its timeout or the host is stopping: return soon."""
        return self.cancelled.is_set()


@runtime_checkable
class Operation(Protocol):
    """An automatic operation of one kind.

    ``params_model`` validates the task's parameters (unknown keys are refused);
    None means the kind takes no parameters. ``run`` does one attempt and
    returns counts of what it did (shown in the log), or None; an exception
    fails the attempt.
    """

    kind: str
    params_model: type[BaseModel] | None

    def run(self, ctx: RunContext) -> Mapping[str, int] | None: ...
