"""What the operations make in a company's data: invoices, service orders, dunning
history, payment reminders, and the outbox of messages to send.

Each record has ``as_json`` in the shape the CLI and the API print (money as strings
with two decimals, dates as ISO text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from engine.erp.money import Amounts, VatRate, money_text

InvoiceType = Literal["FA", "FPF"]
InvoiceStatus = Literal["draft", "issued"]
DunningMode = Literal["automatic", "manual"]
DunningOutcome = Literal["done", "skipped", "failed"]
OutboxChannel = Literal["email", "sms"]
OutboxStatus = Literal["pending", "sent", "failed"]
OUTBOX_STATUSES: tuple[OutboxStatus, ...] = ("pending", "sent", "failed")


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class InvoiceLine:
    product: str
    name: str
    quantity: Decimal
    unit_net_price: Decimal
    vat_rate: VatRate
    amounts: Amounts

    def as_json(self) -> dict[str, Any]:
        return {
            "product": self.product, "name": self.name,
            "quantity": format(self.quantity.normalize(), "f"),
            "unit_net_price": money_text(self.unit_net_price), "vat_rate": self.vat_rate,
            **self.amounts.as_json(),
        }


@dataclass(frozen=True)
class Invoice:
    """An invoice or pro forma. ``template`` and ``period`` name the recurring template
    and the period it was generated for (unique together)."""

    number: str
    type: InvoiceType
    contractor: str
    issue_date: date
    sale_date: date
    due_date: date
    currency: str
    status: InvoiceStatus
    template: str | None
    period: date | None
    lines: tuple[InvoiceLine, ...]
    vat_by_rate: dict[VatRate, Amounts]
    totals: Amounts
    run_id: str | None = None
    sent_at: datetime | None = None
    ksef_status: str | None = None
    """None: not for KSeF (KSeF off, a draft, a pro forma, dated before KSeF was set up);
    else ``pending``, ``sending``, ``processing``, ``accepted`` or ``rejected``."""
    ksef_number: str | None = None
    ksef_accepted_at: datetime | None = None
    ksef_reason: str | None = None
    """Why KSeF (or the XSD check) rejected it; or a note on acceptance (a duplicate)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "type": self.type, "contractor": self.contractor,
            "issue_date": _iso(self.issue_date), "sale_date": _iso(self.sale_date),
            "due_date": _iso(self.due_date), "currency": self.currency, "status": self.status,
            "template": self.template, "period": _iso(self.period),
            "lines": [line.as_json() for line in self.lines],
            "vat_by_rate": {rate: amounts.as_json() for rate, amounts in self.vat_by_rate.items()},
            "totals": self.totals.as_json(), "sent_at": _iso(self.sent_at),
            "run_id": self.run_id, "ksef_status": self.ksef_status,
            "ksef_number": self.ksef_number, "ksef_accepted_at": _iso(self.ksef_accepted_at),
            "ksef_reason": self.ksef_reason,
        }


@dataclass(frozen=True)
class ServiceOrder:
    number: str
    template: str
    contractor: str
    date: date
    description: str
    run_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "template": self.template, "contractor": self.contractor,
                "date": _iso(self.date), "description": self.description,
                "run_id": self.run_id}


@dataclass(frozen=True)
class DunningEntry:
    """One line of a receivable's dunning history (unique per receivable and stage)."""

    date: date
    receivable: str
    contractor: str
    stage: int
    action: str
    created: str
    subject: str
    description: str
    mode: DunningMode
    outcome: DunningOutcome
    run_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"date": _iso(self.date), "receivable": self.receivable,
                "contractor": self.contractor, "stage": self.stage, "action": self.action,
                "created": self.created, "subject": self.subject,
                "description": self.description, "mode": self.mode, "outcome": self.outcome,
                "run_id": self.run_id}


@dataclass(frozen=True)
class PaymentReminder:
    """A payment reminder document (ponaglenie zapłaty) made by a dunning stage."""

    number: str
    receivable: str
    contractor: str
    document: str
    issue_date: date
    due_date: date
    amount: Decimal
    currency: str
    days_overdue: int


@dataclass(frozen=True)
class OutboxEntry:
    """A message an operation decided to send, kept until the server accepted it.

    ``key`` names the effect (unique in the company: ``invoice:FA/1/12/2026``);
    ``idempotency_key`` (run id and key) gives the message its Message-ID or the SMS
    gateway's key, the same on every delivery attempt. ``attachment`` names a document
    to render and attach at delivery (``invoice:NUMBER`` or ``payment_reminder:NUMBER``).
    ``account`` is the e-mail account's code (e-mail only).
    """

    key: str
    operation: str
    channel: OutboxChannel
    to: str
    subject: str
    text: str
    item: str
    run_id: str
    idempotency_key: str
    account: str | None = None
    attachment: str | None = None
    status: OutboxStatus = "pending"
    message_id: str | None = None
    sent_at: datetime | None = None
    error: str | None = None
    attempts: int = 0
    created_at: datetime | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "to": self.to, "subject": self.subject,
                "item": self.item, "run_id": self.run_id, "message_id": self.message_id,
                "status": self.status, "sent_at": _iso(self.sent_at), "error": self.error,
                "key": self.key, "operation": self.operation, "attempts": self.attempts}
