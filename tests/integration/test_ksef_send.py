"""Sending invoices to KSeF through the real SDK and the KSeF simulator on loopback, on
SQLite and PostgreSQL: issued invoices accepted once with valid KSeF numbers and UPOs,
e-mails that wait for the numbers, a lost answer found again, a duplicate (440) taken as
the original's acceptance, a rejection (450) reported and not retried, storms of 429 and
5xx, and both logins."""

from __future__ import annotations

import email
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ksef_client.utils.ksef_number import validate_ksef_number
from pypdf import PdfReader
from sqlalchemy import update

from engine.adapters.erp_ksef_sql import ksef_submissions_table
from engine.adapters.erp_sync_sql import SqlCompanyGateway
from engine.adapters.ksef_sdk import SdkKsefClient, SdkKsefOptions
from engine.adapters.mail_smtp import SmtpMailSender
from engine.adapters.pdf_fpdf import FpdfDocumentPrinter
from engine.erp.document import Contractor, Seller
from engine.erp.ksef import KsefSettings, PreparedInvoice
from engine.operations.erp.common import ErpJob
from engine.operations.erp.ksef_send import (
    KsefSend,
    KsefSendParams,
    invoice_hash,
    party_of_contractor,
    party_of_seller,
)
from engine.operations.erp.recurring_invoices import RecurringInvoices, RecurringInvoicesParams
from engine.ports.ksef import KsefInvoiceDocument, KsefUnavailableError
from engine.simulators.ksef import KsefFaults, KsefSimulator
from engine.simulators.ksef.documents import ksef_number
from engine.simulators.mail_catcher import MailCatcher
from tests.integration.sync_support import company_gateway, load

WARSAW = ZoneInfo("Europe/Warsaw")
SELLER_NIP = "5239384994"
ISSUE_INSTANT = datetime(2026, 11, 30, 6, 0, tzinfo=WARSAW)
SELLER = Seller(name="Serwis Komputerowy Żółw Sp. z o.o.", nip=SELLER_NIP,
                address="ul. Świętokrzyska 12, 00-916 Warszawa")


