"""The five ERP operations on the example company, on SQLite and PostgreSQL, with a real
SMTP server and the SMS gateway simulator on loopback (the mail catcher): what they make,
what they send, that a preview shows what the run then does, and that a rerun does
nothing twice."""

from __future__ import annotations

import email
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy
from pypdf import PdfReader

from engine.adapters.erp_sqlalchemy import SqlErpGateway
from engine.adapters.mail_smtp import SmtpMailSender
from engine.adapters.pdf_fpdf import FpdfDocumentPrinter
from engine.adapters.secret_box import SecretBox
from engine.adapters.sms_http import HttpSmsSender
from engine.application.erp import parse_document
from engine.erp.gateway import ErpGateway
from engine.erp.references import check_references
from engine.operations.erp.common import ErpJob, UndeliveredError
from engine.operations.erp.dunning import Dunning, DunningParams
from engine.operations.erp.invoice_mailing import InvoiceMailing, InvoiceMailingParams
from engine.operations.erp.recurring_invoices import RecurringInvoices, RecurringInvoicesParams
from engine.operations.erp.recurring_orders import RecurringOrders, RecurringOrdersParams
from engine.operations.erp.task_reminders import TaskReminders, TaskRemindersParams
from engine.simulators.mail_catcher import MailCatcher
from tests.support import temporary_postgres_database

EXAMPLE = Path(__file__).parents[2] / "examples" / "company" / "firma-demo.json"
WARSAW = ZoneInfo("Europe/Warsaw")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.fixture(scope="module")
def catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailCatcher]:
    with MailCatcher(0, 0, tmp_path_factory.mktemp("catcher") / "messages.jsonl") as started:
        yield started


@pytest.fixture(scope="module")
def printer() -> FpdfDocumentPrinter:
    return FpdfDocumentPrinter()


@pytest.fixture(scope="module")
def sms_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def example_document(catcher: MailCatcher) -> bytes:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["email_accounts"][0]["smtp_port"] = catcher.smtp_port
    document["sms_gateway"]["url"] = f"http://127.0.0.1:{catcher.sms_port}/sms"
    return json.dumps(document).encode()


@pytest.fixture
def gateway(store_kind: str, tmp_path: Path, catcher: MailCatcher) -> Iterator[ErpGateway]:
    catcher.clear()
    if store_kind == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'company.db'}"])
        context = None
    else:
        context = temporary_postgres_database()
        urls = iter([context.__enter__()])
    engine = sqlalchemy.create_engine(next(urls))
    gateway = SqlErpGateway(engine, SecretBox.from_home(tmp_path / "home", None))
    document = parse_document(example_document(catcher))
    check_references(document, gateway.codes())
    gateway.load(document)
    try:
        yield gateway
    finally:
        engine.dispose()
        if context is not None:
            context.__exit__(None, None, None)


class Runner:
    """Runs operations as a host would: one job per run id, with real senders."""

    def __init__(self, gateway: ErpGateway, printer: FpdfDocumentPrinter,
                 sms_client: httpx.Client) -> None:
        self.gateway = gateway
        self.printer = printer
        self.sms_client = sms_client
        self.warnings: list[str] = []
        self.mail = SmtpMailSender(timeout=10)

    def job(self, kind: str, instant: datetime, run_id: str = "run-1") -> ErpJob:
        return ErpJob(kind=kind, run_id=run_id, instant=instant, gateway=self.gateway,
                      mail=self.mail, sms=HttpSmsSender(self.sms_client),
                      printer=self.printer, warn=self.warnings.append)


@pytest.fixture
def runner(gateway: ErpGateway, printer: FpdfDocumentPrinter,
           sms_client: httpx.Client) -> Runner:
    return Runner(gateway, printer, sms_client)


def mails(catcher: MailCatcher) -> list[dict[str, Any]]:
    return [message for message in catcher.messages() if message["channel"] == "email"]


def sms(catcher: MailCatcher) -> list[dict[str, Any]]:
    return [message for message in catcher.messages() if message["channel"] == "sms"]


def pdf_text(raw: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(raw)).pages)


