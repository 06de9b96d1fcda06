from __future__ import annotations

import pytest

from engine.domain.account import InvalidAccountError, ServiceAccount


@pytest.mark.parametrize("text", ["CORP\\svc", "PC-01\\jan.kowalski", "firma.local\\soa_1"])
def test_accepts_domain_or_computer_and_user(text: str) -> None:
    account = ServiceAccount.parse(text)
    # Check the parts and the canonical form.
    assert str(account) == text
    assert account.domain == text.split("\\")[0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("svc", "exactly one backslash"),
        ("A\\B\\c", "exactly one backslash"),
        ("\\svc", "empty domain"),
        ("CORP\\", "empty user"),
        ("CO*RP\\svc", "forbids"),
        ("CORP\\s|vc", "forbids"),
        ("CORP\\a@b", "forbids"),
        ("CORP\\...", "forbids"),
        ("CORP\\" + "u" * 21, "longer than 20"),
        ("D" * 64 + "\\svc", "longer than 63"),
        ("CORP\\sv\tc", "forbids"),
    ],
)
def test_refuses_malformed_accounts_with_one_line_that_says_what_is_allowed(
    text: str, fragment: str
) -> None:
    with pytest.raises(InvalidAccountError) as raised:
        ServiceAccount.parse(text)
    assert fragment in raised.value.message
    assert "\n" not in raised.value.message
