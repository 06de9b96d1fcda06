"""Credential checks for the service account; none of them keeps the password."""

from __future__ import annotations

import importlib

from engine.ports import CredentialChecker, CredentialRejectedError


class NonEmptyPasswordChecker(CredentialChecker):
    """The default check: the account must have a password (as the ERP requires).

    It cannot verify the password against Windows; plug in a checker that calls
    ``LogonUserW`` for that (see docs/configuration.md).
    """

    def check(self, account: str, password: str) -> None:
        if not password:
            raise CredentialRejectedError(
                f"the password for {account} is empty; the account must have a password "
                "(give the Windows user one first)"
            )


class InvalidCheckerError(CredentialRejectedError):
    """Signals a ``SOA_CREDENTIAL_CHECKER`` that does not name a usable checker."""


def load_credential_checker(spec: str | None) -> CredentialChecker:
    """Return the checker named ``module:attribute``, or the default when ``spec`` is empty.

    The attribute must be a :class:`CredentialChecker` subclass (instantiated
    without arguments) or instance.
    """
    if not spec:
        return NonEmptyPasswordChecker()
    module_name, _, attribute = spec.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        raise InvalidCheckerError(
            f"SOA_CREDENTIAL_CHECKER {spec!r} names nothing importable; expected module:attribute"
        ) from None
    checker = target() if isinstance(target, type) else target
    if not isinstance(checker, CredentialChecker):
        raise InvalidCheckerError(
            f"SOA_CREDENTIAL_CHECKER {spec!r} is not a CredentialChecker"
        )
    return checker
