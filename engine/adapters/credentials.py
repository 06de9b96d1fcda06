"""Credential checks for the service account; none of them keeps the password."""

from __future__ import annotations

import importlib

from engine.ports.host import CredentialChecker, CredentialRejectedError


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


class LazyCredentialChecker(CredentialChecker):
    """Loads the configured checker when an account is first set, so that a broken
    ``SOA_CREDENTIAL_CHECKER`` refuses only ``configure account``, not every command.

    A checker failing with anything but :class:`CredentialRejectedError` is reported
    as a refusal naming the exception type only (its message might echo the password).
    """

    def __init__(self, spec: str | None) -> None:
        self._spec = spec
        self._checker: CredentialChecker | None = None

    def check(self, account: str, password: str) -> None:
        if self._checker is None:
            self._checker = load_credential_checker(self._spec)
        try:
            self._checker.check(account, password)
        except CredentialRejectedError:
            raise
        except Exception as error:
            raise CredentialRejectedError(
                f"the credential check for {account} failed ({type(error).__name__}); "
                "the account was not set"
            ) from None


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
