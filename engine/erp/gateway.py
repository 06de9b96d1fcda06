"""The port to a company's ERP data: what the operations and the ``soa erp`` commands
read and write, whatever database or ERP is behind it.

The engine's adapter keeps the data in tables of the company's own database
(:mod:`engine.adapters.erp_sqlalchemy`); another ERP can be plugged in behind the same
port. Every write goes through :meth:`ErpGateway.transaction`: what one transaction
does is stored whole or not at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import date, datetime

from engine.domain.errors import ConflictError
from engine.erp.document import ErpDocument
from engine.erp.model import (
    DunningEntry,
    Invoice,
    OutboxEntry,
    OutboxStatus,
    PaymentReminder,
    ServiceOrder,
)
from engine.erp.references import StoredCodes
from engine.ports.outbound import CompanyDatabase


class AlreadyRecordedError(ConflictError):
    """Signals that what a transaction adds exists already (the same invoice period,
    order date or dunning stage was recorded by an earlier or concurrent run); the
    transaction was rolled back."""


class ErpWriter(ABC):
    """The writes of one transaction (see :meth:`ErpGateway.transaction`)."""

    @abstractmethod
    def next_number(self, series: str) -> int:
        """The next number of ``series`` (such as ``FA/12/2026``), starting at 1; gap-free:
        the number is taken only if the transaction commits."""

    @abstractmethod
    def add_invoice(self, invoice: Invoice) -> None:
        """Store ``invoice``; a generated one also advances its template's last period.

        :raises AlreadyRecordedError: if its number, or its template and period, exist.
        """

    @abstractmethod
    def add_service_order(self, order: ServiceOrder, next_date: date) -> None:
        """Store ``order`` and set its template's next date to ``next_date``.

        :raises AlreadyRecordedError: if the template has an order on that date.
        """

    @abstractmethod
    def add_dunning_entry(self, entry: DunningEntry) -> None:
        """Add a line to a receivable's dunning history.

        :raises AlreadyRecordedError: if that receivable's stage has a line already.
        """

    @abstractmethod
    def add_payment_reminder(self, reminder: PaymentReminder) -> None:
        """Store a payment reminder document."""

    @abstractmethod
    def add_crm_task(self, task_id: str, title: str, start: datetime, contractor: str | None,
                     operator: str | None) -> None:
        """Add a CRM task (without a reminder) for the operator."""

    @abstractmethod
    def block_sales(self, contractor: str) -> None:
        """Set the contractor's sales block."""

    @abstractmethod
    def add_outbox(self, entry: OutboxEntry) -> bool:
        """Queue ``entry``; False (and nothing changes) if its key is queued already."""


class ErpGateway(ABC):
    """A company's ERP data.

    Reads return plain records and documents; :meth:`data` carries the secrets
    (``SecretStr``) for the operations that need them, :meth:`export` never does.
    """

    # -- the document ------------------------------------------------------------------

    @abstractmethod
    def codes(self) -> StoredCodes:
        """The codes stored, to check a document's references against."""

    @abstractmethod
    def load(self, document: ErpDocument) -> dict[str, int]:
        """Upsert every entry of ``document`` by its code (or id), in one transaction;
        return how many entries of each key were stored. A null secret keeps the one
        stored. The caller checked the references (:func:`check_references`)."""

    @abstractmethod
    def data(self) -> ErpDocument:
        """Everything stored, as a document, with the secrets (decrypted)."""

    def export(self) -> ErpDocument:
        """Everything stored as a document that loads back to the same state, without
        secrets."""
        document = self.data()
        return document.model_copy(update={
            "email_accounts": [account.model_copy(update={"password": None})
                               for account in document.email_accounts],
            "sms_gateway": None if document.sms_gateway is None
            else document.sms_gateway.model_copy(update={"token": None}),
        })

    # -- what the operations keep ------------------------------------------------------

    @abstractmethod
    def last_periods(self) -> dict[str, date]:
        """Per recurring invoice template, the latest period generated."""

    @abstractmethod
    def dunning_stages_done(self) -> dict[str, set[int]]:
        """Per receivable id, the stages with a history line (any outcome)."""

    @abstractmethod
    def outbox_keys(self, prefix: str) -> set[str]:
        """The keys of outbox entries starting with ``prefix`` (any status)."""

    @abstractmethod
    def unsent_invoices(self) -> list[Invoice]:
        """Issued invoices and pro formas not e-mailed yet (``sent_at`` null), oldest
        number first."""

    @abstractmethod
    def invoice(self, number: str) -> Invoice | None:
        """The invoice ``number``, or None."""

    @abstractmethod
    def payment_reminder(self, number: str) -> PaymentReminder | None:
        """The payment reminder ``number``, or None."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[ErpWriter]:
        """A transaction: committed when the block ends, rolled back if it raises."""

    # -- the outbox --------------------------------------------------------------------

    @abstractmethod
    def outbox_to_deliver(self, operation: str, *, max_attempts: int) -> list[OutboxEntry]:
        """Entries of ``operation`` still to send: pending ones, and failed ones tried
        fewer than ``max_attempts`` times; oldest first."""

    @abstractmethod
    def record_delivery(self, key: str, *, message_id: str, sent_at: datetime) -> None:
        """Mark the entry ``key`` sent; an invoice it carries gets ``sent_at``."""

    @abstractmethod
    def record_delivery_failure(self, key: str, *, error: str, final: bool) -> None:
        """Count a failed attempt of entry ``key``: status ``failed`` with ``error``;
        ``final`` means it will not be tried again, and the dunning history line whose
        ``created`` is ``key`` becomes ``failed``."""

    # -- views -------------------------------------------------------------------------

    @abstractmethod
    def invoices(self) -> list[Invoice]:
        """Every invoice, by issue date then number."""

    @abstractmethod
    def service_orders(self) -> list[ServiceOrder]:
        """Every service order, by date then number."""

    @abstractmethod
    def dunning_history(self) -> list[DunningEntry]:
        """Every dunning history line, by date, receivable and stage."""

    @abstractmethod
    def outbox(self, status: OutboxStatus | None = None) -> list[OutboxEntry]:
        """Outbox entries (in ``status``), oldest first."""


class ErpGateways(ABC):
    """The gateway of each company database (built on first use, shared by the runs)."""

    @abstractmethod
    def for_database(self, database: CompanyDatabase) -> ErpGateway:
        """The gateway to the ERP data in ``database`` (its tables created if missing)."""
