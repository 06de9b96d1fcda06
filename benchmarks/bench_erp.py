"""ERP operations at volume: recurring invoices, invoice mailing and dunning, each beside a
plain peer doing the same writes or sends without the engine.

Run from the repository root::

    .venv/bin/python benchmarks/bench_erp.py               # full run (SQLite + PostgreSQL)
    .venv/bin/python benchmarks/bench_erp.py --quick       # smoke run: 1 repeat, 1/10 sizes
    .venv/bin/python benchmarks/bench_erp.py --repeats 5   # more rounds

1. ``recurring_invoices``: one ``RecurringInvoices().execute`` making 10,000 invoices of 3
   lines (10,000 monthly templates, one due period each, mode ``issue``), on a SQLite file
   and on a fresh PostgreSQL database; peer: SQLAlchemy Core inserting the same rows
   (invoice, 3 lines, a numbering counter update per invoice) in transactions of 200.
2. ``invoice_mailing``: one ``InvoiceMailing().execute`` mailing 2,000 issued invoices with
   their PDF; peer: render the same 2,000 PDFs with ``FpdfDocumentPrinter`` and send each
   with ``smtplib`` over one connection.
3. ``dunning``: one ``Dunning().execute`` over 10,000 overdue receivables with one e-mail
   stage (history line + outbox entry + sending); peer: ``smtplib`` sending 10,000 of the
   same mails over one connection.

Every measurement (engine or peer) runs in a fresh process (this script with a hidden
``--worker`` option), which reports its time and its peak RSS. The SMTP server is a
minimal aiosmtpd server that discards what it gets, in a process of its own.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import importlib
import json
import os
import platform
import resource
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.support, for the PostgreSQL database
    sys.path.insert(0, str(REPO))

EXAMPLE = REPO / "examples" / "company" / "firma-demo.json"
WARSAW = ZoneInfo("Europe/Warsaw")
INSTANT = datetime(2026, 11, 20, 12, 0, tzinfo=WARSAW)
"""The run's instant: the templates' first period (2026-11-10) is due, the next is not;
every receivable is at least five days past its due date."""
PERIOD_START = date(2026, 11, 10)
SERIES = "FA/11/2026"
CONTRACTORS = 100
BATCH = 200
SENDER = "biuro@zolw.example.pl"

SCENARIOS = ("recurring_invoices", "invoice_mailing", "dunning")
FULL_SIZES = {"recurring_invoices": 10_000, "invoice_mailing": 2_000, "dunning": 10_000}
UNITS = {"recurring_invoices": "invoices", "invoice_mailing": "mails", "dunning": "actions"}
PEERS = {
    "recurring_invoices": "SQLAlchemy Core: same rows, counter per invoice, 200 per transaction",
    "invoice_mailing": "FpdfDocumentPrinter + smtplib, one connection",
    "dunning": "smtplib, same mails, one connection",
}


@dataclass(frozen=True)
class Target:
    rate: float | None
    """Engine items/s at least (None: no rate target)."""
    ratio: float
    """Engine time / peer time at most."""


def target_for(scenario: str, kind: str) -> Target:
    if scenario == "recurring_invoices":
        return Target(1_000.0 if kind == "SQLite" else None, 3.0)
    if scenario == "invoice_mailing":
        return Target(None, 1.5)
    return Target(500.0, 1.5)


def say(message: str = "") -> None:
    print(message, flush=True)


def peak_rss_mb() -> float:
    """Peak RSS of this process so far (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the company data --------------------------------------------------------------------


def contractor_code(index: int) -> str:
    return f"K{index % CONTRACTORS:03d}"


def contractor_json(index: int) -> dict[str, Any]:
    return {"code": contractor_code(index), "name": f"Klient {index:03d} Sp. z o.o.",
            "email": f"faktury@klient{index:03d}.example.pl",
            "address": f"ul. Długa {index + 1}, 00-{index:03d} Warszawa"}


TEMPLATE_LINES = [
    {"product": "ABON-IT", "quantity": "1"},
    {"product": "HOSTING", "quantity": "3"},
    {"product": "SZKOLENIE", "quantity": "2.5"},
]


def recurring_json(index: int) -> dict[str, Any]:
    return {"code": f"ABON-{index:05d}", "name": f"Abonament {index:05d}", "type": "FA",
            "contractor": contractor_code(index), "currency": "PLN",
            "lines": TEMPLATE_LINES, "every": 1, "unit": "month",
            "start": PERIOD_START.isoformat(), "payment_days": 14, "mode": "issue",
            "operator": "ADMIN"}


def receivable_json(index: int) -> dict[str, Any]:
    due = date(2026, 10, 15) + timedelta(days=index % 30)
    amount = f"{100 + index % 900}.{index % 100:02d}"
    return {"id": f"R-{index:05d}", "contractor": contractor_code(index),
            "document": f"FA/{index + 1}/10/2026", "issue_date": "2026-10-01",
            "due_date": due.isoformat(), "amount": amount, "remaining": amount,
            "currency": "PLN"}


BENCH_SCHEME = {"code": "BENCH", "name": "Benchmark", "default": True, "skip_up_to": "0.00",
                "stages": [{"days": 1, "action": "email", "template": "PRZYPOMNIENIE"}]}


def company_document(scenario: str, size: int, smtp_port: int) -> dict[str, Any]:
    """The example company with 100 contractors (all with an e-mail) and, by scenario,
    ``size`` recurring invoice templates or ``size`` overdue receivables."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["email_accounts"][0]["smtp_port"] = smtp_port
    document["contractors"] = [contractor_json(index) for index in range(CONTRACTORS)]
    document["recurring_invoices"] = []
    document["receivables"] = []
    document["crm_tasks"] = []
    document["service_order_templates"] = []
    document["dunning_schemes"] = [BENCH_SCHEME]
    if scenario == "dunning":
        document["receivables"] = [receivable_json(index) for index in range(size)]
    else:
        document["recurring_invoices"] = [recurring_json(index) for index in range(size)]
    return document


def template_text(document: dict[str, Any], code: str) -> tuple[str, str]:
    for template in document["templates"]:
        if template["code"] == code:
            return str(template["subject"]), str(template["body"])
    raise KeyError(code)


# -- the SMTP server (its own process) ---------------------------------------------------


def smtp_server_main() -> int:
    """A plain SMTP server on 127.0.0.1 that accepts and discards every mail. Prints its
    port, serves until stdin closes, then prints how many mails it took."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    received = {"mails": 0}

    class Discard:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            received["mails"] += 1
            return "250 OK discarded"

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])

    class BoundController(Controller):
        """On the socket bound above (port 0 picks a free port)."""

        def _create_server(self) -> Any:
            server: Any = self.loop.create_server(self._factory_invoker, sock=sock,
                                                  ssl=self.ssl_context)
            return server

    controller = BoundController(Discard(), hostname="127.0.0.1", port=port)
    controller.start()  # serves from its own thread and event loop
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()
    print(received["mails"], flush=True)
    return 0


