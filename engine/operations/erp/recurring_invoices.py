"""``recurring_invoices``: every active template's periods up to the run's date that
have no invoice yet, oldest first, each once; numbered ``FA/{n}/{MM}/{YYYY}`` or
``FPF/{n}/{MM}/{YYYY}`` per type and month, gap-free, the number taken in the invoice's
own transaction. With KSeF on, what a run issues is sent to KSeF in the same run
(:mod:`engine.operations.erp.ksef_send`), and e-mails wait for KSeF's numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import Field

from engine.erp.document import ErpDocument, Product, RecurringInvoice
from engine.erp.model import Invoice, InvoiceLine
from engine.erp.money import document_amounts, line_net, money_text
from engine.erp.rules import due_periods
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import (
    DEFAULT_INVOICE_TEMPLATE,
    ErpJob,
    OperationParams,
    PlannedAction,
    batches,
    deliver,
    email_account,
    invoice_mail,
    outbox_actions,
)
from engine.operations.erp.ksef_send import (
    KsefPendingError,
    KsefSendParams,
    ksef_settings_of,
    send_to_ksef,
)
from engine.ports.ksef import KsefError, KsefUnavailableError

KIND = "recurring_invoices"


class RecurringInvoicesParams(OperationParams):
    templates: list[str] = Field(default=[], description="Only these templates (all if empty).")
    batch_size: int = Field(default=200, ge=1, le=5000,
                            description="Invoices per transaction of the company database.")
    email_account: str | None = Field(
        default=None, description="Account to send from when the template's operator has "
        "none (default: the first).")
    email_template: str = DEFAULT_INVOICE_TEMPLATE
    attachment: Literal["pdf", "none"] = "pdf"
    ksef_wait_seconds: float = Field(default=60.0, ge=0, le=3600, description=(
        "With KSeF on: how long the run waits for KSeF to accept what it issued before "
        "the attempt ends and is retried (the invoices' e-mails wait for their numbers)."))


@dataclass(frozen=True)
class DueInvoice:
    template: RecurringInvoice
    period: date


def due_invoices(data: ErpDocument, last_periods: Mapping[str, date], today: date,
                 only: list[str]) -> list[DueInvoice]:
    """Every period due by ``today`` and not generated yet, oldest first."""
    due = [
        DueInvoice(template, period)
        for template in data.recurring_invoices
        if template.active and (not only or template.code in only)
        for period in due_periods(template.start, template.every, template.unit,
                                  template.day_of_month, template.end,
                                  after=last_periods.get(template.code), until=today)
    ]
    due.sort(key=lambda item: (item.period, item.template.code))
    return due


def build_invoice(products: Mapping[str, Product], due: DueInvoice, number: str,
                  run_id: str) -> Invoice:
    """The invoice of ``due`` numbered ``number`` (``products`` by code): issue and sale
    date = the period's date, due = issue + payment days."""
    template = due.template
    priced = []
    for line in template.lines:
        product = products[line.product]
        price = line.net_price if line.net_price is not None else product.net_price
        priced.append((product, line.quantity, price))
    amounts = document_amounts([(line_net(quantity, price), product.vat_rate)
                                for product, quantity, price in priced])
    lines = tuple(
        InvoiceLine(product=product.code, name=product.name, quantity=quantity,
                    unit_net_price=price, vat_rate=product.vat_rate, amounts=line_amounts)
        for (product, quantity, price), line_amounts in zip(priced, amounts.lines, strict=True)
    )
    return Invoice(
        number=number, type=template.type, contractor=template.contractor,
        issue_date=due.period, sale_date=due.period,
        due_date=due.period + timedelta(days=template.payment_days),
        currency=template.currency, status="draft" if template.mode == "draft" else "issued",
        template=template.code, period=due.period, lines=lines,
        vat_by_rate=amounts.by_rate, totals=amounts.totals, run_id=run_id,
    )


def series_of(type_: str, period: date) -> str:
    return f"{type_}/{period.month:02d}/{period.year}"


class RecurringInvoices:
    kind = KIND
    params_model = RecurringInvoicesParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def preview(self, job: ErpJob, params: RecurringInvoicesParams) -> list[PlannedAction]:
        actions = outbox_actions(job)
        for due in due_invoices(job.data, job.gateway.last_periods(), job.today,
                                params.templates):
            invoice = build_invoice(job.by_code("products"), due, f"{due.template.type}/?/"
                                    f"{due.period.month:02d}/{due.period.year}", job.run_id)
            actions.append(PlannedAction("invoice", due.template.code, {
                "period": due.period.isoformat(), "type": invoice.type,
                "contractor": invoice.contractor, "status": invoice.status,
                "gross": money_text(invoice.totals.gross), "currency": invoice.currency,
                "send": due.template.mode == "issue_and_send",
            }))
        return actions

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: RecurringInvoicesParams) -> dict[str, int]:
        """Generate the due invoices (their e-mails queued in the same transaction), then
        send what is queued, this run's and what earlier runs left."""
        data = job.data
        if data.recurring_invoices and data.seller is None:
            raise ValueError("the company has no seller data; load the seller first")
        operators = job.by_code("operators")
        due = due_invoices(data, job.gateway.last_periods(), job.today, params.templates)
        made = issued = 0
        for batch in batches(due, params.batch_size):
            job.check_cancelled(f"{made} invoice(s)")
            with job.gateway.transaction() as writer:
                for item in batch:
                    type_ = item.template.type
                    series = series_of(type_, item.period)
                    number = f"{type_}/{writer.next_number(series)}/{series.split('/', 1)[1]}"
                    invoice = build_invoice(job.by_code("products"), item, number, job.run_id)
                    writer.add_invoice(invoice)
                    if item.template.mode != "issue_and_send":
                        continue
                    operator = operators.get(item.template.operator or "")
                    entry = invoice_mail(
                        job, invoice,
                        account=email_account(data, params.email_account, operator),
                        template_code=params.email_template,
                        layout=None if params.attachment == "none"
                        else ("pl" if invoice.currency == "PLN" else "foreign"),
                    )
                    if entry is not None:
                        writer.add_outbox(entry)
            made += len(batch)
            issued += sum(1 for item in batch if item.template.mode != "draft")
        ksef_counts, ksef_error = self._send_to_ksef(job, params)
        delivery = deliver(job)
        delivery.raise_if_retrying()
        if ksef_error is not None:
            raise ksef_error
        counts = {"invoices": made, "issued": issued, "drafts": made - issued,
                  **delivery.counts(), **ksef_counts}
        if ksef_counts.get("ksef_processing") and delivery.held:
            raise KsefPendingError(
                f"{delivery.held} e-mail(s) wait for KSeF to accept their invoices "
                f"({ksef_counts['ksef_processing']} still processing); the next attempt "
                "polls KSeF again and sends them")
        return counts

    def _send_to_ksef(self, job: ErpJob, params: RecurringInvoicesParams
                      ) -> tuple[dict[str, int], KsefError | None]:
        """With KSeF on, send what is issued and wait up to ``ksef_wait_seconds``; an
        error is returned, to be raised once the other e-mails went out."""
        settings = ksef_settings_of(job)
        if settings is None or job.ksef is None:
            return {}, None
        try:
            outcome = send_to_ksef(job, KsefSendParams(wait_seconds=params.ksef_wait_seconds),
                                   settings)
        except KsefError as error:
            return {}, error
        if outcome.unsent:
            return outcome.counts(), KsefUnavailableError(
                f"{len(outcome.unsent)} upload(s) to KSeF got no answer (first: "
                f"{outcome.unsent[0]}); the next attempt looks them up before sending again")
        return outcome.counts(), None
