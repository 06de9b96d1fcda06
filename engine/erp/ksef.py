"""What the company's data keeps of KSeF: its settings and, per invoice, the submission.

A submission moves ``prepared`` → ``sent`` → ``accepted`` or ``rejected``:

- ``prepared``: the FA(3) XML and its SHA-256 are recorded *before* the upload; a run
  that finds it again (a crash, or a response lost) sends the same bytes again, and KSeF
  answers 440 (duplicate, with the original KSeF number) if the first upload arrived;
- ``sent``: KSeF gave the session and invoice references; runs poll them, never upload
  again;
- ``accepted``: the KSeF number, the acceptance time and the UPO are kept;
- ``rejected``: KSeF's (or the XSD's) reason is kept; nothing is sent again until a person
  reopens it (:meth:`KsefLedger.reopen_ksef`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from engine.domain.errors import SoaError
from engine.erp.model import Invoice
from engine.ports.ksef import KSEF_ENVIRONMENTS, KsefCredentials, SentInvoice

SubmissionStatus = Literal["prepared", "sent", "accepted", "rejected"]
SUBMISSION_STATUSES: tuple[SubmissionStatus, ...] = ("prepared", "sent", "accepted",
                                                     "rejected")
InvoiceKsefStatus = Literal["pending", "sending", "processing", "accepted", "rejected"]
"""An invoice's ``ksef_status``: ``pending`` (to be sent), ``sending`` (prepared),
``processing`` (sent, no final answer yet), ``accepted``, ``rejected``."""

KSEF_STATUS_OF: dict[SubmissionStatus, InvoiceKsefStatus] = {
    "prepared": "sending", "sent": "processing", "accepted": "accepted",
    "rejected": "rejected"}


class KsefNotConfiguredError(SoaError):
    """Signals a KSeF action for a company whose KSeF connection is not configured."""


@dataclass(frozen=True)
class KsefSettings:
    """A company's KSeF connection. ``environment`` is TEST, DEMO, PROD or URL (then
    ``base_url`` is the one given). Invoices issued on or after ``since`` are sent."""

    environment: str
    base_url: str
    nip: str
    method: Literal["token", "certificate"]
    since: date
    enabled: bool = True
    token: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    updated_at: datetime | None = None

    def credentials(self) -> KsefCredentials:
        if self.method == "token":
            return KsefCredentials(base_url=self.base_url, nip=self.nip, token=self.token)
        return KsefCredentials(base_url=self.base_url, nip=self.nip,
                               certificate_pem=self.certificate_pem,
                               private_key_pem=self.private_key_pem)

    def as_json(self) -> dict[str, Any]:
        """What may be shown: never the token or the key (only whether they are set)."""
        return {"environment": self.environment, "base_url": self.base_url,
                "nip": self.nip, "method": self.method, "since": self.since.isoformat(),
                "enabled": self.enabled, "token_set": self.token is not None,
                "certificate_set": self.certificate_pem is not None,
                "updated_at": None if self.updated_at is None
                else self.updated_at.isoformat()}


def base_url_of(environment: str) -> str | None:
    """The base URL of a named environment (TEST, DEMO, PROD; any case), or None."""
    return KSEF_ENVIRONMENTS.get(environment.upper())


@dataclass(frozen=True)
class KsefSubmission:
    """One invoice's way through KSeF (see the module's docstring)."""

    invoice: str
    status: SubmissionStatus
    invoice_hash: str
    prepared_at: datetime
    run_id: str
    session_reference: str | None = None
    invoice_reference: str | None = None
    sent_at: datetime | None = None
    ksef_number: str | None = None
    accepted_at: datetime | None = None
    code: int | None = None
    reason: str | None = None
    upo: str | None = field(default=None, repr=False)
    uploads: int = 0
    xml: bytes | None = field(default=None, repr=False)

    @property
    def sent(self) -> SentInvoice | None:
        if self.session_reference is None or self.invoice_reference is None:
            return None
        return SentInvoice(self.session_reference, self.invoice_reference)

    def as_json(self) -> dict[str, Any]:
        return {"invoice": self.invoice, "ksef_status": KSEF_STATUS_OF[self.status],
                "ksef_number": self.ksef_number,
                "ksef_accepted_at": None if self.accepted_at is None
                else self.accepted_at.isoformat(),
                "code": self.code, "reason": self.reason, "invoice_hash": self.invoice_hash,
                "session_reference": self.session_reference,
                "invoice_reference": self.invoice_reference, "uploads": self.uploads,
                "prepared_at": self.prepared_at.isoformat(),
                "sent_at": None if self.sent_at is None else self.sent_at.isoformat(),
                "run_id": self.run_id, "upo": self.upo is not None}


class PreparedInvoice(NamedTuple):
    """An invoice's FA(3) XML and its SHA-256 (base64), to record before the upload."""

    invoice: str
    xml: bytes
    invoice_hash: str