class SmtpServer:
    """The discarding SMTP server in a child process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--smtp-server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError(f"the SMTP server did not start (got {line!r})")
        self.port = int(line)

    def stop(self) -> int | None:
        """Stop it; return how many mails it received."""
        try:
            out, _ = self.process.communicate(input="", timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None
        lines = out.strip().splitlines()
        return int(lines[-1]) if lines and lines[-1].isdigit() else None


# -- workers: one measurement per process ------------------------------------------------


@dataclass
class Timed:
    """What a worker measured."""

    seconds: float
    items: int
    spent: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def measure(config: dict[str, Any], run: Callable[[], Timed]) -> dict[str, Any]:
    """Run the timed part (under cProfile if asked); add the peak RSS."""
    rss_before = peak_rss_mb()
    profile_path = config.get("profile")
    if profile_path:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            timed = run()
        finally:
            profiler.disable()
            profiler.dump_stats(profile_path)
    else:
        timed = run()
    return {"seconds": timed.seconds, "items": timed.items, "spent": timed.spent,
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(), **timed.extra}


def _engine_gateway(config: dict[str, Any]) -> Any:
    from engine.adapters.erp_sqlalchemy import SqlErpGateway
    from engine.adapters.secret_box import SecretBox
    from engine.adapters.sql import create_sql_engine

    engine = create_sql_engine(config["url"])
    return SqlErpGateway(engine, SecretBox.from_home(Path(config["home"]), None))


def prepare_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Load the company data (and, for invoice_mailing, issue the invoices) into the
    store, as the engine would; nothing here is timed."""
    from engine.application.erp import parse_document
    from engine.erp.references import check_references
    from engine.operations.erp.common import ErpJob
    from engine.operations.erp.recurring_invoices import (
        RecurringInvoices,
        RecurringInvoicesParams,
    )

    begun = time.perf_counter()
    gateway = _engine_gateway(config)
    document = parse_document(json.dumps(
        company_document(config["scenario"], config["size"], config["smtp_port"])))
    check_references(document, gateway.codes())
    gateway.load(document)
    loaded = time.perf_counter()
    if config["scenario"] == "invoice_mailing":
        job = ErpJob(kind="recurring_invoices", run_id="bench-prepare", instant=INSTANT,
                     gateway=gateway)
        made = RecurringInvoices().execute(job, RecurringInvoicesParams())
        assert made["invoices"] == config["size"], made
    gateway.engine.dispose()
    return {"load_seconds": loaded - begun, "prepare_seconds": time.perf_counter() - begun}


