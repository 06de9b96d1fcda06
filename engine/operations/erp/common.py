"""What the five ERP operations share: the job of one run, planned actions (what a
preview shows), message building, and delivery of the outbox.

Exactly once: an operation records each effect (an invoice, an order, a dunning line)
together with the outbox entry of its message in one transaction of the company's
database; messages are then handed to the server and each acceptance recorded. An
entry whose acceptance was recorded is never sent again; a crash between acceptance
and its record sends it once more, with the same Message-ID (SMS: the same gateway
idempotency key, so the gateway sends it once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, field_validator

from engine.domain.errors import SoaError
from engine.erp.document import (
    WARSAW,
    Contractor,
    EmailAccount,
    ErpDocument,
    Operator,
    Template,
)
from engine.erp.gateway import ErpGateway
from engine.erp.ksef import KsefLedger
from engine.erp.model import Invoice, OutboxEntry
from engine.erp.money import money_text
from engine.erp.placeholders import render
from engine.erp.printing import DocumentPrinter, PrintLayout
from engine.operations.contract import RunContext
from engine.ports.ksef import KsefClient
from engine.ports.outbound import (
    DeliveryError,
    MailAttachment,
    MailSender,
    MailServer,
    OutboundMail,
    OutboundSms,
    SmsGateway,
    SmsSender,
)

MAX_DELIVERY_ATTEMPTS = 5
"""An outbox entry is tried in this many runs at most, then left ``failed``."""
DEFAULT_INVOICE_TEMPLATE = "Faktura dla klienta"

T = TypeVar("T")


class RunCancelledError(SoaError):
    """Signals that a run stopped early (timeout or host stop); what it recorded stays,
    and the next attempt or run goes on from there."""


class UndeliveredError(SoaError):
    """Signals that some messages were not accepted; they stay in the outbox and are
    sent again by the next attempt or run."""


class OperationParams(BaseModel):
    """Parameters of the ERP operations: every field has a default; a list may be given
    on the command line as comma-separated text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _split_lists(cls, value: Any, info: Any) -> Any:
        annotation = str(cls.model_fields[info.field_name].annotation)
        if isinstance(value, str) and annotation.startswith("list"):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@dataclass(frozen=True)
class PlannedAction:
    """One thing a run would do (what a preview lists): ``action`` such as ``invoice``,
    ``email``, ``sms``, ``skip``; ``item`` what it concerns."""

    action: str
    item: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "item": self.item, **self.details}


@dataclass
class ErpJob:
    """One run of an ERP operation on a company's data (or a manual action)."""

    kind: str
    run_id: str
    instant: datetime
    gateway: ErpGateway
    mail: MailSender | None = None
    sms: SmsSender | None = None
    printer: DocumentPrinter | None = None
    ksef: KsefClient | None = None
    warn: Callable[[str], None] = lambda message: None
    is_cancelled: Callable[[], bool] = lambda: False
    _data: ErpDocument | None = None
    _indexes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: RunContext, kind: str) -> ErpJob:
        resources = ctx.resources
        return cls(kind=kind, run_id=ctx.run_id, instant=ctx.instant, gateway=resources.erp,
                   mail=resources.mail, sms=resources.sms, printer=resources.printer,
                   ksef=resources.ksef,
                   warn=ctx.warn, is_cancelled=ctx.is_cancelled)

    @property
    def data(self) -> ErpDocument:
        """The company's data, read once per job."""
        if self._data is None:
            self._data = self.gateway.data()
        return self._data

    def by_code(self, key: str) -> dict[str, Any]:
        """The entries of the data's list ``key`` (``contractors``, ``templates``, ...) by
        their code, built once per job (operations look them up per item)."""
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = {entry.code: entry for entry in getattr(self.data, key)}
        return index

    @property
    def today(self) -> date:
        return self.instant.astimezone(WARSAW).date()

    def check_cancelled(self, done: str) -> None:
        if self.is_cancelled():
            raise RunCancelledError(f"the run was stopped after {done}; the next attempt "
                                    "goes on from there")


def by_code(entries: Sequence[T], key: Callable[[T], str]) -> dict[str, T]:
    return {key(entry): entry for entry in entries}


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- messages ----------------------------------------------------------------------------

def idempotency_key(run_id: str, key: str) -> str:
    """The message's idempotency key: the run that queued it and what it is about, in
    printable ASCII (codes may hold Polish letters), so a header can carry it."""
    return f"{run_id}/{quote(key, safe=':/@-_.')}"


def base_values(data: ErpDocument) -> dict[str, object]:
    seller = data.seller
    return {"seller_name": seller.name if seller else "",
            "seller_bank_account": seller.bank_account if seller else ""}


