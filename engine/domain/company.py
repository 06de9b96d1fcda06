"""The company aggregate: one company database the automatic operations act on."""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import event

from engine.domain.aggregate import Aggregate
from engine.domain.errors import ConflictError, DomainError
from engine.domain.names import check_printable_name

COMPANY_NAMESPACE = uuid5(UUID(int=0), "soa-engine/company")
MAX_COMPANY_NAME_LENGTH = 100


class CompanyError(DomainError):
    """Signals a company command that the rules refuse."""


class InvalidCompanyNameError(CompanyError):
    """Signals an empty, too long or unprintable company name."""


class CompanyExistsError(CompanyError, ConflictError):
    def __init__(self, name: str) -> None:
        super().__init__(f"company {name!r} already exists")


class CompanyInUseError(CompanyError, ConflictError):
    def __init__(self, name: str, task_count: int) -> None:
        super().__init__(
            f"company {name!r} is used by {task_count} task(s); remove them first "
            "(soa tasks list --company ...)"
        )


class CompanyRemovedError(CompanyError, ConflictError):
    def __init__(self, name: str) -> None:
        super().__init__(f"company {name!r} has been removed; add it again to use it")


def check_company_name(name: str) -> str:
    """Return ``name`` stripped.

    :raises InvalidCompanyNameError: if empty, longer than 100 characters or with
        control characters.
    """
    return check_printable_name(
        name, what="company name", max_length=MAX_COMPANY_NAME_LENGTH,
        error=InvalidCompanyNameError,
    )


def company_id(name: str) -> UUID:
    """The id of the company named ``name`` (case-insensitive), so a name is taken once."""
    return uuid5(COMPANY_NAMESPACE, check_company_name(name).casefold())


class Company(Aggregate):
    """A company database; it knows which task definitions use it.

    Tasks attach and detach in the same save as their own events, so a company
    cannot be removed while a task is being added for it.
    """

    class Added(Aggregate.Created):
        """Signals that the company and its database were registered."""

        name: str
        database_url: str

    class Readded(Aggregate.Event):
        """Signals that a removed company was registered again."""

        database_url: str

    class TaskAttached(Aggregate.Event):
        """Signals that a task definition now acts on this company."""

        task_id: UUID

    class TaskDetached(Aggregate.Event):
        """Signals that a task definition no longer acts on this company."""

        task_id: UUID

    class Removed(Aggregate.Event):
        """Signals that the company was removed."""

    @staticmethod
    def create_id(name: str, database_url: str) -> UUID:
        return company_id(name)

    @event(Added)
    def __init__(self, name: str, database_url: str) -> None:
        self.name = check_company_name(name)
        self.database_url = database_url
        self.task_ids: list[UUID] = []
        self.removed = False

    def readd(self, database_url: str) -> None:
        """Register a removed company again (with a possibly new database)."""
        if not self.removed:
            raise CompanyExistsError(self.name)
        self._readd(database_url=database_url)

    @event(Readded)
    def _readd(self, database_url: str) -> None:
        self.database_url = database_url
        self.removed = False

    def check_usable(self) -> None:
        if self.removed:
            raise CompanyRemovedError(self.name)

    def attach_task(self, task_id: UUID) -> None:
        """:raises CompanyRemovedError: if the company was removed."""
        self.check_usable()
        if task_id not in self.task_ids:
            self._attach_task(task_id=task_id)

    @event(TaskAttached)
    def _attach_task(self, task_id: UUID) -> None:
        self.task_ids.append(task_id)

    def detach_task(self, task_id: UUID) -> None:
        if task_id in self.task_ids:
            self._detach_task(task_id=task_id)

    @event(TaskDetached)
    def _detach_task(self, task_id: UUID) -> None:
        self.task_ids.remove(task_id)

    def remove(self) -> None:
        """:raises CompanyInUseError: while task definitions use it."""
        self.check_usable()
        if self.task_ids:
            raise CompanyInUseError(self.name, len(self.task_ids))
        self._remove()

    @event(Removed)
    def _remove(self) -> None:
        self.removed = True