def warm_printer(printer: Any) -> None:
    """Render one invoice of the example company, so the fonts are parsed (once per
    process) before the timing starts."""
    from engine.application.erp import parse_document
    from engine.operations.erp.recurring_invoices import DueInvoice, build_invoice

    data = parse_document(EXAMPLE.read_bytes())
    assert data.seller is not None
    products = {product.code: product for product in data.products}
    invoice = build_invoice(products, DueInvoice(data.recurring_invoices[0], PERIOD_START),
                            "FA/0/11/2026", "warm-up")
    buyer = next(entry for entry in data.contractors if entry.code == invoice.contractor)
    printer.invoice(invoice, data.seller, buyer, "pl")


def engine_worker(config: dict[str, Any]) -> dict[str, Any]:
    """One execute of the scenario's operation on the prepared store."""
    from engine.adapters.mail_smtp import SmtpMailSender
    from engine.adapters.pdf_fpdf import FpdfDocumentPrinter
    from engine.operations.erp.common import ErpJob
    from engine.operations.erp.dunning import Dunning, DunningParams
    from engine.operations.erp.invoice_mailing import InvoiceMailing, InvoiceMailingParams
    from engine.operations.erp.recurring_invoices import (
        RecurringInvoices,
        RecurringInvoicesParams,
    )

    scenario, size = config["scenario"], config["size"]
    gateway = _engine_gateway(config)
    printer = FpdfDocumentPrinter()
    if scenario == "invoice_mailing":
        warm_printer(printer)
    warnings: list[str] = []
    job = ErpJob(kind=scenario, run_id=f"bench-{scenario}", instant=INSTANT, gateway=gateway,
                 mail=SmtpMailSender(timeout=60), printer=printer, warn=warnings.append)
    operations: dict[str, tuple[Any, Any]] = {
        "recurring_invoices": (RecurringInvoices(), RecurringInvoicesParams()),
        "invoice_mailing": (InvoiceMailing(), InvoiceMailingParams()),
        "dunning": (Dunning(), DunningParams()),
    }
    operation, params = operations[scenario]

    # where the time goes: reading the company data, and delivering the outbox
    spent = {"data read": 0.0, "delivery": 0.0}
    read_data = gateway.data

    def timed_data() -> Any:
        begun = time.perf_counter()
        try:
            return read_data()
        finally:
            spent["data read"] += time.perf_counter() - begun

    gateway.data = timed_data
    module = importlib.import_module(f"engine.operations.erp.{scenario}")
    deliver = module.deliver

    def timed_deliver(job: Any) -> Any:
        begun = time.perf_counter()
        try:
            return deliver(job)
        finally:
            spent["delivery"] += time.perf_counter() - begun

    module.deliver = timed_deliver

    def run() -> Timed:
        begun = time.perf_counter()
        counts = operation.execute(job, params)
        seconds = time.perf_counter() - begun
        spent["recording"] = seconds - spent["data read"] - spent["delivery"]
        return Timed(seconds, size, dict(spent), {"counts": counts})

    result = measure(config, run)
    counts = result["counts"]
    expected = {"recurring_invoices": ("invoices", size), "invoice_mailing": ("sent", size),
                "dunning": ("actions", size)}[scenario]
    if counts.get(expected[0]) != expected[1] or warnings:
        raise RuntimeError(f"{scenario}: expected {expected}, got {counts}; "
                           f"warnings {warnings[:3]}")
    if scenario != "recurring_invoices" and counts.get("sent") != size:
        raise RuntimeError(f"{scenario}: {counts.get('sent')} of {size} sent")
    result["mails_sent"] = counts.get("sent", 0)
    gateway.engine.dispose()
    return result


