"""The Windows account the service runs under: ``DOMAIN\\user`` or ``COMPUTER\\user``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.errors import DomainError

# Characters Windows forbids in NetBIOS domain and computer names.
FORBIDDEN_IN_DOMAIN = set('\\/:*?"<>|,~!@#$%^&\'(){} ')
# Characters Windows forbids in user logon names.
FORBIDDEN_IN_USER = set('"/\\[]:;|=,+*?<>@')
MAX_DOMAIN_LENGTH = 63
MAX_USER_LENGTH = 20

ACCOUNT_FORMAT_HINT = "expected DOMAIN\\user or COMPUTER\\user"


class InvalidAccountError(DomainError):
    """Signals that an account name is not ``DOMAIN\\user`` or ``COMPUTER\\user``."""


def _has_control_characters(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def _forbidden(text: str, forbidden: set[str]) -> str:
    return "".join(sorted({char for char in text if char in forbidden}))


def _check_part(
    text: str, part: str, label: str, max_length: int, forbidden: set[str], *,
    bad_form: bool, bad_form_text: str, allowed: str,
) -> None:
    """Refuse an empty, too long or ill-formed part of the account ``text``."""
    if not part:
        raise InvalidAccountError(f"account {text!r} has an empty {label}: {ACCOUNT_FORMAT_HINT}")
    if len(part) > max_length:
        raise InvalidAccountError(f"{label} {part!r} is longer than {max_length} characters")
    bad = _forbidden(part, forbidden)
    if bad or _has_control_characters(part) or bad_form:
        found = " ".join(repr(char) for char in bad) or f"control characters or {bad_form_text}"
        raise InvalidAccountError(
            f"{label} {part!r} contains characters Windows forbids ({found}); {allowed}"
        )


@dataclass(frozen=True)
class ServiceAccount:
    """A validated account name; construct it with :meth:`parse`."""

    domain: str
    user: str

    @classmethod
    def parse(cls, text: str) -> ServiceAccount:
        """Return the account named by ``text``.

        :raises InvalidAccountError: unless ``text`` has exactly one backslash,
            a non-empty domain (or computer) part of at most 63 characters and a
            non-empty user part of at most 20, none of them forbidden by Windows.
        """
        if text.count("\\") != 1:
            raise InvalidAccountError(
                f"account {text!r} must contain exactly one backslash: {ACCOUNT_FORMAT_HINT}"
            )
        domain, user = text.split("\\")
        cls._check_domain(text, domain)
        cls._check_user(text, user)
        return cls(domain=domain, user=user)

    @staticmethod
    def _check_domain(text: str, domain: str) -> None:
        _check_part(
            text, domain, "domain or computer name", MAX_DOMAIN_LENGTH, FORBIDDEN_IN_DOMAIN,
            bad_form=domain.startswith("."), bad_form_text="a leading period",
            allowed="not allowed are \\ / : * ? \" < > | , ~ ! @ # $ % ^ & ' ( ) { } and spaces",
        )

    @staticmethod
    def _check_user(text: str, user: str) -> None:
        _check_part(
            text, user, "user name", MAX_USER_LENGTH, FORBIDDEN_IN_USER,
            bad_form=not user.strip(". ") or user != user.strip(),
            bad_form_text="only periods and spaces, or spaces at either end",
            allowed='not allowed are " / \\ [ ] : ; | = , + * ? < > @',
        )

    def __str__(self) -> str:
        return f"{self.domain}\\{self.user}"
