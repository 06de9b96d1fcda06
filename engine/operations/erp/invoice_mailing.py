"""``invoice_mailing``: every issued invoice or pro forma not sent yet goes to its
contractor's e-mail, with a PDF from the print template for PLN or the one for other
currencies (or none); an invoice is marked sent once the server accepted it. A
contractor without an e-mail gets nothing, and the run's log entry warns. When the
company sends invoices to KSeF, an invoice is e-mailed only once KSeF has accepted it
(counted as ``waiting_ksef`` until then)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.erp.model import Invoice
from engine.erp.money import money_text
from engine.erp.printing import PrintLayout
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import (
    DEFAULT_INVOICE_TEMPLATE,
    INVOICE_KEY,
    ErpJob,
    OperationParams,
    PlannedAction,
    awaiting_ksef,
    batches,
    deliver,
    email_account,
    invoice_mail,
    outbox_actions,
)

KIND = "invoice_mailing"
PrintChoice = Literal["pl", "foreign", "none"]


class InvoiceMailingParams(OperationParams):
    email_account: str | None = Field(default=None, description="Account to send from "
                                      "(default: the first).")
    template: str = Field(default=DEFAULT_INVOICE_TEMPLATE,
                          description="E-mail template (built-in text if none has the code).")
    print_pln: PrintChoice = Field(default="pl", description="Print template of PLN invoices.")
    print_foreign: PrintChoice = Field(default="foreign",
                                       description="Print template of other currencies.")
    batch_size: int = Field(default=500, ge=1, le=5000)


def layout_for(invoice: Invoice, params: InvoiceMailingParams) -> PrintLayout | None:
    choice = params.print_pln if invoice.currency == "PLN" else params.print_foreign
    return None if choice == "none" else choice


class InvoiceMailing:
    kind = KIND
    params_model = InvoiceMailingParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def _unqueued(self, job: ErpJob) -> tuple[list[Invoice], int]:
        """Invoices to queue now, and how many more wait for KSeF to accept them."""
        queued = job.gateway.outbox_keys(INVOICE_KEY)
        waiting = awaiting_ksef(job.gateway)
        unqueued = [invoice for invoice in job.gateway.unsent_invoices()
                    if f"{INVOICE_KEY}{invoice.number}" not in queued]
        return ([invoice for invoice in unqueued if invoice.number not in waiting],
                sum(1 for invoice in unqueued if invoice.number in waiting))

    def preview(self, job: ErpJob, params: InvoiceMailingParams) -> list[PlannedAction]:
        contractors = {entry.code: entry for entry in job.data.contractors}
        return outbox_actions(job) + [
            PlannedAction("email", invoice.number, {
                "contractor": invoice.contractor,
                "to": contractors[invoice.contractor].email
                if invoice.contractor in contractors else None,
                "gross": money_text(invoice.totals.gross), "currency": invoice.currency,
                "attachment": layout_for(invoice, params) or "none"})
            for invoice in self._unqueued(job)[0]
        ]

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: InvoiceMailingParams) -> dict[str, int]:
        account = email_account(job.data, params.email_account)
        queued = 0
        ready, waiting = self._unqueued(job)
        for batch in batches(ready, params.batch_size):
            with job.gateway.transaction() as writer:
                for invoice in batch:
                    entry = invoice_mail(job, invoice, account=account,
                                         template_code=params.template,
                                         layout=layout_for(invoice, params))
                    if entry is not None and writer.add_outbox(entry):
                        queued += 1
        delivery = deliver(job)
        delivery.raise_if_retrying()
        counts = {"queued": queued, **delivery.counts()}
        if waiting:
            counts["waiting_ksef"] = counts.get("waiting_ksef", 0) + waiting
        return counts