def plain_recurring_worker(config: dict[str, Any]) -> dict[str, Any]:
    """SQLAlchemy Core on a fresh database of the same kind: per invoice a counter
    update (RETURNING) and the invoice row, its 3 lines in one executemany per
    transaction of 200 invoices; tables like the engine's (keys, unique, index)."""
    from sqlalchemy import (
        JSON,
        Column,
        Date,
        ForeignKey,
        Index,
        Integer,
        MetaData,
        Numeric,
        String,
        Table,
        Text,
        UniqueConstraint,
        bindparam,
        create_engine,
        func,
        insert,
        select,
        update,
    )

    engine = create_engine(config["url"])
    metadata = MetaData()
    invoices = Table(
        "invoices", metadata,
        Column("number", Text, primary_key=True),
        Column("seq", Integer, nullable=False),
        Column("type", String(3), nullable=False),
        Column("contractor", Text, nullable=False),
        Column("issue_date", Date, nullable=False),
        Column("sale_date", Date, nullable=False),
        Column("due_date", Date, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("status", String(6), nullable=False),
        Column("template", Text),
        Column("period", Date),
        Column("net", Numeric(14, 2), nullable=False),
        Column("vat", Numeric(14, 2), nullable=False),
        Column("gross", Numeric(14, 2), nullable=False),
        Column("vat_by_rate", JSON, nullable=False),
        Column("run_id", Text),
        UniqueConstraint("template", "period"),
        Index("invoices_order_idx", "type", "issue_date", "seq"),
    )
    lines = Table(
        "invoice_lines", metadata,
        Column("invoice", Text, ForeignKey("invoices.number"), primary_key=True),
        Column("position", Integer, primary_key=True),
        Column("product", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("quantity", Numeric(14, 4), nullable=False),
        Column("unit_net_price", Numeric(14, 2), nullable=False),
        Column("vat_rate", String(2), nullable=False),
        Column("net", Numeric(14, 2), nullable=False),
        Column("vat", Numeric(14, 2), nullable=False),
        Column("gross", Numeric(14, 2), nullable=False),
    )
    counters = Table(
        "counters", metadata,
        Column("series", Text, primary_key=True),
        Column("last", Integer, nullable=False),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(counters), {"series": SERIES, "last": 0})

    document = company_document("recurring_invoices", config["size"], 25)
    products = {product["code"]: product for product in document["products"]}
    cent = Decimal("0.01")
    inputs = [
        (template["code"], template["contractor"], [
            (product["code"], product["name"], Decimal(line["quantity"]),
             Decimal(product["net_price"]), product["vat_rate"])
            for line in template["lines"] for product in [products[line["product"]]]
        ])
        for template in document["recurring_invoices"]
    ]
    next_number = (update(counters).where(counters.c.series == bindparam("b_series"))
                   .values(last=counters.c.last + 1).returning(counters.c.last))
    add_invoice = insert(invoices)
    add_lines = insert(lines)
    due_date = PERIOD_START + timedelta(days=14)

    def run() -> Timed:
        begun = time.perf_counter()
        for start in range(0, len(inputs), BATCH):
            with engine.begin() as connection:
                line_rows: list[dict[str, Any]] = []
                for code, contractor, items in inputs[start:start + BATCH]:
                    number = connection.execute(next_number,
                                                {"b_series": SERIES}).scalar_one()
                    invoice_number = f"FA/{number}/11/2026"
                    by_rate: dict[str, dict[str, Decimal]] = {}
                    for position, (product, name, quantity, price, rate) in enumerate(items):
                        net = (quantity * price).quantize(cent, ROUND_HALF_UP)
                        fraction = Decimal(0) if rate == "zw" else Decimal(rate) / 100
                        vat = (net * fraction).quantize(cent, ROUND_HALF_UP)
                        sums = by_rate.setdefault(rate, {"net": Decimal(0), "vat": Decimal(0)})
                        sums["net"] += net
                        sums["vat"] += vat
                        line_rows.append({
                            "invoice": invoice_number, "position": position,
                            "product": product, "name": name, "quantity": quantity,
                            "unit_net_price": price, "vat_rate": rate, "net": net, "vat": vat,
                            "gross": net + vat})
                    net_total = sum((sums["net"] for sums in by_rate.values()), Decimal(0))
                    vat_total = sum((sums["vat"] for sums in by_rate.values()), Decimal(0))
                    connection.execute(add_invoice, {
                        "number": invoice_number, "seq": number, "type": "FA",
                        "contractor": contractor, "issue_date": PERIOD_START,
                        "sale_date": PERIOD_START, "due_date": due_date, "currency": "PLN",
                        "status": "issued", "template": code, "period": PERIOD_START,
                        "net": net_total, "vat": vat_total, "gross": net_total + vat_total,
                        "vat_by_rate": {rate: {"net": f"{sums['net']:.2f}",
                                               "vat": f"{sums['vat']:.2f}",
                                               "gross": f"{sums['net'] + sums['vat']:.2f}"}
                                        for rate, sums in by_rate.items()},
                        "run_id": "plain"})
                connection.execute(add_lines, line_rows)
        return Timed(time.perf_counter() - begun, len(inputs))

    result = measure(config, run)
    with engine.connect() as connection:
        made = connection.execute(select(func.count()).select_from(invoices)).scalar_one()
        made_lines = connection.execute(select(func.count()).select_from(lines)).scalar_one()
    if made != config["size"] or made_lines != 3 * config["size"]:
        raise RuntimeError(f"plain recurring_invoices: {made} invoices, {made_lines} lines")
    engine.dispose()
    return result


def _plain_mail(subject: str, body: str, to: str, key: str,
                attachment: tuple[bytes, str] | None = None) -> EmailMessage:
    """A mail as a bare script builds it: the engine's headers, text and attachment."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="zolw.example.pl")
    message["X-SOA-Idempotency-Key"] = key
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    if attachment is not None:
        content, filename = attachment
        message.add_attachment(content, maintype="application", subtype="pdf",
                               filename=filename)
    return message


def plain_mailing_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Render the same invoices' PDFs and send each over one smtplib connection."""
    from engine.adapters.pdf_fpdf import FpdfDocumentPrinter
    from engine.application.erp import parse_document
    from engine.operations.erp.recurring_invoices import build_invoice, due_invoices

    size = config["size"]
    raw = company_document("invoice_mailing", size, config["smtp_port"])
    data = parse_document(json.dumps(raw))
    seller = data.seller
    assert seller is not None
    contractors = {entry.code: entry for entry in data.contractors}
    due = due_invoices(data, {}, INSTANT.date(), [])
    products = {product.code: product for product in data.products}
    invoices = [build_invoice(products, item, f"FA/{number}/11/2026", "plain")
                for number, item in enumerate(due, start=1)]
    assert len(invoices) == size
    subject_template, body_template = template_text(raw, "Faktura dla klienta")
    printer = FpdfDocumentPrinter()
    warm_printer(printer)

    def run() -> Timed:
        begun = time.perf_counter()
        smtp = smtplib.SMTP("127.0.0.1", config["smtp_port"], timeout=60)
        try:
            for invoice in invoices:
                buyer = contractors[invoice.contractor]
                assert buyer.email is not None
                values = {"document_number": invoice.number, "seller_name": seller.name,
                          "amount": f"{invoice.totals.gross:.2f}", "currency": invoice.currency,
                          "due_date": invoice.due_date.isoformat()}
                pdf = printer.invoice(invoice, seller, buyer, "pl")
                message = _plain_mail(subject_template.format_map(values),
                                      body_template.format_map(values), buyer.email,
                                      f"plain/invoice:{invoice.number}",
                                      (pdf, invoice.number.replace("/", "_") + ".pdf"))
                refused = smtp.send_message(message)
                assert not refused, refused
        finally:
            smtp.quit()
        return Timed(time.perf_counter() - begun, len(invoices), extra={"mails_sent": size})

    return measure(config, run)


def plain_dunning_worker(config: dict[str, Any]) -> dict[str, Any]:
    """The dunning stage's mails, each built and sent over one smtplib connection."""
    size = config["size"]
    raw = company_document("dunning", size, config["smtp_port"])
    seller_name = raw["seller"]["name"]
    emails = {entry["code"]: (entry["name"], entry["email"]) for entry in raw["contractors"]}
    receivables = raw["receivables"]
    subject_template, body_template = template_text(raw, "PRZYPOMNIENIE")

    def run() -> Timed:
        begun = time.perf_counter()
        smtp = smtplib.SMTP("127.0.0.1", config["smtp_port"], timeout=60)
        try:
            for receivable in receivables:
                name, address = emails[receivable["contractor"]]
                values = {"contractor_name": name, "document_number": receivable["document"],
                          "amount": receivable["remaining"], "currency": receivable["currency"],
                          "due_date": receivable["due_date"], "seller_name": seller_name}
                message = _plain_mail(subject_template.format_map(values),
                                      body_template.format_map(values), address,
                                      f"plain/dunning:{receivable['id']}:1")
                refused = smtp.send_message(message)
                assert not refused, refused
        finally:
            smtp.quit()
        return Timed(time.perf_counter() - begun, len(receivables),
                     extra={"mails_sent": size})

    return measure(config, run)


def worker_main(config: dict[str, Any]) -> int:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    if config["side"] == "prepare":
        result = prepare_worker(config)
    elif config["side"] == "engine":
        result = engine_worker(config)
    else:
        plain = {"recurring_invoices": plain_recurring_worker,
                 "invoice_mailing": plain_mailing_worker,
                 "dunning": plain_dunning_worker}[config["scenario"]]
        result = plain(config)
    print("RESULT " + json.dumps(result, default=str), flush=True)
    return 0


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)],
        capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {config['scenario']}/{config['side']} on {config['kind']} "
                           f"failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


