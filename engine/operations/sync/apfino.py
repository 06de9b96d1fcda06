"""``sync_apfino``: issued invoices and their payments out to Apfino (invoice financing),
payment links back for the invoices that qualify (contract: docs/partners/apfino.md).

- Invoices: an issued invoice added or changed since the last accepted batch is sent
  (``POST /invoices``, upsert by number) with its remaining amount (gross less the
  payments whose document it is) and its status (unpaid, partially_paid, paid). Drafts
  are not sent.
- Payments: a payment whose document is an invoice is sent (``POST /payments``, upsert
  by id), and its invoices are sent again in the same batch with their new remaining
  amount. Apfino has no deletes: deleted invoices and payments are only counted.
- Payment links: after the exports, each invoice that qualifies and has no link yet is
  asked for one (``POST /payment-links``, batches of the partner's batch size, keys the
  same on a rerun); each answer is stored as the invoice's payment link. An invoice
  qualifies when it is issued, in PLN, unsettled, paid by transfer (the company's seller
  has a bank account), not split payment (setting ``split_payment_invoices``: the data
  model has no such flag yet) and its gross is at most ``max_amount``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Literal

from pydantic import Field

from engine.erp.gateway import ErpGateway
from engine.erp.model import Invoice
from engine.erp.money import money_text
from engine.erp.trade import Payment, PaymentLink
from engine.operations.sync.core import Export, PartnerSettings, PartnerSync, SyncJob

PARTNER: Literal["apfino"] = "apfino"
LINK_CURRENCY = "PLN"


class ApfinoSettings(PartnerSettings):
    max_amount: Decimal = Field(default=Decimal("15000.00"), gt=0, decimal_places=2,
                                description="Largest gross amount of an invoice that gets "
                                "a payment link.")
    split_payment_invoices: list[str] = Field(
        default_factory=list, description="Numbers of the invoices under split payment "
        "(sent with split_payment true, never given a link).")
    payment_links: bool = Field(default=True, description="Ask for payment links.")



class ApfinoSync(PartnerSync):
    partner = PARTNER
    settings_model = ApfinoSettings

    def __init__(self) -> None:
        self._bank_accounts: dict[str, str] = {}
        """The seller's bank account per run id, read once per run."""

    def synchronise(self, job: SyncJob) -> None:
        try:
            super().synchronise(job)
        finally:
            self._bank_accounts.pop(job.run_id, None)

    def _bank_account(self, job: SyncJob) -> str:
        if job.run_id not in self._bank_accounts:
            self._bank_accounts[job.run_id] = seller_bank_account(job)
        return self._bank_accounts[job.run_id]

    def exports(self) -> list[Export]:
        return [Export("invoices", ("invoice",), self._send_invoices),
                Export("payments", ("payment",), self._send_payments)]

    # -- invoices and payments out --------------------------------------------------------

    def _send_invoices(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        job.counts["deletions_not_sent"] += len(deleted)
        issued = [invoice for invoice in job.gateway.invoices_of(upserted)
                  if invoice.status == "issued"]
        return self._post_invoices(job, issued, key + "/invoices")

    def _send_payments(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        job.counts["deletions_not_sent"] += len(deleted)
        payments: list[Payment] = job.gateway.records("payments", upserted)
        numbers = list(dict.fromkeys(p.document for p in payments if p.document))
        invoices = {invoice.number: invoice for invoice in job.gateway.invoices_of(numbers)
                    if invoice.status == "issued"}
        of_invoices = [p for p in payments if p.document in invoices]
        if not of_invoices:
            return 0
        job.http.send("POST", "/payments", {"payments": [
            {"id": payment.id, "invoice": payment.document, "date": payment.date.isoformat(),
             "amount": money_text(payment.amount)} for payment in of_invoices]},
            idempotency_key=key + "/payments")
        paid = list(dict.fromkeys(str(p.document) for p in of_invoices))
        self._post_invoices(job, [invoices[number] for number in paid], key + "/invoices")
        return len(of_invoices)

    def _post_invoices(self, job: SyncJob, invoices: list[Invoice], key: str) -> int:
        if not invoices:
            return 0
        settings: ApfinoSettings = job.settings
        paid = paid_amounts(job)
        transfer = bool(self._bank_account(job))
        contractors = {contractor.code: contractor for contractor in
                       job.gateway.contractors_of(list({i.contractor for i in invoices}))}
        body = []
        for invoice in invoices:
            contractor = contractors.get(invoice.contractor)
            gross = invoice.totals.gross
            remaining = max(gross - paid.get(invoice.number, Decimal(0)), Decimal(0))
            body.append({
                "number": invoice.number,
                "contractor": {"code": invoice.contractor,
                               "name": contractor.name if contractor else invoice.contractor,
                               "nip": contractor.nip if contractor else None},
                "issue_date": invoice.issue_date.isoformat(),
                "due_date": invoice.due_date.isoformat(),
                "gross": money_text(gross), "remaining": money_text(remaining),
                "currency": invoice.currency,
                "payment_form": "przelew" if transfer else "gotówka",
                "split_payment": invoice.number in settings.split_payment_invoices,
                "status": "paid" if remaining == 0 else
                "unpaid" if remaining == gross else "partially_paid"})
        job.http.send("POST", "/invoices", {"invoices": body}, idempotency_key=key)
        job.counts["invoices_sent"] += len(body)
        return len(body)

    # -- payment links back ---------------------------------------------------------------

    def after_imports(self, job: SyncJob) -> None:
        """Ask for the links the qualifying invoices lack and store each answer."""
        settings: ApfinoSettings = job.settings
        if not settings.payment_links:
            return
        if not self._bank_account(job):
            return  # not paid by transfer to a bank account: no invoice qualifies
        linked = {link.invoice for link in job.gateway.all_records("payment_links")}
        paid = paid_amounts(job)
        wanted = [invoice.number for invoice in issued_invoices(job)
                  if invoice.number not in linked and qualifies(settings, invoice, paid)]
        size = job.connection.batch_size
        for start in range(0, len(wanted), size):
            job.check_cancelled()
            batch = wanted[start:start + size]
            digest = hashlib.sha256("\n".join(batch).encode()).hexdigest()[:24]
            answer = job.http.send("POST", "/payment-links", {"invoices": batch},
                                   idempotency_key=job.key("links", digest)) or {}
            with job.gateway.importing() as writer:
                for link in answer.get("links") or []:
                    try:
                        writer.put("payment_links", PaymentLink(
                            invoice=str(link["invoice"]), url=str(link["url"]),
                            expires_at=link.get("expires_at")))
                    except (KeyError, ValueError):
                        job.warn(f"Apfino's payment link for invoice "
                                 f"{str(link.get('invoice'))[:40]!r} was not usable")
                        continue
                    job.counts["payment_links"] += 1
            unknown = [str(number) for number in answer.get("unknown") or []]
            if unknown:
                job.warn(f"Apfino does not know {len(unknown)} invoice(s) asked a payment "
                         f"link for, such as {unknown[0][:40]}; asked again next run")
                job.counts["links_unknown"] += len(unknown)


def qualifies(settings: ApfinoSettings, invoice: Invoice, paid: dict[str, Decimal]) -> bool:
    """Whether ``invoice`` gets a payment link (the seller's bank account is checked
    apart)."""
    gross = invoice.totals.gross
    return (invoice.status == "issued" and invoice.currency == LINK_CURRENCY
            and paid.get(invoice.number, Decimal(0)) < gross
            and invoice.number not in settings.split_payment_invoices
            and gross <= settings.max_amount)


def paid_amounts(job: SyncJob) -> dict[str, Decimal]:
    """The sum of the payments per document they pay."""
    paid: defaultdict[str, Decimal] = defaultdict(Decimal)
    for payment in job.gateway.all_records("payments"):
        if payment.document:
            paid[payment.document] += payment.amount
    return dict(paid)


def seller_bank_account(job: SyncJob) -> str:
    """The company's bank account ('' if none, or if the gateway gives no company data)."""
    gateway = job.gateway
    if not isinstance(gateway, ErpGateway):
        return ""
    seller = gateway.data().seller
    return "" if seller is None else seller.bank_account.strip()


def issued_invoices(job: SyncJob) -> Iterator[Invoice]:
    """Every issued invoice, found through the change log (each invoice added has an
    ``invoice`` change)."""
    after = 0
    size = job.connection.batch_size
    while True:
        changes = job.gateway.changes(("invoice",), after, size)
        if not changes:
            return
        numbers: Sequence[str] = [change.key for change in changes if not change.deleted]
        yield from (invoice for invoice in job.gateway.invoices_of(numbers)
                    if invoice.status == "issued")
        after = changes[-1].seq