def company(smtp_port: int) -> dict[str, Any]:
    """A seller, four buyers (Polish, EU, non-EU, a person) and monthly invoices at every
    VAT rate, issued and e-mailed."""
    buyers = [
        {"code": "GASKA", "name": "Gąska i Synowie s.c.", "nip": "4477127826",
         "email": "faktury@gaska.example.pl", "address": "ul. Łąkowa 5, 90-001 Łódź"},
        {"code": "BERLIN", "name": "Berliner Technik GmbH", "country": "DE",
         "vat_id": "123456789", "email": "rechnung@berlin.example.de",
         "address": "Hauptstraße 1, 10115 Berlin"},
        {"code": "OSLO", "name": "Oslo Data AS", "country": "NO", "vat_id": "987654321",
         "email": "faktura@oslo.example.no", "address": "Karl Johans gate 1, Oslo"},
        {"code": "KOWALSKI", "name": "Jan Kowalski", "email": "jan@kowalski.example.pl",
         "address": "ul. Polna 3, 00-001 Warszawa"},
    ]
    products = [
        {"code": "ABON", "name": "Abonament IT", "net_price": "1000.00", "vat_rate": "23"},
        {"code": "KSIAZKA", "name": "Podręcznik", "net_price": "80.00", "vat_rate": "5"},
        {"code": "CATERING", "name": "Catering", "net_price": "120.50", "vat_rate": "8"},
        {"code": "EXPORT", "name": "Usługa zagraniczna", "net_price": "300.00",
         "vat_rate": "0"},
        {"code": "SZKOLENIE", "name": "Szkolenie", "net_price": "450.00", "vat_rate": "zw"},
    ]
    templates = [
        {"code": f"ABON-{buyer['code']}", "name": f"Abonament {buyer['code']}",
         "contractor": buyer["code"], "start": "2026-11-30", "day_of_month": "last",
         "mode": "issue_and_send",
         "lines": [{"product": product["code"], "quantity": "2"} for product in products]}
        for buyer in buyers
    ]
    templates.append({"code": "PROFORMA", "name": "Pro forma", "type": "FPF",
                      "contractor": "GASKA", "start": "2026-11-30", "day_of_month": "last",
                      "mode": "issue_and_send",
                      "lines": [{"product": "ABON", "quantity": "1"}]})
    return {
        "seller": {"name": "Serwis Komputerowy Żółw Sp. z o.o.", "nip": SELLER_NIP,
                   "address": "ul. Świętokrzyska 12, 00-916 Warszawa",
                   "bank_account": "PL61 1090 1014 0000 0712 1981 2874",
                   "email": "biuro@zolw.example.pl"},
        "email_accounts": [{"code": "BIURO", "address": "biuro@zolw.example.pl",
                            "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                            "security": "none"}],
        "contractors": buyers, "products": products, "recurring_invoices": templates,
    }


@pytest.fixture(scope="module")
def ksef() -> Iterator[KsefSimulator]:
    with KsefSimulator(0, seed=5) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailCatcher]:
    with MailCatcher(0, 0, tmp_path_factory.mktemp("catcher") / "messages.jsonl") as started:
        yield started


@pytest.fixture
def gateway(store_kind: str, tmp_path: Path, catcher: MailCatcher,
            ksef: KsefSimulator) -> Iterator[SqlCompanyGateway]:
    ksef.reset()
    ksef.set_faults(KsefFaults())
    catcher.clear()
    with company_gateway(store_kind, tmp_path) as made:
        load(made, company(catcher.smtp_port))
        yield made


def configure(gateway: SqlCompanyGateway, ksef: KsefSimulator, *,
              certificate: bool = False) -> None:
    if certificate:
        certificate_pem, key_pem = ksef.issue_certificate(SELLER_NIP)
        login: dict[str, Any] = {"method": "certificate", "certificate_pem": certificate_pem,
                                 "private_key_pem": key_pem}
    else:
        login = {"method": "token", "token": ksef.issue_token(SELLER_NIP)}
    gateway.configure_ksef(KsefSettings(environment="URL", base_url=ksef.url, nip=SELLER_NIP,
                                        since=ISSUE_INSTANT.date(), **login))


CLIENT = SdkKsefClient(SdkKsefOptions(max_attempts=6, backoff_base=0.01, backoff_max=0.05,
                                      max_retry_after=1.0, auth_poll_interval=0.01))


class Runs:
    """Runs as a host makes them: one job per run id, the real senders and client."""

    def __init__(self, gateway: SqlCompanyGateway) -> None:
        self.gateway = gateway
        self.warnings: list[str] = []
        self.count = 0

    def job(self, kind: str, instant: datetime = ISSUE_INSTANT) -> ErpJob:
        self.count += 1
        return ErpJob(kind=kind, run_id=f"run-{self.count}", instant=instant,
                      gateway=self.gateway, mail=SmtpMailSender(timeout=10),
                      printer=FpdfDocumentPrinter(), ksef=CLIENT, warn=self.warnings.append)

    def issue(self, *templates: str, wait: float = 20) -> dict[str, int]:
        """A recurring invoices run (of ``templates``, or all), waiting ``wait`` seconds
        for KSeF if it is on."""
        return RecurringInvoices().execute(
            self.job("recurring_invoices"),
            RecurringInvoicesParams(templates=list(templates), ksef_wait_seconds=wait))

    def send(self, **params: Any) -> dict[str, int]:
        return KsefSend().execute(self.job("ksef_send"),
                                  KsefSendParams(poll_seconds=0.02, wait_seconds=20, **params))


def vat_invoices(gateway: SqlCompanyGateway) -> list[Any]:
    return [invoice for invoice in gateway.invoices() if invoice.type == "FA"]


def accepted_uploads(ksef: KsefSimulator) -> dict[str, dict[str, Any]]:
    """The simulator's accepted invoices by invoice number."""
    return {entry["invoice_number"]: entry for entry in ksef.state()["accepted"]}


def assert_each_accepted_once(gateway: SqlCompanyGateway, ksef: KsefSimulator) -> None:
    invoices = vat_invoices(gateway)
    accepted = accepted_uploads(ksef)
    assert sorted(accepted) == sorted(invoice.number for invoice in invoices)
    for invoice in invoices:
        assert invoice.ksef_status == "accepted", invoice
        assert invoice.ksef_number == accepted[invoice.number]["ksef_number"]
        assert validate_ksef_number(invoice.ksef_number).is_valid
        assert invoice.ksef_accepted_at is not None
    assert len({invoice.ksef_number for invoice in invoices}) == len(invoices)


def test_issued_invoices_are_accepted_once_then_mailed_with_their_ksef_numbers(
    gateway: SqlCompanyGateway, ksef: KsefSimulator, catcher: MailCatcher,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    counts = runs.issue()

    assert counts["issued"] == 5
    assert counts["ksef_accepted"] == 4 and counts["ksef_rejected"] == 0
    assert_each_accepted_once(gateway, ksef)
    proforma = next(invoice for invoice in gateway.invoices() if invoice.type == "FPF")
    assert proforma.ksef_status is None and proforma.ksef_number is None
    for invoice in vat_invoices(gateway):
        submission = gateway.ksef_submission(invoice.number)
        assert submission is not None and submission.upo is not None
        assert invoice.ksef_number in submission.upo
        assert submission.invoice_hash == invoice_hash(submission.xml or b"")
    raw_mails = catcher.raw_mails()
    assert len(raw_mails) == 5
    for invoice in vat_invoices(gateway):
        pdfs = {part.get_filename(): part.get_payload(decode=True)
                for raw in raw_mails for part in email.message_from_bytes(raw).walk()
                if part.get_content_type() == "application/pdf"}
        pdf = pdfs[invoice.number.replace("/", "_") + ".pdf"]
        assert isinstance(pdf, bytes)
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
        assert invoice.ksef_number in text

    again = runs.send()
    assert again["ksef_sent"] == 0 and again["ksef_prepared"] == 0
    assert all(entry["uploads"] == 1 for entry in accepted_uploads(ksef).values())


def test_certificate_login_sends_with_a_xades_signature(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    configure(gateway, ksef, certificate=True)
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    assert_each_accepted_once(gateway, ksef)
    assert ksef.state()["logins"].get("certificate", 0) >= 1


def test_mail_waits_while_ksef_is_unreachable_and_goes_with_the_number_later(
    gateway: SqlCompanyGateway, ksef: KsefSimulator, catcher: MailCatcher,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    ksef.set_faults(KsefFaults(error_rate=1.0))
    with pytest.raises(KsefUnavailableError):
        runs.issue()
    vat = vat_invoices(gateway)
    assert len(vat) == 4 and all(invoice.ksef_status == "sending" for invoice in vat)
    assert len(catcher.raw_mails()) == 1  # the pro forma: VAT invoices wait for KSeF

    ksef.set_faults(KsefFaults())
    counts = runs.issue()  # the retried attempt: nothing new is issued
    assert counts["issued"] == 0 and counts["sent"] == 4
    assert_each_accepted_once(gateway, ksef)


def test_a_lost_answer_is_found_in_the_session_and_not_sent_again(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    ksef.set_faults(KsefFaults(lose_next_uploads=1))
    with pytest.raises(KsefUnavailableError, match="no answer"):
        runs.issue("ABON-BERLIN")
    ksef.set_faults(KsefFaults())
    counts = runs.send(resend_after_seconds=0)
    assert counts["ksef_sent"] == 0 and counts["ksef_accepted"] == 1
    assert_each_accepted_once(gateway, ksef)
    assert all(entry["uploads"] == 1 for entry in accepted_uploads(ksef).values())


def test_a_second_upload_answered_440_counts_as_the_first_acceptance(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    configure(gateway, ksef)  # after issuing: the invoice waits for ksef_send
    ksef.set_faults(KsefFaults(lose_next_uploads=1))
    with pytest.raises(KsefUnavailableError):
        runs.send()
    ksef.set_faults(KsefFaults())
    # as if the upload's session were not known (a crash before it was recorded)
    with gateway.engine.begin() as connection:
        connection.execute(update(ksef_submissions_table).values(session_reference=None))
    counts = runs.send()
    assert counts["ksef_sent"] == 1 and counts["ksef_duplicates"] == 1
    assert_each_accepted_once(gateway, ksef)
    (invoice,) = vat_invoices(gateway)
    assert invoice.ksef_reason is not None and invoice.ksef_reason.startswith("440")
    assert accepted_uploads(ksef)[invoice.number]["uploads"] == 2


def test_an_invoice_ksef_refuses_is_reported_and_not_sent_again(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    configure(gateway, ksef)
    (invoice,) = vat_invoices(gateway)
    document = KsefInvoiceDocument(invoice, party_of_seller(SELLER), party_of_contractor(
        Contractor(code="GASKA", name="Gąska i Synowie s.c.", nip="4477127826",
                   address="ul. Łąkowa 5, 90-001 Łódź")))
    broken = CLIENT.render(document).replace(b"<P_15>", b"<P_15>x")  # as if made elsewhere
    assert gateway.prepare_ksef([PreparedInvoice(invoice.number, broken, invoice_hash(broken))],
                                "older-run", datetime(2026, 11, 30, tzinfo=UTC)) == 1
    counts = runs.send()
    assert counts["ksef_rejected"] == 1
    (invoice,) = vat_invoices(gateway)
    assert invoice.ksef_status == "rejected" and invoice.ksef_number is None
    assert invoice.ksef_reason is not None and invoice.ksef_reason.startswith("450")
    assert any("KSeF rejected invoice" in warning and "450" in warning
               for warning in runs.warnings)
    uploads = ksef.state()["uploads"]
    assert runs.send()["ksef_sent"] == 0
    assert ksef.state()["uploads"] == uploads  # not retried blindly

    assert gateway.reopen_ksef(invoice.number)
    assert runs.send()["ksef_accepted"] == 1
    assert_each_accepted_once(gateway, ksef)


def test_an_invoice_the_xsd_refuses_is_not_sent(
    gateway: SqlCompanyGateway, ksef: KsefSimulator, catcher: MailCatcher,
) -> None:
    configure(gateway, ksef)
    document = company(catcher.smtp_port)
    document["recurring_invoices"][0]["currency"] = "EUR"
    load(gateway, {"recurring_invoices": document["recurring_invoices"][:1]})
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    (invoice,) = vat_invoices(gateway)
    assert invoice.ksef_status == "rejected" and "not sent" in (invoice.ksef_reason or "")
    assert ksef.state()["uploads"] == 0
    assert not catcher.raw_mails()

    # sent to KSeF another way: its number, given by hand, lets the e-mail go
    number = ksef_number(SELLER_NIP, date(2026, 11, 30), "0123456789AB")
    gateway.record_ksef_by_hand(invoice.number, ksef_number=number,
                                accepted_at=datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert runs.issue("ABON-GASKA")["sent"] == 1
    (invoice,) = vat_invoices(gateway)
    assert invoice.ksef_status == "accepted" and invoice.ksef_number == number
    assert len(catcher.raw_mails()) == 1 and ksef.state()["uploads"] == 0


def test_storms_of_429_and_5xx_end_with_every_invoice_accepted_once(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    runs.issue(wait=0)
    ksef.set_faults(KsefFaults(error_rate=0.3, throttle_rate=0.3))
    for _ in range(20):
        try:
            counts = runs.send(resend_after_seconds=0)
        except KsefUnavailableError:
            continue
        if counts["ksef_processing"] == 0:
            break
    ksef.set_faults(KsefFaults())
    assert_each_accepted_once(gateway, ksef)


def test_ksef_state_is_written_before_and_after_each_upload(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    runs.issue("ABON-GASKA", wait=0)
    (submission,) = gateway.ksef_submissions()
    assert submission.session_reference is not None
    assert submission.invoice_reference is not None and submission.uploads == 1
    assert submission.prepared_at <= (submission.sent_at or datetime.now(UTC))


def test_a_upo_not_fetched_at_acceptance_is_fetched_by_a_later_run(
    gateway: SqlCompanyGateway, ksef: KsefSimulator,
) -> None:
    configure(gateway, ksef)
    runs = Runs(gateway)
    runs.issue("ABON-GASKA")
    with gateway.engine.begin() as connection:  # as if KSeF had not answered for the UPO
        connection.execute(update(ksef_submissions_table).values(upo=None))
    assert len(gateway.ksef_without_upo(10)) == 1
    runs.send()
    (invoice,) = vat_invoices(gateway)
    submission = gateway.ksef_submission(invoice.number)
    assert submission is not None and submission.upo is not None
    assert invoice.ksef_number is not None and invoice.ksef_number in submission.upo
    assert gateway.ksef_without_upo(10) == []