# -- stores ------------------------------------------------------------------------------


@dataclass
class Store:
    kind: str  # "SQLite" or "PostgreSQL"
    home: Path
    url: str


@contextlib.contextmanager
def fresh_store(kind: str) -> Iterator[Store]:
    """A SQLite file in a fresh temp directory, or a fresh PostgreSQL database (created
    and dropped by tests.support.temporary_postgres_database)."""
    home = Path(tempfile.mkdtemp(prefix="soa_bench_erp_"))
    try:
        if kind == "SQLite":
            yield Store(kind, home, f"sqlite:///{home / 'company.db'}")
        else:
            from tests.support import temporary_postgres_database

            with temporary_postgres_database() as url:
                yield Store(kind, home, url)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def postgres_facts() -> tuple[str | None, str]:
    """(server version and settings, None if unreachable; the reason or the DSN)."""
    from tests.support import POSTGRES_ADMIN_DSN, postgres_unavailable_reason

    reason = postgres_unavailable_reason()
    if reason is not None:
        return None, reason
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_DSN, connect_timeout=5) as connection:
        facts = []
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            row = connection.execute(f"SHOW {name}").fetchone()
            facts.append(f"{name}={row[0] if row else '?'}")
    return ", ".join(facts), POSTGRES_ADMIN_DSN


