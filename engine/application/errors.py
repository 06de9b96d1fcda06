"""Every error the engine raises on purpose, in one hierarchy.

The table of classes, their meaning, CLI exit codes and HTTP statuses is in
:mod:`engine.domain.errors`; this module adds the application layer's own and lists
the others, so that an entry point maps them in one place:

- ``SoaError``: the root.
- ``DomainError`` (exit 2, HTTP 422): a rule refused the command. Subclasses beside their
  rules: ``InvalidAccountError``, ``InvalidStationError``, ``InvalidLogRetentionError``,
  ``InvalidCompanyNameError``, ``TaskDefinitionError``, ``TaskRunError``,
  ``InvalidScheduleError``, ``CredentialRejectedError``, ``UnknownKindError``,
  ``KindNotAvailableError``, ``InvalidParamsError``, ``InvalidOperationError``, and here
  ``CloudEditionError``, ``InvalidRequestError``, and in :mod:`engine.ports`
  ``InvalidDatabaseUrlError``.
- ``NotFoundError`` (exit 2, HTTP 404): a company, task or run that does not exist.
- ``ConflictError`` (exit 2, HTTP 409): ``ConcurrentChangeError`` (here),
  ``NotConfiguredError``, ``AlreadyRunningError``, ``NotRunningError``,
  ``CompanyExistsError``, ``CompanyInUseError``, ``CompanyRemovedError``.
- ``NotPermittedError`` (exit 2, HTTP 403): ``RunningElsewhereError``,
  ``ConfiguredElsewhereError``.
- ``StoreUnavailableError`` (exit 1, HTTP 503): the database cannot be used.
"""

from __future__ import annotations

from engine.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    NotPermittedError,
    SoaError,
)
from engine.ports.store import InvalidDatabaseUrlError, StoreUnavailableError

__all__ = [
    "CloudEditionError",
    "ConcurrentChangeError",
    "ConflictError",
    "DomainError",
    "InvalidDatabaseUrlError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPermittedError",
    "SoaError",
    "StoreUnavailableError",
]


class ConcurrentChangeError(ConflictError):
    """Signals that another command changed the same thing at the same moment and the
    command could not be applied again; nothing was recorded."""

    def __init__(self) -> None:
        super().__init__(
            "another command changed the service at the same moment (on this or another "
            "station); nothing was recorded; run the command again"
        )


class CloudEditionError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "the service configuration does not exist in the cloud edition; configure each "
            "automatic operation directly (SOA_EDITION=stationary enables it)"
        )


class InvalidRequestError(DomainError):
    """Signals a query argument outside what is allowed (such as an unknown status)."""
