from __future__ import annotations

import pytest

from engine.adapters.credentials import (
    InvalidCheckerError,
    LazyCredentialChecker,
    NonEmptyPasswordChecker,
    load_credential_checker,
)
from engine.ports import CredentialChecker, CredentialRejectedError


class AcceptOnly(CredentialChecker):
    def check(self, account: str, password: str) -> None:
        if password != "right":
            raise CredentialRejectedError(f"wrong password for {account}")


def test_default_checker_refuses_an_empty_password_and_never_echoes_it() -> None:
    checker = NonEmptyPasswordChecker()
    checker.check("CORP\\svc", "x")
    with pytest.raises(CredentialRejectedError, match="must have a password"):
        checker.check("CORP\\svc", "")


def test_checker_can_be_plugged_in_by_module_and_attribute() -> None:
    checker = load_credential_checker(f"{__name__}:AcceptOnly")
    assert isinstance(checker, AcceptOnly)
    assert isinstance(load_credential_checker(None), NonEmptyPasswordChecker)
    with pytest.raises(InvalidCheckerError, match="expected module:attribute"):
        load_credential_checker("no.such.module:Thing")
    with pytest.raises(InvalidCheckerError, match="not a CredentialChecker"):
        load_credential_checker("os:getcwd")


class Exploding(CredentialChecker):
    def check(self, account: str, password: str) -> None:
        raise RuntimeError(f"boom with {password}")


def test_unexpected_checker_failure_is_a_refusal_that_hides_its_message() -> None:
    checker = LazyCredentialChecker(f"{__name__}:Exploding")
    with pytest.raises(CredentialRejectedError) as raised:
        checker.check("CORP\\svc", "s3cret")
    assert "RuntimeError" in raised.value.message and "s3cret" not in raised.value.message
