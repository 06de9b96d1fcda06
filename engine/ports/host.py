"""What the service needs around it: time, the host lease, processes, credentials, people."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from engine.domain.errors import DomainError


class CredentialRejectedError(DomainError):
    """Signals that the credential check refused an account and password.

    Its message names the account and the reason, never the password.
    """


class CredentialChecker(ABC):
    """Checks an account's password when the account is set; stores nothing."""

    @abstractmethod
    def check(self, account: str, password: str) -> None:
        """Return if ``password`` is right for ``account``.

        :param account: a validated ``DOMAIN\\user`` name.
        :param password: the password as typed; must not be kept, logged or put
            into the error message.
        :raises CredentialRejectedError: if the account may not be used.
        """


class Clock(ABC):
    """The time, so that tests can move it."""

    @abstractmethod
    def now(self) -> datetime:
        """Return the current time, timezone-aware in UTC."""


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class HostLease:
    """The heartbeat of the host session running the service (operational data)."""

    session_id: UUID
    station: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


class HostLeases(ABC):
    """Storage of the one host lease; shared by every station using the database."""

    @abstractmethod
    def acquire(self, lease: HostLease) -> None:
        """Make ``lease`` the current lease, replacing any other."""

    @abstractmethod
    def renew(self, session_id: UUID, heartbeat_at: datetime, expires_at: datetime) -> bool:
        """Move the heartbeat and expiry of ``session_id``; False if it holds no lease."""

    @abstractmethod
    def release(self, session_id: UUID) -> None:
        """Drop the lease of ``session_id`` if it still holds it."""

    @abstractmethod
    def current(self) -> HostLease | None:
        """Return the current lease, if any."""


class Processes(ABC):
    """The processes of this machine, as far as the service's host process is concerned."""

    @abstractmethod
    def machine(self) -> str:
        """This machine's name, as host sessions record it."""

    @abstractmethod
    def is_gone(self, pid: int, started_at: datetime) -> bool:
        """True if no live process ``pid`` exists that began by ``started_at`` (a later
        process holds a reused pid)."""


class OperatorNotifier(ABC):
    """Tells the operator about something that needs attention (e.g. a failing task)."""

    @abstractmethod
    def notify(self, subject: str, message: str) -> None:
        """Deliver one notification; must not raise for delivery problems it can log."""


class RunObserver(Protocol):
    """Told of every attempt's end as the host records it (for metrics)."""

    def attempt_ended(self, kind: str, outcome: str, duration_seconds: float,
                      counts: Mapping[str, int] | None = None) -> None:
        """``outcome``: ``succeeded``, ``failed`` or ``timed_out``; ``counts``: what a
        successful attempt reported (such as a synchronisation's ``sent``, ``received``)."""
