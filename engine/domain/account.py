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
        if not domain:
            raise InvalidAccountError(f"account {text!r} has an empty domain or computer name: "
                                      f"{ACCOUNT_FORMAT_HINT}")
        if len(domain) > MAX_DOMAIN_LENGTH:
            raise InvalidAccountError(
                f"domain or computer name {domain!r} is longer than {MAX_DOMAIN_LENGTH} characters"
            )
        bad = _forbidden(domain, FORBIDDEN_IN_DOMAIN)
        if bad or _has_control_characters(domain) or domain.startswith("."):
            raise InvalidAccountError(
                f"domain or computer name {domain!r} contains characters Windows forbids "
                f"({bad or 'control characters or a leading period'}); allowed are letters, "
                "digits, '-', '_' and '.' not at the start"
            )

    @staticmethod
    def _check_user(text: str, user: str) -> None:
        if not user:
            raise InvalidAccountError(f"account {text!r} has an empty user name: "
                                      f"{ACCOUNT_FORMAT_HINT}")
        if len(user) > MAX_USER_LENGTH:
            raise InvalidAccountError(
                f"user name {user!r} is longer than {MAX_USER_LENGTH} characters"
            )
        bad = _forbidden(user, FORBIDDEN_IN_USER)
        if bad or _has_control_characters(user) or not user.strip(". "):
            raise InvalidAccountError(
                f"user name {user!r} contains characters Windows forbids "
                f"({bad or 'control characters, or only periods and spaces'}); "
                'not allowed are " / \\ [ ] : ; | = , + * ? < > @'
            )

    def __str__(self) -> str:
        return f"{self.domain}\\{self.user}"
