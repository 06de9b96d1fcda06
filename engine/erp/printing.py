"""The port that prints documents as PDF."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from engine.erp.document import Contractor, Seller
from engine.erp.model import Invoice, PaymentReminder

PrintLayout = Literal["pl", "foreign"]
"""``pl``: the Polish invoice for PLN; ``foreign``: Polish and English, for other
currencies."""


class DocumentPrinter(ABC):
    """Renders invoices and payment reminders as PDF (fonts embedded, Polish glyphs)."""

    @abstractmethod
    def invoice(self, invoice: Invoice, seller: Seller, buyer: Contractor,
                layout: PrintLayout = "pl") -> bytes:
        """The invoice as a PDF: seller, buyer, NIPs, number, dates, lines, VAT by rate,
        totals, amount due and the seller's bank account."""

    @abstractmethod
    def payment_reminder(self, reminder: PaymentReminder, seller: Seller,
                         buyer: Contractor) -> bytes:
        """The payment reminder as a PDF: the receivable, its due date, days overdue and
        the amount due."""
