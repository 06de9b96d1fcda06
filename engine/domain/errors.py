"""The engine's errors: one hierarchy, each class with one meaning for every entry point.

Every message is one line that says what is wrong and what is allowed, fit to be
shown to a user as it is. No message ever contains a password.

=========================  =========================================  =====  ====
class                      meaning                                    CLI    HTTP
=========================  =========================================  =====  ====
``SoaError``               the root: anything the engine raises on
                           purpose
``DomainError``            a rule refused the command; nothing was     2      422
                           recorded
``NotFoundError``          a company, task or run that does not        2      404
                           exist
``ConflictError``          the state does not allow it now (already    2      409
                           running, in use, changed meanwhile)
``NotPermittedError``      this station may not do it (the service     2      403
                           runs or is configured elsewhere)
``StoreUnavailableError``  the database cannot be used (defined in     1      503
                           :mod:`engine.ports`)
=========================  =========================================  =====  ====

Subclasses live next to what raises them (aggregates, the application layer,
adapters); :mod:`engine.application.errors` lists them all.
"""

from __future__ import annotations


class SoaError(Exception):
    """Signals anything the engine refuses or cannot do, with a message for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DomainError(SoaError):
    """Signals that a command was refused by a rule; nothing was recorded."""


class NotFoundError(DomainError):
    """Signals a company, task or run that does not exist."""


class ConflictError(DomainError):
    """Signals a command that the current state does not allow (try again later or
    change the state first)."""


class NotPermittedError(DomainError):
    """Signals a command that this station may not give (it is another station's)."""