@dataclass(frozen=True)
class KsefAcceptance:
    """KSeF's acceptance of an invoice: its number and time, the answer's code (200, or
    440 for a duplicate) with its text, and the UPO if it was fetched."""

    invoice: str
    ksef_number: str
    accepted_at: datetime
    code: int
    reason: str | None = None
    upo: str | None = field(default=None, repr=False)


class KsefLedger(ABC):
    """The KSeF settings and submissions of a company (beside its ERP data)."""

    @abstractmethod
    def ksef_settings(self) -> KsefSettings | None:
        """The connection, with its secrets decrypted; None if never configured."""

    @abstractmethod
    def configure_ksef(self, settings: KsefSettings) -> None:
        """Store ``settings``; a secret given as None keeps the stored one when the login
        method is unchanged."""

    @abstractmethod
    def ksef_candidates(self, today: date, limit: int) -> list[Invoice]:
        """Issued VAT invoices (type FA) dated from the settings' ``since`` up to
        ``today`` without a submission, oldest first, at most ``limit``."""

    @abstractmethod
    def ksef_submissions(self, *statuses: SubmissionStatus,
                         with_xml: bool = False) -> list[KsefSubmission]:
        """Submissions (in ``statuses``, or all), oldest first; ``with_xml`` loads the
        XML (prepared ones need it to be sent again)."""

    @abstractmethod
    def ksef_without_upo(self, limit: int) -> list[KsefSubmission]:
        """Accepted submissions whose UPO was not fetched yet, oldest first."""

    @abstractmethod
    def ksef_submission(self, invoice: str) -> KsefSubmission | None:
        """The submission of ``invoice`` (with its XML and UPO), or None."""

    @abstractmethod
    def prepare_ksef(self, prepared: Sequence[PreparedInvoice], run_id: str,
                     at: datetime) -> int:
        """Record each invoice as prepared with its XML, in one transaction; one with a
        submission already is left as it is. Returns how many were recorded."""

    @abstractmethod
    def record_ksef_upload(self, invoices: Sequence[str], session_reference: str) -> None:
        """Before ``invoices`` are uploaded in session ``session_reference``: keep the
        session and count an upload of each (one transaction)."""

    @abstractmethod
    def record_ksef_sent(self, sent: Sequence[tuple[str, SentInvoice]], at: datetime) -> None:
        """The invoices were uploaded: keep their references (status ``sent``)."""

    @abstractmethod
    def record_ksef_accepted(self, accepted: Sequence[KsefAcceptance]) -> None:
        """KSeF accepted the invoices (code 200, or 440 naming the original number)."""

    @abstractmethod
    def record_ksef_upo(self, invoice: str, upo: str) -> None:
        """Keep the UPO of an accepted invoice fetched later."""

    @abstractmethod
    def record_ksef_rejected(self, invoice: str, *, code: int, reason: str,
                             xml: bytes | None = None, run_id: str | None = None,
                             at: datetime | None = None) -> None:
        """KSeF (or the XSD check, with ``xml`` and no submission yet) rejected
        ``invoice``; nothing is sent again until it is reopened."""

    @abstractmethod
    def record_ksef_by_hand(self, invoice: str, *, ksef_number: str,
                            accepted_at: datetime) -> None:
        """A person sent ``invoice`` to KSeF another way (such as KSeF's own application)
        and gives its number: it is accepted, its e-mail goes out, nothing is sent."""

    @abstractmethod
    def reopen_ksef(self, invoice: str) -> bool:
        """Forget a rejected submission so the next run makes and sends the invoice
        again; False if ``invoice`` has no rejected submission."""

    @abstractmethod
    def awaiting_ksef(self) -> set[str]:
        """Numbers of invoices that KSeF must accept before they are e-mailed: issued
        VAT invoices dated from ``since``, not accepted yet (empty if KSeF is off)."""