def test_recurring_invoices_are_numbered_per_type_and_month_and_mailed_once(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    operation = RecurringInvoices()
    params = RecurringInvoicesParams()
    instant = at("2026-12-15T06:00")
    preview = operation.preview(runner.job("recurring_invoices", instant), params)
    counts = operation.execute(runner.job("recurring_invoices", instant), params)

    invoices = gateway.invoices()
    numbers = {(invoice.template, invoice.period.isoformat() if invoice.period else ""):
               invoice.number for invoice in invoices}
    # Check: every due period once, oldest first within each series, gap-free
    assert numbers == {
        ("ABON-GĄSKA", "2026-09-30"): "FA/1/09/2026",
        ("ABON-GĄSKA", "2026-10-31"): "FA/1/10/2026",
        ("HOSTING-ŻABKA", "2026-11-01"): "FA/1/11/2026",
        ("SZKIC-NOWAK", "2026-11-20"): "FA/2/11/2026",
        ("ABON-GĄSKA", "2026-11-30"): "FA/3/11/2026",
        ("HOSTING-ŻABKA", "2026-12-01"): "FA/1/12/2026",
        ("SZKIC-NOWAK", "2026-12-04"): "FA/2/12/2026",
        ("PROFORMA-ACME", "2026-06-10"): "FPF/1/06/2026",
        ("PROFORMA-ACME", "2026-09-10"): "FPF/1/09/2026",
        ("PROFORMA-ACME", "2026-12-10"): "FPF/1/12/2026",
    }
    # Check: the preview listed exactly what the run made
    planned = {(action.item, action.details["period"]) for action in preview
               if action.action == "invoice"}
    assert planned == set(numbers)
    assert counts["invoices"] == 10 and counts["drafts"] == 2 and counts["sent"] == 3

    abonament = gateway.invoice("FA/1/10/2026")
    assert abonament is not None
    totals = abonament.as_json()["totals"]
    assert totals == {"net": "1724.97", "vat": "310.49", "gross": "2035.46"}
    assert abonament.as_json()["vat_by_rate"]["zw"] == {"net": "375.00", "vat": "0.00",
                                                        "gross": "375.00"}
    assert str(abonament.due_date) == "2026-11-14"
    assert abonament.sent_at is not None
    drafts = [invoice for invoice in invoices if invoice.status == "draft"]
    assert {invoice.template for invoice in drafts} == {"SZKIC-NOWAK"}

    sent = mails(catcher)
    assert sorted(message["subject"] for message in sent) == [
        f"Faktura FA/1/{month}/2026 od Serwis Komputerowy Żółw Sp. z o.o."
        for month in ("09", "10")] + ["Faktura FA/3/11/2026 od Serwis Komputerowy Żółw Sp. z o.o."]
    assert all(message["to"] == "faktury@gaska.example.pl" for message in sent)

    # Check: a rerun (another attempt of the same run, or a later run) makes nothing
    again = operation.execute(runner.job("recurring_invoices", instant, "run-2"), params)
    assert again["invoices"] == 0 and again["sent"] == 0
    assert len(gateway.invoices()) == 10 and len(mails(catcher)) == 3


def test_invoice_pdf_reads_back_with_polish_characters(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    RecurringInvoices().execute(runner.job("recurring_invoices", at("2026-10-01T06:00")),
                                RecurringInvoicesParams())
    [raw] = catcher.raw_mails()
    message = email.message_from_bytes(raw)
    attachments = [part for part in message.walk()
                   if part.get_content_type() == "application/pdf"]
    assert [part.get_filename() for part in attachments] == ["FA_1_09_2026.pdf"]
    payload = attachments[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = pdf_text(payload)
    for expected in ("FA/1/09/2026", "Gąska i Synowie s.c.", "Serwis Komputerowy Żółw",
                     "4477127826", "5239384994", "Abonament serwisowy IT", "2035,46"):
        assert expected in text or expected.replace(",", ".") in text, expected
    body = _text_part(message)
    assert "w załączeniu faktura FA/1/09/2026 na kwotę 2035.46 PLN" in body


def _text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def test_dunning_runs_the_most_advanced_due_stage_once_and_skips_the_earlier(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    operation = Dunning()
    params = DunningParams()
    november = at("2026-11-12T07:00")
    preview = operation.preview(runner.job("dunning", november), params)
    counts = operation.execute(runner.job("dunning", november), params)
    # R-2026-101 is 14 days overdue: the payment reminder (stage 3), stages 1-2 skipped
    assert [(action.action, action.item) for action in preview] == [
        ("skip", "R-2026-101"), ("skip", "R-2026-101"), ("payment_reminder", "R-2026-101")]
    assert counts["actions"] == 1 and counts["skipped"] == 2 and counts["sent"] == 1
    history = gateway.dunning_history()
    assert [(entry.stage, entry.outcome) for entry in history] == [
        (1, "skipped"), (2, "skipped"), (3, "done")]
    assert history[2].created == "PZ/1/2026"
    [mail] = mails(catcher)
    assert mail["subject"] == "Ponaglenie zapłaty: FA/17/10/2026"
    assert mail["attachments"] == ["PZ_1_2026.pdf"]

    # a month later: the sales block for R-101 (stage 4 skipped), the CRM task for Żabka
    # under its own scheme, the SMS to Nowak; R-104 is under the skip threshold and
    # R-105 is paid
    december = at("2026-12-15T07:00")
    counts = operation.execute(runner.job("dunning", december, "run-2"), params)
    done = {(entry.receivable, entry.stage): (entry.action, entry.outcome)
            for entry in gateway.dunning_history()}
    assert done[("R-2026-101", 4)] == ("crm_task", "skipped")
    assert done[("R-2026-101", 5)] == ("sales_block", "done")
    assert done[("R-2026-102", 1)] == ("email", "skipped")
    assert done[("R-2026-102", 2)] == ("crm_task", "done")
    assert done[("R-2026-103", 2)] == ("sms", "done")
    assert not any(receivable in ("R-2026-104", "R-2026-105") for receivable, _ in done)
    [text] = sms(catcher)
    assert text["to"] == "+48603400500"
    assert "prosimy o zapłatę 600.00 PLN za FA/9/11/2026" in text["text"]
    blocked = {entry.code: entry.sales_blocked for entry in gateway.data().contractors}
    assert blocked["GĄSKA"] is True

    # Check: nothing is done twice
    counts = operation.execute(runner.job("dunning", december, "run-3"), params)
    assert counts["actions"] == 0 and counts["skipped"] == 0 and counts["sent"] == 0


def test_a_receivable_paid_in_between_is_not_dunned(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    document = json.loads(example_document(catcher))
    paid = {"receivables": [dict(document["receivables"][2], remaining="0.00")]}
    gateway.load(parse_document(json.dumps(paid)))
    Dunning().execute(runner.job("dunning", at("2026-12-15T07:00")), DunningParams())
    assert "R-2026-103" not in {entry.receivable for entry in gateway.dunning_history()}
    assert sms(catcher) == []


def test_the_skip_threshold_is_inclusive(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    document = json.loads(example_document(catcher))
    at_threshold = dict(document["receivables"][3], remaining="50.00", amount="50.00")
    above = dict(document["receivables"][3], id="R-2026-106", remaining="50.01",
                 amount="50.01")
    gateway.load(parse_document(json.dumps({"receivables": [at_threshold, above]})))
    Dunning().execute(runner.job("dunning", at("2026-11-20T07:00")), DunningParams())
    dunned = {entry.receivable for entry in gateway.dunning_history()}
    assert "R-2026-104" not in dunned and "R-2026-106" in dunned


def test_recurring_orders_and_their_notices(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    operation = RecurringOrders()
    params = RecurringOrdersParams()
    counts = operation.execute(runner.job("recurring_orders", at("2026-12-15T06:00")), params)
    orders = [(order.number, order.template, str(order.date))
              for order in gateway.service_orders()]
    assert orders == [("ZS/1/2026", "KONSERWACJA-ŻABKA", "2026-09-15"),
                      ("ZS/2/2026", "PRZEGLĄD-GĄSKA", "2026-10-31"),
                      ("ZS/3/2026", "PRZEGLĄD-GĄSKA", "2026-11-30"),
                      ("ZS/4/2026", "KONSERWACJA-ŻABKA", "2026-12-15")]
    assert counts["orders"] == 4 and counts["notices"] == 1
    [notice] = mails(catcher)
    assert notice["to"] == "jan@zabka.example.pl"
    assert notice["subject"] == "Przegląd serwisowy 2026-12-15"
    next_dates = {entry.code: str(entry.next_date)
                  for entry in gateway.data().service_order_templates}
    assert next_dates == {"PRZEGLĄD-GĄSKA": "2026-12-31", "KONSERWACJA-ŻABKA": "2027-03-15"}

    # three days before 31 December: the notice by e-mail and SMS, once
    for run in ("run-2", "run-3"):
        operation.execute(runner.job("recurring_orders", at("2026-12-28T06:00"), run), params)
    assert [message["to"] for message in sms(catcher)] == ["+48601200300"]
    assert len(mails(catcher)) == 2


def test_task_reminders_go_once_to_the_chosen_recipient(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    operation = TaskReminders()
    params = TaskRemindersParams()
    instant = at("2026-12-15T08:00")
    preview = operation.preview(runner.job("task_reminders", instant), params)
    assert [(action.action, action.item) for action in preview] == [
        ("email", "ZAD-2"), ("sms", "ZAD-1")]
    operation.execute(runner.job("task_reminders", instant), params)
    operation.execute(runner.job("task_reminders", at("2026-12-15T09:00"), "run-2"), params)
    [text] = sms(catcher)
    assert text["to"] == "+48601200300"
    assert text["text"] == "Przypomnienie: Wizyta u klienta Gąska o 2026-12-15 10:00."
    [mail] = mails(catcher)
    assert mail["to"] == "anna.kowalska@zolw.example.pl"
    assert mail["subject"] == "Przypomnienie: Telefon do Żabki w sprawie umowy"


def test_invoice_mailing_sends_issued_invoices_once_and_warns_without_an_email(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    document = json.loads(example_document(catcher))
    issued_for_nowak = dict(document["recurring_invoices"][3], mode="issue")
    gateway.load(parse_document(json.dumps({"recurring_invoices": [issued_for_nowak]})))
    RecurringInvoices().execute(runner.job("recurring_invoices", at("2026-12-15T06:00")),
                                RecurringInvoicesParams())
    catcher.clear()
    operation = InvoiceMailing()
    params = InvoiceMailingParams()
    preview = operation.preview(runner.job("invoice_mailing", at("2026-12-15T07:00")), params)
    counts = operation.execute(runner.job("invoice_mailing", at("2026-12-15T07:00"), "run-2"),
                               params)
    sent = mails(catcher)
    # Żabka's two invoices and Acme's three pro formas (EUR: the bilingual print)
    assert sorted(message["to"] for message in sent) == (
        ["billing@acme.example.de"] * 3 + ["jan@zabka.example.pl"] * 2)
    assert counts["sent"] == 5
    assert {action.item for action in preview if action.action == "email"} == {
        invoice.number for invoice in gateway.invoices()
        if invoice.status == "issued" and invoice.template != "ABON-GĄSKA"}
    assert any("contractor NOWAK has no e-mail" in warning for warning in runner.warnings)
    assert all(invoice.sent_at is not None for invoice in gateway.invoices()
               if invoice.contractor in ("ŻABKA", "ACME-DE"))
    again = operation.execute(runner.job("invoice_mailing", at("2026-12-15T08:00"), "run-3"),
                              params)
    assert again["sent"] == 0 and len(mails(catcher)) == 5


def test_mails_wait_in_the_outbox_while_the_server_is_down_and_keep_their_message_id(
    runner: Runner, gateway: ErpGateway, catcher: MailCatcher,
) -> None:
    document = json.loads(example_document(catcher))
    document["email_accounts"][0]["smtp_port"] = 1  # nothing listens there
    gateway.load(parse_document(json.dumps({"email_accounts": document["email_accounts"]})))
    operation = TaskReminders()
    params = TaskRemindersParams()
    with pytest.raises(UndeliveredError, match="stay in the outbox"):
        operation.execute(runner.job("task_reminders", at("2026-12-15T08:00")), params)
    pending = [entry for entry in gateway.outbox() if entry.channel == "email"]
    assert [(entry.status, entry.attempts) for entry in pending] == [("failed", 1)]
    assert pending[0].error and "connection failed" in pending[0].error

    gateway.load(parse_document(example_document(catcher)))
    counts = operation.execute(runner.job("task_reminders", at("2026-12-15T08:30"), "run-2"),
                               params)
    assert counts["sent"] == 1
    [mail] = mails(catcher)
    [entry] = [entry for entry in gateway.outbox() if entry.channel == "email"]
    assert entry.status == "sent" and mail["message_id"] == entry.message_id
    assert entry.run_id == "run-1"  # queued by the first run: its Message-ID is kept


def test_amounts_stay_exact(gateway: ErpGateway, runner: Runner) -> None:
    RecurringInvoices().execute(runner.job("recurring_invoices", at("2026-11-01T06:00")),
                                RecurringInvoicesParams())
    invoice = gateway.invoice("FA/1/11/2026")
    assert invoice is not None
    assert [line.unit_net_price for line in invoice.lines] == [Decimal("45.00"),
                                                               Decimal("39.90")]
    assert invoice.as_json()["vat_by_rate"] == {
        "23": {"net": "45.00", "vat": "10.35", "gross": "55.35"},
        "5": {"net": "39.90", "vat": "2.00", "gross": "41.90"}}
