"""``soa ksef``: a company's connection to KSeF (environment, login by token or
certificate), what was sent and what KSeF answered, reopening a rejected invoice, and an
invoice's UPO. Thin commands over :class:`engine.application.ksef.KsefService`; the
sending itself is the ``ksef_send`` task kind (and the recurring invoices' run)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from engine.service_host.cli_support import (
    EXIT_OK,
    context,
    local_time,
    new_table,
    print_fields,
    print_json,
    print_table,
)

ENVIRONMENTS = ("TEST", "DEMO", "PROD", "URL")


@click.group()
def ksef() -> None:
    """KSeF, Poland's national e-invoicing system: where and how a company sends its
    invoices, and what KSeF answered."""


def _read_stdin_line(option: str, what: str) -> str:
    text = sys.stdin.readline().strip()
    if not text:
        raise click.BadParameter(f"standard input gave no {what}", param_hint=option)
    return text


def _read_pem(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror}",
                                 param_hint=option) from None


@ksef.command("configure")
@click.argument("company")
@click.option("--env", "environment", required=True,
              type=click.Choice(ENVIRONMENTS, case_sensitive=False),
              help="KSeF environment, or URL with --url (such as the simulator's).")
@click.option("--url", help="Base URL for --env URL (the client adds /v2).")
@click.option("--token-stdin", is_flag=True,
              help="Read a KSeF token from standard input (stored encrypted).")
@click.option("--certificate", type=click.Path(dir_okay=False, path_type=Path),
              help="Certificate (PEM) for the XAdES login.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="Its private key (PEM; stored encrypted).")
@click.option("--key-password-stdin", is_flag=True,
              help="Read the private key's password from standard input.")
@click.option("--nip", help="The context NIP (default: the seller's).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Send invoices issued on or after this date (default: kept, else today).")
@click.option("--disable", is_flag=True, help="Keep the settings but send nothing.")
def ksef_configure(company: str, environment: str, url: str | None, token_stdin: bool,
                   certificate: Path | None, key: Path | None, key_password_stdin: bool,
                   nip: str | None, since: datetime | None, disable: bool) -> int:
    """Set how COMPANY reaches KSeF: an environment and a login (a KSeF token, or a
    certificate and key for XAdES). Secrets are stored encrypted and never printed."""
    from engine.adapters.ksef_certificates import KeyPairError, unprotected_key

    if token_stdin and (certificate or key):
        raise click.UsageError("give --token-stdin or --certificate with --key, not both")
    if (certificate is None) != (key is None):
        raise click.UsageError("--certificate and --key go together")
    token = _read_stdin_line("--token-stdin", "KSeF token") if token_stdin else None
    certificate_pem = key_pem = None
    if certificate is not None and key is not None:
        password = (_read_stdin_line("--key-password-stdin", "password")
                    if key_password_stdin else None)
        certificate_pem = _read_pem(certificate, "--certificate").decode("ascii", "replace")
        try:
            key_pem = unprotected_key(_read_pem(key, "--key"), password)
        except KeyPairError as error:
            raise click.BadParameter(str(error), param_hint="--key") from None
    settings = context().ksef.configure(
        company, environment=environment, url=url, token=token,
        certificate_pem=certificate_pem, private_key_pem=key_pem, nip=nip,
        since=None if since is None else since.date(), enabled=not disable)
    click.echo(f"KSeF {settings.environment} ({settings.base_url}) configured for "
               f"{company.strip()}: NIP {settings.nip}, login by {settings.method}, invoices "
               f"issued from {settings.since.isoformat()}"
               + ("; sending is off" if not settings.enabled else ""))
    return EXIT_OK


@ksef.command("enable")
@click.argument("company")
def ksef_enable(company: str) -> int:
    """Send COMPANY's invoices to KSeF again (the stored login is kept)."""
    context().ksef.set_enabled(company, True)
    click.echo(f"KSeF sending is on for {company.strip()}")
    return EXIT_OK


@ksef.command("disable")
@click.argument("company")
def ksef_disable(company: str) -> int:
    """Stop sending COMPANY's invoices to KSeF; e-mails no longer wait for KSeF."""
    context().ksef.set_enabled(company, False)
    click.echo(f"KSeF sending is off for {company.strip()}")
    return EXIT_OK


@ksef.command("status")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ksef_status(company: str, as_json: bool) -> int:
    """The connection (no secrets), counts per KSeF status, and the invoices not
    accepted yet with KSeF's answer."""
    status = context().ksef.status(company)
    if as_json:
        print_json(status)
        return EXIT_OK
    if not status["configured"]:
        click.echo(f"KSeF is not configured for {company.strip()} (soa ksef configure)")
        return EXIT_OK
    settings = status["settings"]
    print_fields({
        "environment": f"{settings['environment']} ({settings['base_url']})",
        "NIP": settings["nip"], "login": settings["method"],
        "sends invoices issued from": settings["since"],
        "sending": "on" if settings["enabled"] else "off",
        **{f"{name} invoices": str(count) for name, count in status["counts"].items()}})
    if status["open"]:
        table = new_table("invoice", "KSeF status", "uploads", "reason")
        for entry in status["open"]:
            table.add_row(entry["invoice"], entry["ksef_status"], str(entry["uploads"]),
                          entry["reason"] or "")
        print_table(table)
    return EXIT_OK


@ksef.command("show")
@click.argument("company")
@click.argument("invoice")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ksef_show(company: str, invoice: str, as_json: bool) -> int:
    """What KSeF answered about INVOICE: number, acceptance time, references, reason."""
    submission = context().ksef.submission(company, invoice)
    if as_json:
        print_json(submission.as_json())
        return EXIT_OK
    print_fields({
        "invoice": submission.invoice,
        "KSeF status": submission.as_json()["ksef_status"],
        "KSeF number": submission.ksef_number or "",
        "accepted": local_time(submission.accepted_at),
        "reason": submission.reason or "", "hash (SHA-256)": submission.invoice_hash,
        "session": submission.session_reference or "",
        "reference": submission.invoice_reference or "", "uploads": str(submission.uploads),
        "UPO": "kept" if submission.upo else "not yet"})
    return EXIT_OK


@ksef.command("upo")
@click.argument("company")
@click.argument("invoice")
def ksef_upo(company: str, invoice: str) -> int:
    """Print the UPO (KSeF's official receipt, XML) of an accepted INVOICE."""
    submission = context().ksef.submission(company, invoice)
    if submission.upo is None:
        raise click.UsageError(f"invoice {invoice} has no UPO yet (KSeF status "
                               f"{submission.as_json()['ksef_status']})")
    click.echo(submission.upo)
    return EXIT_OK


@ksef.command("reopen")
@click.argument("company")
@click.argument("invoice")
def ksef_reopen(company: str, invoice: str) -> int:
    """Send a rejected INVOICE again at the next run, made anew from the current data
    (correct what KSeF refused first, such as the buyer's NIP)."""
    context().ksef.reopen(company, invoice)
    click.echo(f"invoice {invoice} will be made and sent to KSeF again by the next run")
    return EXIT_OK


@ksef.command("record")
@click.argument("company")
@click.argument("invoice")
@click.argument("ksef_number")
def ksef_record(company: str, invoice: str, ksef_number: str) -> int:
    """Record the KSEF_NUMBER of INVOICE when it was sent to KSeF another way (such as
    KSeF's own application, for an invoice the service cannot send): it counts as
    accepted, and its e-mail goes out."""
    submission = context().ksef.record_by_hand(company, invoice, ksef_number)
    click.echo(f"invoice {invoice} recorded as accepted by KSeF as {submission.ksef_number}")
    return EXIT_OK