# -- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    kind: str
    size: int
    engine: list[dict[str, Any]] = field(default_factory=list)
    plain: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def rates(results: list[dict[str, Any]]) -> list[float]:
        return [result["items"] / result["seconds"] for result in results]

    def median_rate(self, side: str) -> float:
        return statistics.median(self.rates(self.engine if side == "engine" else self.plain))

    @property
    def ratio(self) -> float:
        """Engine time / peer time for the same items (from the median rates)."""
        return self.median_rate("plain") / self.median_rate("engine")

    def median_rss(self, side: str) -> float:
        results = self.engine if side == "engine" else self.plain
        return statistics.median(result["peak_rss_mb"] for result in results)


def run_measurements(args: argparse.Namespace, kinds: list[str], smtp_port: int,
                     profile_dir: Path | None) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    peer_results: dict[str, list[dict[str, Any]]] = {}
    scale = 10 if args.quick else 1
    for repetition in range(1, args.repeats + 1):
        for scenario in args.scenarios:
            size = FULL_SIZES[scenario] // scale
            unit = UNITS[scenario]
            store_bound_peer = scenario == "recurring_invoices"
            plan: list[tuple[str, str]] = []  # (side, kind)
            for kind in kinds:
                plan.append(("engine", kind))
                if store_bound_peer:
                    plan.append(("plain", kind))
            if not store_bound_peer:
                plan.append(("plain", "-"))
            if repetition % 2 == 0:  # the other order every second round
                plan.reverse()
            for side, kind in plan:
                config: dict[str, Any] = {"scenario": scenario, "side": side, "kind": kind,
                                          "size": size, "smtp_port": smtp_port}
                if profile_dir is not None:
                    config["profile"] = str(profile_dir / f"{scenario}-{side}-{kind}-"
                                                          f"{repetition}.prof")
                label = f"[{repetition}/{args.repeats}] {scenario} {side:6s} {kind:10s}"
                if kind == "-":
                    result = run_worker(config)
                else:
                    with fresh_store(kind) as store:
                        config.update(url=store.url, home=str(store.home))
                        if side == "engine":
                            prepared = run_worker({**config, "side": "prepare"})
                            say(f"{label} prepared in {prepared['prepare_seconds']:.1f} s "
                                f"(document load {prepared['load_seconds']:.1f} s)")
                        result = run_worker(config)
                rate = result["items"] / result["seconds"]
                say(f"{label} {result['items']:,} {unit} in {result['seconds']:.2f} s: "
                    f"{rate:,.0f} {unit}/s, peak RSS {result['peak_rss_mb']:.0f} MB")
                if side == "engine":
                    row = rows.setdefault((scenario, kind), Row(scenario, kind, size))
                    row.engine.append(result)
                elif store_bound_peer:
                    row = rows.setdefault((scenario, kind), Row(scenario, kind, size))
                    row.plain.append(result)
                else:
                    peer_results.setdefault(scenario, []).append(result)
    ordered = []
    for scenario in args.scenarios:
        for kind in kinds:
            row = rows[(scenario, kind)]
            if scenario in peer_results:
                row.plain = peer_results[scenario]
            ordered.append(row)
    return ordered


