"""What operations use to reach the outside: the company database, mail, SMS, HTTP.

The composition root builds the adapters; an operation receives them in its
:class:`engine.operations.RunContext` and never builds an engine or a client itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from uuid import UUID

from engine.domain.errors import SoaError

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

MailSecurity = Literal["none", "starttls", "ssl"]


class DeliveryError(SoaError):
    """Signals that a message could not be handed over (server refused or unreachable);
    the message says which server and why, never a password or token."""


class CompanyDatabase(ABC):
    """A company's own database, where the ERP data lives."""

    @property
    @abstractmethod
    def url(self) -> str:
        """Its SQLAlchemy URL, as registered (never with a password)."""

    @abstractmethod
    def sql_engine(self) -> Engine:
        """A pooled SQLAlchemy engine on it, shared by every run of the host; do not
        dispose of it (the host does when it stops)."""


class CompanyDatabases(ABC):
    """The company databases: where they are by default, which URLs are usable, and the
    pooled engines the host's operations act through."""

    @abstractmethod
    def default_url(self, company_name: str) -> str:
        """The URL of the company's embedded default database (a SQLite file)."""

    @abstractmethod
    def check_url(self, url: str) -> str:
        """Return ``url`` if the engine can use it for a company database.

        :raises InvalidDatabaseUrlError: for a malformed URL, an unsupported scheme, or a
            URL with a password (it would be stored).
        """

    @abstractmethod
    def get(self, company_id: UUID, url: str) -> CompanyDatabase:
        """The database of company ``company_id`` at ``url`` (opened on first use)."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection pool (when the host stops)."""


@dataclass(frozen=True)
class MailServer:
    """An SMTP account: the server, how to secure the connection, and the sender."""

    host: str
    port: int
    security: MailSecurity
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class OutboundMail:
    """One e-mail. ``idempotency_key`` names the effect (say ``run id/invoice``): a repeated
    attempt of the same effect carries the same key and so the same Message-ID."""

    to: tuple[str, ...]
    subject: str
    text: str
    idempotency_key: str
    html: str | None = None
    attachments: tuple[MailAttachment, ...] = ()
    reply_to: str | None = None


class MailSender(ABC):
    """Hands e-mails to an SMTP server."""

    @abstractmethod
    def send(self, server: MailServer, mail: OutboundMail) -> str:
        """Deliver ``mail`` through ``server``; return its Message-ID (derived from the
        idempotency key, so the same for a repeated attempt).

        :raises DeliveryError: if the server refused it or could not be reached.
        """

    def session(self, server: MailServer) -> AbstractContextManager[Callable[[OutboundMail], str]]:
        """A context whose value delivers one mail through ``server`` per call, exactly as
        ``send`` does (the same Message-ID, the same :class:`DeliveryError`s), so that an
        adapter can keep one connection open for many mails. One thread at a time.

        This default sends each mail with ``send``.
        """

        def send(mail: OutboundMail) -> str:
            return self.send(server, mail)

        return nullcontext(send)


@dataclass(frozen=True)
class SmsGateway:
    """An HTTP SMS gateway account (the contract is in docs/outbound.md)."""

    url: str
    token: str = field(repr=False)
    sender: str


@dataclass(frozen=True)
class OutboundSms:
    """One text message to ``to`` (E.164, such as +48600100200)."""

    to: str
    text: str
    idempotency_key: str


class SmsSender(ABC):
    """Hands text messages to an SMS gateway."""

    @abstractmethod
    def send(self, gateway: SmsGateway, sms: OutboundSms) -> str:
        """Deliver ``sms``; return the gateway's id for it. The gateway keeps one message
        per idempotency key, so a repeated attempt sends nothing twice.

        :raises DeliveryError: if the gateway refused it or could not be reached.
        """


class HttpClients(ABC):
    """Pooled HTTP clients, one per name, with the host's timeouts; closed at stop."""

    @abstractmethod
    def client(self, name: str, *, base_url: str = "") -> httpx.Client:
        """The client called ``name`` (built on first use with ``base_url``)."""

    @abstractmethod
    def close(self) -> None:
        """Close every client (when the host stops)."""