def invoice_values(invoice: Invoice, contractor: Contractor | None,
                   data: ErpDocument) -> dict[str, object]:
    return {**base_values(data),
            "contractor_name": contractor.name if contractor else invoice.contractor,
            "contractor_code": invoice.contractor, "document_number": invoice.number,
            "amount": money_text(invoice.totals.gross), "currency": invoice.currency,
            "due_date": invoice.due_date.isoformat(),
            "issue_date": invoice.issue_date.isoformat()}


DEFAULT_INVOICE_SUBJECT = "Faktura {document_number}"
DEFAULT_INVOICE_BODY = (
    "Dzień dobry,\n\nw załączeniu przesyłamy fakturę {document_number} z dnia {issue_date} "
    "na kwotę {amount} {currency}, płatną do {due_date}.\n\nZ poważaniem\n{seller_name}\n"
)


def email_account(data: ErpDocument, wanted: str | None,
                  operator: Operator | None = None) -> EmailAccount | None:
    """The account to send from: the operator's, else ``wanted``, else the first one."""
    accounts = by_code(data.email_accounts, lambda account: account.code)
    for code in (operator.email_account if operator else None, wanted):
        if code is not None and code in accounts:
            return accounts[code]
    return data.email_accounts[0] if data.email_accounts else None


def invoice_mail(job: ErpJob, invoice: Invoice, *, account: EmailAccount | None,
                 template_code: str, layout: PrintLayout | None) -> OutboxEntry | None:
    """The outbox entry that e-mails ``invoice`` to its contractor, keyed
    ``invoice:NUMBER`` (so an invoice is mailed once, whichever operation queues it);
    None, with a warning, if it cannot be sent."""
    data = job.data
    contractor = job.by_code("contractors").get(invoice.contractor)
    if contractor is None or not contractor.email:
        job.warn(f"contractor {invoice.contractor} has no e-mail; invoice {invoice.number} "
                 "was not sent")
        return None
    if account is None:
        job.warn(f"the company has no e-mail account; invoice {invoice.number} was not sent")
        return None
    template = job.by_code("templates").get(template_code)
    subject = template.subject if template and template.subject else DEFAULT_INVOICE_SUBJECT
    body = template.body if template else DEFAULT_INVOICE_BODY
    values = invoice_values(invoice, contractor, data)
    key = f"invoice:{invoice.number}"
    return OutboxEntry(
        key=key, operation=job.kind, channel="email", to=contractor.email,
        subject=render(subject, values), text=render(body, values), item=invoice.number,
        run_id=job.run_id, idempotency_key=idempotency_key(job.run_id, key), account=account.code,
        attachment=None if layout is None else f"invoice:{layout}:{invoice.number}",
    )


def message_entry(job: ErpJob, *, key: str, channel: str, to: str, template: Template | None,
                  default_subject: str, default_body: str, values: Mapping[str, object],
                  item: str, account: EmailAccount | None,
                  attachment: str | None = None) -> OutboxEntry:
    """An outbox entry of ``channel`` from ``template`` (or the defaults)."""
    subject = template.subject if template and template.subject else default_subject
    body = template.body if template else default_body
    return OutboxEntry(
        key=key, operation=job.kind, channel="sms" if channel == "sms" else "email",
        to=to, subject=render(subject, values) if channel == "email" else "",
        text=render(body, values), item=item, run_id=job.run_id,
        idempotency_key=idempotency_key(job.run_id, key),
        account=account.code if account and channel == "email" else None,
        attachment=attachment,
    )


def outbox_actions(job: ErpJob) -> list[PlannedAction]:
    """What the run would send that earlier runs queued and did not get accepted."""
    return [
        PlannedAction("send", entry.item, {"channel": entry.channel, "to": entry.to,
                                           "subject": entry.subject, "queued_by": entry.run_id})
        for entry in job.gateway.outbox_to_deliver(job.kind,
                                                   max_attempts=MAX_DELIVERY_ATTEMPTS)
    ]


# -- delivery ----------------------------------------------------------------------------

@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    """Entries given up (tried :data:`MAX_DELIVERY_ATTEMPTS` times)."""
    retrying: list[str] = field(default_factory=list)
    """Errors of entries that will be tried again."""
    held: int = 0
    """Invoice e-mails kept back until KSeF accepts their invoices."""

    def counts(self) -> dict[str, int]:
        counts = {"sent": self.sent, "send_failed": self.failed + len(self.retrying)}
        if self.held:
            counts["waiting_ksef"] = self.held
        return counts

    def raise_if_retrying(self) -> None:
        if self.retrying:
            raise UndeliveredError(
                f"{len(self.retrying)} message(s) were not accepted (first: "
                f"{self.retrying[0]}); they stay in the outbox and are sent again by the next "
                "attempt or run"
            )


INVOICE_KEY = "invoice:"
"""The outbox key prefix of an invoice's e-mail (``invoice:NUMBER``)."""


def awaiting_ksef(gateway: ErpGateway) -> set[str]:
    """Invoices whose e-mails wait for KSeF's number (none if the data keeps no KSeF
    state, or KSeF is off)."""
    return gateway.awaiting_ksef() if isinstance(gateway, KsefLedger) else set()