def table(header: list[str], rows: list[list[str]], left: int = 2) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()

    say(fmt(header))
    say("  ".join("-" * width for width in widths))
    for line in rows:
        say(fmt(line))


def print_results(rows: list[Row], repeats: int) -> None:
    say(f"=== results: medians of {repeats} round(s); every figure from its own process ===")
    say("")
    lines = []
    for row in rows:
        target = target_for(row.scenario, row.kind)
        engine_rate, plain_rate = row.median_rate("engine"), row.median_rate("plain")
        engine_rates, plain_rates = Row.rates(row.engine), Row.rates(row.plain)
        checks = []
        wanted = []
        if target.rate is not None:
            wanted.append(f">= {target.rate:,.0f}/s")
            checks.append("yes" if engine_rate >= target.rate else "NO")
        wanted.append(f"ratio <= {target.ratio:g}")
        checks.append("yes" if row.ratio <= target.ratio else "NO")
        lines.append([
            row.scenario, row.kind, f"{row.size:,} {UNITS[row.scenario]}",
            f"{engine_rate:,.0f}/s", f"{min(engine_rates):,.0f}-{max(engine_rates):,.0f}",
            f"{plain_rate:,.0f}/s", f"{min(plain_rates):,.0f}-{max(plain_rates):,.0f}",
            f"{row.ratio:.2f}", ", ".join(wanted), ", ".join(checks),
            f"{row.median_rss('engine'):.0f} MB", f"{row.median_rss('plain'):.0f} MB",
        ])
    table(["scenario", "store", "items", "engine", "range", "peer", "range",
           "ratio", "target", "met", "engine RSS", "peer RSS"], lines, left=2)
    say("")
    say("ratio = engine time / peer time for the same items (peer rate / engine rate, "
        "medians); RSS = peak RSS (ru_maxrss) of the measuring process.")
    say("")
    for row in rows:
        spent_keys = list(row.engine[0]["spent"])
        split = ", ".join(
            f"{key} {statistics.median(result['spent'][key] for result in row.engine):.2f} s"
            for key in spent_keys)
        seconds = statistics.median(result["seconds"] for result in row.engine)
        before = statistics.median(result["rss_before_mb"] for result in row.engine)
        say(f"{row.scenario} on {row.kind}: engine {seconds:.2f} s = {split}; RSS "
            f"{before:.0f} MB before the execute (imports, engines), peak "
            f"{row.median_rss('engine'):.0f} MB")
    seen: set[str] = set()
    for row in rows:
        if row.scenario in seen:
            continue
        seen.add(row.scenario)
        seconds = statistics.median(result["seconds"] for result in row.plain)
        say(f"{row.scenario} peer ({PEERS[row.scenario]}): {seconds:.2f} s"
            + ("" if row.scenario == "recurring_invoices" else
               ", the same for both stores (no database)"))


