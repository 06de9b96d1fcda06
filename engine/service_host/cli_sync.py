"""``soa sync``: the partner synchronisations of a company: configure a partner, log in
to wszystko.pl, show their state, ask for a full synchronisation. Thin commands over
:class:`engine.application.sync.SyncService`."""

from __future__ import annotations

import sys

import click

from engine.service_host.cli_support import (
    EXIT_OK,
    context,
    key_value_params,
    local_time,
    new_table,
    print_json,
    print_table,
)

PARTNER_NAMES = ("wszystkopl", "esklep", "detal", "mobile", "xl", "hrm", "apfino")


@click.group()
def sync() -> None:
    """Synchronisations with e-Sklep, Optima Detal, Mobile Sprzedaż, ERP XL, HRM, Apfino
    and wszystko.pl."""


@sync.command("configure")
@click.argument("company")
@click.argument("partner", type=click.Choice(PARTNER_NAMES))
@click.option("--url", required=True, help="The partner's base URL.")
@click.option("--credential-stdin", is_flag=True,
              help="Read the API key or token from standard input (stored encrypted).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A setting of the partner (docs/partners/PARTNER.md); repeatable.")
@click.option("--batch-size", type=click.IntRange(1, 5000), help="Items per request.")
@click.option("--rate-limit", type=click.FloatRange(min=0.01, max=10_000),
              help="Requests per second at most.")
def sync_configure(company: str, partner: str, url: str, credential_stdin: bool,
                   sets: tuple[str, ...], batch_size: int | None,
                   rate_limit: float | None) -> int:
    """Set how COMPANY reaches PARTNER; settings given are merged into the stored ones."""
    credential = None
    if credential_stdin:
        credential = sys.stdin.readline().strip()
        if not credential:
            raise click.BadParameter("standard input gave no credential",
                                     param_hint="--credential-stdin")
    settings = {key: str(value) for key, value in key_value_params(sets, "--set").items()}
    context().sync.configure(company, partner, url=url, credential=credential,
                             settings=settings, batch_size=batch_size, rate_limit=rate_limit)
    click.echo(f"{partner} configured for {company.strip()}"
               + ("; its credential is stored encrypted" if credential else ""))
    return EXIT_OK


@sync.command("login")
@click.argument("company")
@click.argument("partner", type=click.Choice(PARTNER_NAMES))
def sync_login(company: str, partner: str) -> int:
    """Log COMPANY in to PARTNER with a device code (wszystko.pl): approve the device at
    the address printed; the tokens are stored encrypted."""
    def show(address: str) -> None:
        click.echo(f"approve this device at {address} (waiting...)")

    context().sync.login(company, partner, show=show)
    click.echo(f"{partner} logged in for {company.strip()}")
    return EXIT_OK


@sync.command("status")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync_status(company: str, as_json: bool) -> int:
    """Per partner: last full and differential synchronisation, counts, watermark, last
    error."""
    statuses = context().sync.statuses(company)
    if as_json:
        print_json([status.as_json() for status in statuses])
        return EXIT_OK
    table = new_table("partner", "last full", "last differential", "sent", "received",
                      "watermark", "last error")
    for status in statuses:
        table.add_row(status.partner, local_time(status.last_full),
                      local_time(status.last_differential), str(status.sent),
                      str(status.received),
                      ", ".join(f"{key}={value}" for key, value in status.watermark.items()),
                      (status.last_error or "")
                      + (" (full requested)" if status.full_requested else ""))
    print_table(table)
    return EXIT_OK


@sync.command("reset")
@click.argument("company")
@click.argument("partner", type=click.Choice(PARTNER_NAMES))
def sync_reset(company: str, partner: str) -> int:
    """Ask for a full synchronisation of PARTNER at its next run."""
    context().sync.reset(company, partner)
    click.echo(f"the next {partner} synchronisation of {company.strip()} will be a full one")
    return EXIT_OK
