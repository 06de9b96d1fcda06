"""``soa erp``: a company's ERP data: load and export the document, list what the
operations made, preview an operation, dun by hand. Thin commands over
:class:`engine.application.erp.ErpService`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from engine.service_host.cli_support import (
    EXIT_OK,
    context,
    key_value_params,
    local_time,
    new_table,
    parse_as_of,
    print_json,
    print_table,
)

OUTBOX_STATUSES = ("pending", "sent", "failed")


@click.group()
def erp() -> None:
    """A company's ERP data and what the automatic operations made of it."""


@erp.command("schema")
def erp_schema() -> int:
    """Print the JSON Schema of the company data document."""
    from engine.application.erp import document_schema

    print_json(document_schema())
    return EXIT_OK


@erp.command("load")
@click.argument("company")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def erp_load(company: str, file: str, as_json: bool) -> int:
    """Load FILE (a company data document, - for stdin) into COMPANY: upserted by code,
    whole or not at all."""
    if file == "-":
        text = sys.stdin.buffer.read()
    else:
        try:
            text = Path(file).read_bytes()
        except OSError as error:
            raise click.BadParameter(f"{file!r} cannot be read: {error.strerror}",
                                     param_hint="FILE") from None
    counts = context().erp.load(company, text)
    if as_json:
        print_json(counts)
    else:
        done = ", ".join(f"{key} {count}" for key, count in counts.items() if count)
        click.echo(f"loaded into {company.strip()}: {done or 'nothing'}")
    return EXIT_OK


@erp.command("export")
@click.argument("company")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def erp_export(company: str, output: str | None) -> int:
    """Print COMPANY's data as a document that loads back to the same state (secrets are
    never exported; a null secret keeps the stored one when loaded)."""
    import json

    text = json.dumps(context().erp.export(company), ensure_ascii=False, indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    return EXIT_OK


@erp.command("invoices")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_invoices(company: str, as_json: bool) -> int:
    """List COMPANY's invoices."""
    listed = context().erp.invoices(company)
    if as_json:
        print_json([invoice.as_json() for invoice in listed])
        return EXIT_OK
    with_ksef = any(invoice.ksef_status for invoice in listed)
    table = new_table("number", "contractor", "issued", "due", "status", "net", "VAT",
                      "gross", "template", "sent", *(("KSeF",) if with_ksef else ()))
    for invoice in listed:
        totals = invoice.totals.as_json()
        table.add_row(invoice.number, invoice.contractor, str(invoice.issue_date),
                      str(invoice.due_date), invoice.status, totals["net"], totals["vat"],
                      f"{totals['gross']} {invoice.currency}", invoice.template or "",
                      local_time(invoice.sent_at),
                      *((invoice.ksef_number or invoice.ksef_status or "",)
                        if with_ksef else ()))
    print_table(table)
    return EXIT_OK


@erp.command("sales-orders")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_sales_orders(company: str, as_json: bool) -> int:
    """List COMPANY's customer orders and reservations (those brought in from partners
    among them)."""
    listed = context().erp.sales_orders(company)
    if as_json:
        print_json([order.model_dump(mode="json") for order in listed])
        return EXIT_OK
    table = new_table("number", "date", "contractor", "partner", "partner order", "lines",
                      "payment", "status")
    for order in listed:
        table.add_row(order.number, str(order.date), order.contractor, order.partner or "",
                      order.partner_order_id or "", str(len(order.lines)), order.payment_form,
                      order.status)
    print_table(table)
    return EXIT_OK


@erp.command("service-orders")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_service_orders(company: str, as_json: bool) -> int:
    """List COMPANY's service orders."""
    listed = context().erp.service_orders(company)
    if as_json:
        print_json([order.as_json() for order in listed])
        return EXIT_OK
    table = new_table("number", "template", "contractor", "date", "description")
    for order in listed:
        table.add_row(order.number, order.template, order.contractor, str(order.date),
                      order.description)
    print_table(table)
    return EXIT_OK


@erp.command("dunning-history")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_dunning_history(company: str, as_json: bool) -> int:
    """List COMPANY's dunning history."""
    listed = context().erp.dunning_history(company)
    if as_json:
        print_json([entry.as_json() for entry in listed])
        return EXIT_OK
    table = new_table("date", "receivable", "contractor", "stage", "action", "created",
                      "subject", "mode", "outcome")
    for entry in listed:
        table.add_row(str(entry.date), entry.receivable, entry.contractor, str(entry.stage),
                      entry.action, entry.created, entry.subject, entry.mode, entry.outcome)
    print_table(table)
    return EXIT_OK


@erp.command("outbox")
@click.argument("company")
@click.option("--status", type=click.Choice(OUTBOX_STATUSES), help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_outbox(company: str, status: str | None, as_json: bool) -> int:
    """List the messages COMPANY's operations sent or will send."""
    listed = context().erp.outbox(company, status)
    if as_json:
        print_json([entry.as_json() for entry in listed])
        return EXIT_OK
    table = new_table("channel", "to", "subject", "item", "status", "sent", "error")
    for entry in listed:
        table.add_row(entry.channel, entry.to, entry.subject, entry.item, entry.status,
                      local_time(entry.sent_at), entry.error or "")
    print_table(table)
    return EXIT_OK


@erp.command("preview")
@click.argument("company")
@click.argument("kind")
@click.option("--as-of", callback=parse_as_of, help="As of this instant (ISO 8601; Polish "
              "time without an offset) [default: now].")
@click.option("--param", "params", multiple=True, help="A parameter of the kind: KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_preview(company: str, kind: str, as_of: datetime | None, params: tuple[str, ...],
                as_json: bool) -> int:
    """Show what a run of KIND on COMPANY would do; nothing is written or sent."""
    actions = context().erp.preview(company, kind, as_of=as_of, params=key_value_params(params))
    if as_json:
        print_json(actions)
        return EXIT_OK
    if not actions:
        click.echo("nothing to do")
        return EXIT_OK
    table = new_table("action", "item", "details")
    for action in actions:
        details = ", ".join(f"{key}={value}" for key, value in action.items()
                            if key not in ("action", "item"))
        table.add_row(action["action"], action["item"], details)
    print_table(table)
    return EXIT_OK


@erp.command("dun")
@click.argument("company")
@click.option("--stage", type=int, required=True, help="The stage to run (from 1).")
@click.option("--contractor", help="Only this contractor's receivables.")
@click.option("--as-of", callback=parse_as_of, help="As of this instant [default: now].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def erp_dun(company: str, stage: int, contractor: str | None, as_of: datetime | None,
            as_json: bool) -> int:
    """Run a dunning stage by hand for the unpaid receivables that have not had it."""
    counts, warnings = context().erp.dun(company, stage=stage, contractor=contractor,
                                         as_of=as_of)
    result: dict[str, Any] = {**counts, "warnings": warnings}
    if as_json:
        print_json(result)
        return EXIT_OK
    click.echo(", ".join(f"{key} {value}" for key, value in counts.items()))
    for warning in warnings:
        click.echo(f"warning: {warning}")
    return EXIT_OK