def machine_facts() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import sqlalchemy

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    digest = hashlib.sha256()
    for path in sorted((REPO / "engine").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": package("psycopg"),
        "fpdf2": package("fpdf2"),
        "aiosmtpd": package("aiosmtpd"),
        "engine_source_sha256": digest.hexdigest()[:12],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat and a tenth of the sizes")
    parser.add_argument("--repeats", type=int,
                        help="rounds of every measurement; medians shown (default 3, "
                             "1 with --quick)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated scenarios (default: all three)")
    parser.add_argument("--profile", action="store_true",
                        help="run the timed part of every worker under cProfile (slower) and "
                             "keep the .prof files in a temp directory")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--smtp-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    args.scenarios = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown or args.repeats < 1:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}"
                     if unknown else "--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smtp_server:
        return smtp_server_main()
    if args.worker:
        return worker_main(json.loads(args.worker))

    started = time.perf_counter()
    facts = machine_facts()
    say(f"machine: {facts['cores']} cores ({facts['usable_cores']} usable), "
        f"{facts['platform']}, Python {facts['python']}, SQLite {facts['sqlite']}, "
        f"SQLAlchemy {facts['sqlalchemy']}, psycopg {facts['psycopg']}, fpdf2 "
        f"{facts['fpdf2']}, aiosmtpd {facts['aiosmtpd']}; engine source sha256 "
        f"{facts['engine_source_sha256']}")
    load = os.getloadavg()
    say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work on "
        "the machine skews the figures)")
    kinds = [] if args.no_sqlite else ["SQLite"]
    postgres: str | None = None
    if not args.no_postgres:
        postgres, where = postgres_facts()
        if postgres is None:
            say(f"PostgreSQL SKIPPED: {where}")
        else:
            kinds.append("PostgreSQL")
            say(f"PostgreSQL {postgres} ({where}; a fresh database per measurement)")
    if not kinds:
        say("nothing to measure")
        return 1
    scale = 10 if args.quick else 1
    say("sizes: " + ", ".join(f"{name} {FULL_SIZES[name] // scale:,} {UNITS[name]}"
                              for name in args.scenarios)
        + f"; {args.repeats} round(s){' (--quick)' if args.quick else ''}")
    profile_dir = Path(tempfile.mkdtemp(prefix="bench_erp_profiles_")) if args.profile \
        else None
    if profile_dir is not None:
        say(f"profiling: cProfile files go to {profile_dir} (the figures are slower)")

    server = SmtpServer()
    say(f"SMTP server: aiosmtpd in its own process (pid {server.process.pid}), "
        f"127.0.0.1:{server.port}, discards every mail")
    say("")
    try:
        rows = run_measurements(args, kinds, server.port, profile_dir)
    finally:
        received = server.stop()
    say("")
    expected = sum(result.get("mails_sent", 0) for row in rows for result in row.engine)
    expected += sum(result.get("mails_sent", 0)
                    for scenario in {row.scenario for row in rows}
                    for result in next(row for row in rows if row.scenario == scenario).plain)
    say(f"SMTP server received {received} mails (engine and peers sent {expected:,})")
    say("")
    print_results(rows, args.repeats)
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()
    say("")
    say(f"total run time: {elapsed:.0f} s; load average at the end: {load_end[0]:.2f} "
        f"{load_end[1]:.2f} {load_end[2]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": facts, "postgres": postgres, "quick": args.quick,
            "repeats": args.repeats,
            "rows": [{"scenario": row.scenario, "store": row.kind, "size": row.size,
                      "engine": row.engine, "plain": row.plain,
                      "engine_rate": row.median_rate("engine"),
                      "plain_rate": row.median_rate("plain"), "ratio": row.ratio}
                     for row in rows],
        }, indent=2, default=str))
        say(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
