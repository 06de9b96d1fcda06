"""The root of the domain's errors.

Every message is one line that says what is wrong and what is allowed, fit to be
shown to a user as it is. No message ever contains a password.
"""

from __future__ import annotations


class DomainError(Exception):
    """Signals that a command was refused by a domain rule; nothing was recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
