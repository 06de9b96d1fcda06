"""The port to KSeF, Poland's national e-invoicing system (KSeF API 2.0).

The engine's adapter (:mod:`engine.adapters.ksef_sdk`) speaks through the ``ksef-client``
SDK from PyPI; another SDK can replace it behind these classes. Operations receive a
:class:`KsefClient` in their run's resources and never build one themselves.

What the port promises:

- :meth:`KsefClient.render` turns an invoice into FA(3) XML and validates it against the
  official XSD before anyone sends it;
- :meth:`KsefClient.connect` logs in (KSeF token or XAdES certificate) for one company's
  NIP; the connection opens online sessions, sends encrypted invoices, and reads the
  status and UPO of an invoice by its session and invoice references;
- 429 answers are waited out by their ``Retry-After`` and 5xx/transport errors retried with
  backoff inside the adapter; what remains is raised as :class:`KsefUnavailableError`
  (try again later) or :class:`KsefRefusedError` (KSeF said no; a person must act).
  Messages never carry a token, a key or a password.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from engine.domain.errors import SoaError

if TYPE_CHECKING:
    from engine.erp.model import Invoice

KSEF_ENVIRONMENTS: dict[str, str] = {
    "TEST": "https://api-test.ksef.mf.gov.pl",
    "DEMO": "https://api-demo.ksef.mf.gov.pl",
    "PROD": "https://api.ksef.mf.gov.pl",
}
"""KSeF's environments by name, and their base URLs (the client adds ``/v2``)."""

KsefLoginMethod = Literal["token", "certificate"]

# KSeF's invoice status codes (GET /sessions/{ref}/invoices/{ref})
STATUS_RECEIVED = 100
STATUS_PROCESSING = 150
STATUS_ACCEPTED = 200
STATUS_DUPLICATE = 440
STATUS_INVALID = 450


class KsefError(SoaError):
    """Signals that KSeF could not be used; the message says why, without secrets."""


class KsefUnavailableError(KsefError):
    """KSeF did not answer, or answered 5xx or 429, after the adapter's retries: nothing
    is known to have changed; the same step may be tried again later."""


class KsefRefusedError(KsefError):
    """KSeF refused a request (login failed, session refused, a 4xx other than 429):
    repeating it unchanged will not help."""


class KsefDocumentError(KsefError):
    """An invoice could not be made into FA(3) XML that the official XSD accepts; the
    message names what is wrong."""


@dataclass(frozen=True)
class KsefCredentials:
    """How to log in to KSeF for the company whose NIP is ``nip`` (the context).

    Exactly one of ``token`` (a KSeF token) or the pair ``certificate_pem`` and
    ``private_key_pem`` (a qualified or KSeF certificate for XAdES login) is given.
    """

    base_url: str
    nip: str
    token: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)

    @property
    def method(self) -> KsefLoginMethod:
        return "token" if self.token is not None else "certificate"


@dataclass(frozen=True)
class KsefParty:
    """The seller or the buyer as FA(3) names them.

    ``nip`` is a Polish NIP (10 digits). A buyer without one is either foreign (``country``
    is not ``PL``; ``vat_id`` is its VAT number, without the country prefix, if it has
    one) or a person without a tax number.
    """

    name: str
    address: str
    nip: str | None = None
    country: str = "PL"
    vat_id: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class KsefInvoiceDocument:
    """What an FA(3) invoice is made of: the ERP's invoice, its seller and buyer."""

    invoice: Invoice
    seller: KsefParty
    buyer: KsefParty
    bank_account: str = ""
    created_at: datetime | None = None
    """When the XML is made (``DataWytworzeniaFa``); None: now."""


@dataclass(frozen=True)
class KsefInvoiceStatus:
    """What KSeF says of one sent invoice.

    ``code``: 100 received, 150 processing, 200 accepted, 440 duplicate (``ksef_number`` is
    then the original's), 4xx/5xx other: rejected.
    """

    code: int
    description: str
    details: tuple[str, ...] = ()
    ksef_number: str | None = None
    accepted_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.code >= STATUS_ACCEPTED

    @property
    def is_accepted(self) -> bool:
        """Accepted now, or earlier under the same number (a duplicate with its number)."""
        return self.ksef_number is not None and self.code in (STATUS_ACCEPTED,
                                                               STATUS_DUPLICATE)

    @property
    def reason(self) -> str:
        """One line: the code, the description and the details."""
        text = f"{self.code} {self.description}"
        if self.details:
            text += ": " + "; ".join(self.details)
        return " ".join(text.split())


@dataclass(frozen=True)
class SentInvoice:
    """KSeF's receipt of an upload: the invoice's reference in the session."""

    session_reference: str
    invoice_reference: str


class KsefSession(ABC):
    """An open online session (FA(3)); invoices sent in it are encrypted with its key."""

    reference: str

    @abstractmethod
    def send(self, xml: bytes) -> SentInvoice:
        """Upload one invoice; KSeF answers with its reference before processing it."""

    @abstractmethod
    def close(self) -> None:
        """Close the session (KSeF then makes the session's collective UPO)."""


class KsefConnection(ABC):
    """A logged-in connection for one NIP; close it when done (or use ``with``)."""

    @abstractmethod
    def open_session(self) -> KsefSession:
        """Open an online session for FA(3) invoices."""

    @abstractmethod
    def invoice_status(self, sent: SentInvoice) -> KsefInvoiceStatus:
        """The status of an invoice sent earlier (in this or an earlier connection)."""

    def uploads_in(self, session_reference: str) -> dict[str, str]:
        """The invoices KSeF received in session ``session_reference``: SHA-256 (base64)
        → invoice reference. How a run finds uploads whose answers were lost. An adapter
        that cannot list a session's invoices returns an empty mapping (the invoices are
        then sent again, and KSeF answers 440 with the original numbers)."""
        return {}

    @abstractmethod
    def upo(self, sent: SentInvoice) -> str:
        """The invoice's UPO (official receipt) as XML text; only once accepted."""

    @abstractmethod
    def close(self) -> None:
        """Close open sessions and the HTTP client; errors are not raised."""

    def __enter__(self) -> KsefConnection:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class KsefClient(ABC):
    """KSeF, as the operations use it."""

    @abstractmethod
    def render(self, document: KsefInvoiceDocument) -> bytes:
        """The invoice as FA(3) XML (UTF-8), valid against the official XSD.

        :raises KsefDocumentError: if the invoice cannot be made valid FA(3) (a pro forma,
            a buyer without an identity the schema accepts, a value out of range).
        """

    @abstractmethod
    def is_ksef_number(self, text: str) -> bool:
        """Whether ``text`` is a well-formed KSeF number (``NIP-YYYYMMDD-XXXXXXXXXXXX-CC``,
        its CRC-8 ``CC`` checked)."""

    @abstractmethod
    def connect(self, credentials: KsefCredentials) -> KsefConnection:
        """Log in for ``credentials.nip``.

        :raises KsefRefusedError: if KSeF refused the login.
        :raises KsefUnavailableError: if KSeF could not be reached.
        """