def deliver(job: ErpJob) -> Delivery:
    """Send every entry of the job's operation still to send, recording each acceptance
    at once; e-mails of one account share one SMTP session. An invoice's e-mail waits
    while KSeF has not accepted the invoice (KSeF on): it stays queued, counted as
    held."""
    delivery = Delivery()
    entries = job.gateway.outbox_to_deliver(job.kind, max_attempts=MAX_DELIVERY_ATTEMPTS)
    if not entries:
        return delivery
    held = awaiting_ksef(job.gateway) if any(
        entry.key.startswith(INVOICE_KEY) for entry in entries) else set()
    if held:
        kept = [entry for entry in entries if entry.key.removeprefix(INVOICE_KEY) in held]
        delivery.held = len(kept)
        entries = [entry for entry in entries if entry not in kept]
    data = job.data
    accounts = by_code(data.email_accounts, lambda account: account.code)
    with ExitStack() as sessions:
        senders: dict[str, Callable[[OutboundMail], str]] = {}
        for entry in entries:
            job.check_cancelled(f"{delivery.sent} message(s) sent")
            try:
                if entry.channel == "sms":
                    message_id = _send_sms(job, entry)
                else:
                    account = accounts.get(entry.account or "")
                    if account is None:
                        raise DeliveryError(f"e-mail account {entry.account!r} does not exist")
                    if account.code not in senders:
                        if job.mail is None:
                            raise DeliveryError("this host gives operations no mail sender")
                        senders[account.code] = sessions.enter_context(
                            job.mail.session(mail_server(account)))
                    message_id = senders[account.code](_mail(job, entry))
            except DeliveryError as error:
                final = entry.attempts + 1 >= MAX_DELIVERY_ATTEMPTS
                job.gateway.record_delivery_failure(entry.key, error=str(error), final=final)
                if final:
                    delivery.failed += 1
                    job.warn(f"{entry.channel} about {entry.item} to {entry.to} given up after "
                             f"{MAX_DELIVERY_ATTEMPTS} attempts: {error}")
                else:
                    delivery.retrying.append(str(error))
                continue
            job.gateway.record_delivery(entry.key, message_id=message_id,
                                        sent_at=datetime.now().astimezone())
            delivery.sent += 1
    return delivery


def mail_server(account: EmailAccount) -> MailServer:
    return MailServer(
        host=account.smtp_host, port=account.smtp_port, security=account.security,
        sender=account.address, username=account.username,
        password=account.password.get_secret_value() if account.password else None,
    )


def _mail(job: ErpJob, entry: OutboxEntry) -> OutboundMail:
    attachments = () if entry.attachment is None else (_attachment(job, entry.attachment),)
    return OutboundMail(to=(entry.to,), subject=entry.subject, text=entry.text,
                        idempotency_key=entry.idempotency_key, attachments=attachments)


def _attachment(job: ErpJob, spec: str) -> MailAttachment:
    """Render the document ``spec`` names: ``invoice:LAYOUT:NUMBER`` or
    ``payment_reminder:NUMBER``."""
    data = job.data
    if job.printer is None:
        raise DeliveryError("this host gives operations no PDF printer")
    if data.seller is None:
        raise DeliveryError("the company has no seller data to print documents with; "
                            "load the seller first")
    contractors = job.by_code("contractors")
    kind, _, rest = spec.partition(":")
    if kind == "invoice":
        layout, _, number = rest.partition(":")
        invoice = job.gateway.invoice(number)
        if invoice is None or invoice.contractor not in contractors:
            raise DeliveryError(f"invoice {number} to attach does not exist")
        content = job.printer.invoice(invoice, data.seller, contractors[invoice.contractor],
                                      "foreign" if layout == "foreign" else "pl")
    elif kind == "payment_reminder":
        number = rest
        reminder = job.gateway.payment_reminder(number)
        if reminder is None or reminder.contractor not in contractors:
            raise DeliveryError(f"payment reminder {number} to attach does not exist")
        content = job.printer.payment_reminder(reminder, data.seller,
                                               contractors[reminder.contractor])
    else:
        raise DeliveryError(f"attachment {spec!r} is not known")
    return MailAttachment(filename=number.replace("/", "_") + ".pdf", content=content,
                          content_type="application/pdf")


def _send_sms(job: ErpJob, entry: OutboxEntry) -> str:
    gateway = job.data.sms_gateway
    if gateway is None or gateway.token is None:
        raise DeliveryError("the company has no SMS gateway configured (sms_gateway)")
    if job.sms is None:
        raise DeliveryError("this host gives operations no SMS sender")
    return job.sms.send(
        SmsGateway(url=gateway.url, token=gateway.token.get_secret_value(),
                   sender=gateway.sender),
        OutboundSms(to=entry.to, text=entry.text, idempotency_key=entry.idempotency_key),
    )
