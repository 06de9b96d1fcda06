"""The ERP gateway over SQLAlchemy, on SQLite and PostgreSQL (``store_kind``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, select

from engine.adapters.erp_sqlalchemy import (
    SqlErpGateway,
    SqlErpGateways,
    email_accounts_table,
    invoices_table,
    sms_gateway_table,
)
from engine.adapters.secret_box import SecretBox, SecretKeyError
from engine.adapters.sql import create_sql_engine
from engine.erp.document import WARSAW, ErpDocument
from engine.erp.gateway import AlreadyRecordedError
from engine.erp.model import (
    DunningEntry,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceType,
    OutboxEntry,
    PaymentReminder,
    ServiceOrder,
)
from engine.erp.money import VatRate, document_amounts, line_net
from engine.ports.outbound import CompanyDatabase
from tests.support import temporary_postgres_database

MAIL_PASSWORD = "Poczta-Hasło-91xq!"
SMS_TOKEN = "sms-token-5d1e7a0c"


@contextmanager
def erp_database(store_kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty company database URL of ``store_kind``."""
    if store_kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{folder / 'company.db'}"
    else:
        with temporary_postgres_database() as url:
            yield url


@pytest.fixture
def open_gateway(store_kind: str, tmp_path: Path
                 ) -> Iterator[Callable[..., SqlErpGateway]]:
    """Open a gateway on a fresh database (``name``) with the key of ``home``."""
    engines: dict[str, Engine] = {}
    databases: list[AbstractContextManager[str]] = []

    def open_one(name: str = "main", home: str = "home", key: str | None = None
                 ) -> SqlErpGateway:
        if name not in engines:
            database = erp_database(store_kind, tmp_path / name)
            databases.append(database)
            engines[name] = create_sql_engine(database.__enter__())
        return SqlErpGateway(engines[name], SecretBox.from_home(tmp_path / home, key))

    yield open_one
    for engine in engines.values():
        engine.dispose()
    for database in reversed(databases):
        database.__exit__(None, None, None)


@pytest.fixture
def gateway(open_gateway: Callable[..., SqlErpGateway]) -> SqlErpGateway:
    return open_gateway()


def full_document(**changes: Any) -> ErpDocument:
    """A document with every key (two entries where order matters)."""
    raw: dict[str, Any] = {
        "seller": {"name": "Serwis Sp. z o.o.", "nip": "526-025-02-74",
                   "address": "ul. Prosta 1, Warszawa", "bank_account": "PL61 1090 1014",
                   "email": "biuro@serwis.pl", "phone": "+48 22 100 20 30"},
        "email_accounts": [{"code": "biuro", "address": "biuro@serwis.pl",
                            "smtp_host": "smtp.serwis.pl", "smtp_port": 587,
                            "username": "biuro", "password": MAIL_PASSWORD},
                           {"code": "anna", "address": "anna@serwis.pl",
                            "smtp_host": "smtp.serwis.pl", "smtp_port": 465,
                            "security": "ssl"}],
        "sms_gateway": {"url": "https://sms.example.com/api", "token": SMS_TOKEN,
                        "sender": "SERWIS"},
        "operators": [{"code": "anna", "name": "Anna Nowak", "email_account": "anna",
                       "phone": "600 100 200"}],
        "contractors": [{"code": "K2", "name": "Beta", "email": "beta@example.com",
                         "dunning_scheme": "std"},
                        {"code": "K1", "name": "Alfa S.A.", "nip": "PL5260250274",
                         "phone": "+48 600 200 300", "address": "Kraków"}],
        "products": [{"code": "ABO", "name": "Abonament", "net_price": "0.10", "vat_rate": "23"},
                     {"code": "SRV", "name": "Serwis", "unit": "h", "net_price": "150",
                      "vat_rate": "8"}],
        "templates": [{"code": "mail", "channel": "email", "subject": "Faktura {document_number}",
                       "body": "Dzień dobry"},
                      {"code": "sms", "channel": "sms", "body": "Przypomnienie"}],
        "recurring_invoices": [{"code": "R1", "name": "Abonament K1", "contractor": "K1",
                                "lines": [{"product": "ABO", "quantity": "2.5"},
                                          {"product": "SRV", "quantity": "1",
                                           "net_price": "99.99"}],
                                "day_of_month": "last", "start": "2026-01-31",
                                "end": "2027-01-31", "mode": "issue_and_send",
                                "operator": "anna"},
                               {"code": "R0", "name": "Tygodniowy", "type": "FPF",
                                "contractor": "K2", "currency": "EUR",
                                "lines": [{"product": "SRV", "quantity": "0.0001"}],
                                "every": 2, "unit": "week", "start": "2026-02-02",
                                "active": False}],
        "receivables": [{"id": "N2", "contractor": "K2", "document": "FV/2/2026",
                         "issue_date": "2026-01-02", "due_date": "2026-01-16",
                         "amount": "1234567890.12", "remaining": "0.10"},
                        {"id": "N1", "contractor": "K1", "document": "FV/1/2026",
                         "issue_date": "2026-01-01", "due_date": "2026-01-15",
                         "amount": "100", "remaining": "100", "currency": "EUR"}],
        "dunning_schemes": [{"code": "std", "name": "Standard", "default": True,
                             "skip_up_to": "5.00",
                             "stages": [{"days": -3, "action": "sms", "template": "sms"},
                                        {"days": 7, "action": "payment_reminder",
                                         "template": "mail"},
                                        {"days": 30, "action": "sales_block"}]}],
        "crm_tasks": [{"id": "T1", "title": "Telefon", "start": "2026-03-30T09:15:00",
                       "contractor": "K1", "operator": "anna",
                       "reminder": {"minutes_before": 30, "to": "operator",
                                    "template": "sms"}},
                      {"id": "T0", "title": "Spotkanie", "start": "2026-03-01T10:00:00+00:00",
                       "employee": "Jan"}],
        "service_order_templates": [{"code": "S1", "contractor": "K1", "description": "Przegląd",
                                     "every_months": 6, "start": "2026-04-01",
                                     "remind_days_before": 7, "notify_email": True,
                                     "template": "mail"},
                                    {"code": "S2", "contractor": "K2", "start": "2026-05-01",
                                     "next_date": "2026-11-01"}],
    }
    raw.update(changes)
    return ErpDocument.model_validate(raw)


def invoice(number: str, *, template: str | None = None, period: date | None = None,
            issue_date: date = date(2026, 1, 31), type_: InvoiceType = "FA",
            status: InvoiceStatus = "issued") -> Invoice:
    specs: list[tuple[Decimal, Decimal, VatRate]] = [
        (Decimal("2.5"), Decimal("0.10"), "23"), (Decimal("1"), Decimal("99.99"), "8"),
        (Decimal("3"), Decimal("0.33"), "23"), (Decimal("1"), Decimal("10.00"), "zw"),
    ]
    amounts = document_amounts([(line_net(quantity, price), rate)
                                for quantity, price, rate in specs])
    return Invoice(
        number=number, type=type_, contractor="K1",
        issue_date=issue_date, sale_date=issue_date, due_date=issue_date + timedelta(days=14),
        currency="PLN", status=status, template=template, period=period,
        lines=tuple(InvoiceLine(f"P{index}", f"Pozycja {index}", quantity, price, rate,
                                amounts.lines[index])
                    for index, (quantity, price, rate) in enumerate(specs)),
        vat_by_rate=amounts.by_rate, totals=amounts.totals, run_id="run-1",
    )


def outbox_entry(key: str, *, item: str = "X", operation: str = "invoice_mailing",
                 attachment: str | None = None) -> OutboxEntry:
    return OutboxEntry(key=key, operation=operation, channel="email", to="k1@example.com",
                       subject=f"Temat {key}", text="Treść", item=item, run_id="run-1",
                       idempotency_key=f"run-1/{key}", account="biuro", attachment=attachment)


def dunning_entry(receivable: str, stage: int, created: str = "") -> DunningEntry:
    return DunningEntry(date=date(2026, 2, 1), receivable=receivable, contractor="K1",
                        stage=stage, action="email", created=created, subject="Wezwanie",
                        description=f"etap {stage}", mode="automatic", outcome="done",
                        run_id="run-1")


def expected_data(document: ErpDocument) -> ErpDocument:
    """What ``data()`` gives after loading ``document`` into an empty database."""
    def by(key: str) -> Callable[[Any], str]:
        return lambda entry: str(getattr(entry, key))

    return document.model_copy(update={
        "email_accounts": sorted(document.email_accounts, key=by("code")),
        "operators": sorted(document.operators, key=by("code")),
        "contractors": sorted(document.contractors, key=by("code")),
        "products": sorted(document.products, key=by("code")),
        "templates": sorted(document.templates, key=by("code")),
        "recurring_invoices": sorted(document.recurring_invoices, key=by("code")),
        "receivables": sorted(document.receivables, key=by("id")),
        "dunning_schemes": sorted(document.dunning_schemes, key=by("code")),
        "crm_tasks": sorted(document.crm_tasks, key=by("id")),
        "service_order_templates": sorted(
            (template.model_copy(update={"next_date": template.next_date or template.start})
             for template in document.service_order_templates), key=by("code")),
    })


# -- the document ------------------------------------------------------------------------

def test_load_stores_every_key_and_data_gives_it_back(gateway: SqlErpGateway) -> None:
    document = full_document()

    counts = gateway.load(document)

    assert counts == {"seller": 1, "email_accounts": 2, "sms_gateway": 1, "operators": 1,
                      "contractors": 2, "products": 2, "templates": 2,
                      "recurring_invoices": 2, "receivables": 2, "dunning_schemes": 1,
                      "crm_tasks": 2, "service_order_templates": 2}
    data = gateway.data()
    assert data == expected_data(document)
    accounts = {account.code: account for account in data.email_accounts}
    assert accounts["biuro"].password is not None
    assert accounts["biuro"].password.get_secret_value() == MAIL_PASSWORD
    assert accounts["anna"].password is None
    assert data.sms_gateway is not None and data.sms_gateway.token is not None
    assert data.sms_gateway.token.get_secret_value() == SMS_TOKEN
    task = {task.id: task for task in data.crm_tasks}["T1"]
    assert task.start == datetime(2026, 3, 30, 9, 15, tzinfo=WARSAW)
    assert task.start.utcoffset() == timedelta(0)


def test_load_counts_only_the_keys_given(gateway: SqlErpGateway) -> None:
    assert gateway.load(ErpDocument()) == {}
    products = full_document().products
    assert gateway.load(ErpDocument(products=products)) == {"products": 2}


def test_codes_name_what_is_stored(gateway: SqlErpGateway) -> None:
    gateway.load(full_document())

    codes = gateway.codes()

    assert codes.email_accounts == {"biuro", "anna"}
    assert codes.operators == {"anna"}
    assert codes.contractors == {"K1", "K2"}
    assert codes.products == {"ABO", "SRV"}
    assert codes.templates == {"mail": "email", "sms": "sms"}
    assert codes.dunning_schemes == {"std": True}


def test_load_upserts_by_code_and_a_null_secret_keeps_the_stored_one(
    gateway: SqlErpGateway,
) -> None:
    gateway.load(full_document())
    first = full_document()
    changed = ErpDocument.model_validate({
        "email_accounts": [{**first.email_accounts[0].model_dump(), "password": None,
                            "smtp_port": 2525}],
        "sms_gateway": {"url": "https://sms2.example.com", "sender": "NOWY"},
        "contractors": [{"code": "K1", "name": "Alfa po zmianie"},
                        {"code": "K3", "name": "Nowy"}],
        "recurring_invoices": [{**first.recurring_invoices[0].model_dump(mode="json"),
                                "lines": [{"product": "SRV", "quantity": "3"}]}],
        "dunning_schemes": [{"code": "std", "name": "Krótki", "default": True,
                             "stages": [{"days": 1, "action": "crm_task"}]}],
        "crm_tasks": [{"id": "T1", "title": "Bez przypomnienia", "start": "2026-04-01T08:00:00"}],
    })

    counts = gateway.load(changed)

    assert counts == {"email_accounts": 1, "sms_gateway": 1, "contractors": 2,
                      "recurring_invoices": 1, "dunning_schemes": 1, "crm_tasks": 1}
    data = gateway.data()
    biuro = {account.code: account for account in data.email_accounts}["biuro"]
    assert biuro.smtp_port == 2525
    assert biuro.password is not None and biuro.password.get_secret_value() == MAIL_PASSWORD
    assert data.sms_gateway is not None and data.sms_gateway.sender == "NOWY"
    assert data.sms_gateway.token is not None
    assert data.sms_gateway.token.get_secret_value() == SMS_TOKEN
    assert [(c.code, c.name, c.nip) for c in data.contractors] == [
        ("K1", "Alfa po zmianie", None), ("K2", "Beta", None), ("K3", "Nowy", None)]
    r1 = {entry.code: entry for entry in data.recurring_invoices}["R1"]
    assert [(line.product, line.quantity) for line in r1.lines] == [("SRV", Decimal(3))]
    assert len({entry.code: entry for entry in data.recurring_invoices}["R0"].lines) == 1
    assert [stage.action for stage in data.dunning_schemes[0].stages] == ["crm_task"]
    assert {task.id: task for task in data.crm_tasks}["T1"].reminder is None

    gateway.load(ErpDocument.model_validate({"email_accounts": [
        {**first.email_accounts[0].model_dump(), "password": "nowe-hasło"}]}))
    biuro = {account.code: account for account in gateway.data().email_accounts}["biuro"]
    assert biuro.password is not None and biuro.password.get_secret_value() == "nowe-hasło"


class FailingBox(SecretBox):
    """Encrypts everything but the SMS token."""

    def encrypt(self, text: str) -> str:
        if text == SMS_TOKEN:
            raise SecretKeyError("cannot encrypt")
        return super().encrypt(text)


def test_a_load_that_fails_midway_stores_nothing(
    open_gateway: Callable[..., SqlErpGateway],
) -> None:
    gateway = open_gateway()
    gateway.load(ErpDocument(products=full_document().products))
    failing = SqlErpGateway(gateway.engine, FailingBox.from_key(Fernet.generate_key()))

    with pytest.raises(SecretKeyError):
        failing.load(full_document())  # seller and e-mail accounts go before the token

    data = gateway.data()
    assert (data.seller, data.email_accounts, data.sms_gateway) == (None, [], None)
    assert [product.code for product in data.products] == ["ABO", "SRV"]


def test_export_loads_into_an_empty_database_to_the_same_data(
    open_gateway: Callable[..., SqlErpGateway],
) -> None:
    source = open_gateway("source")
    source.load(full_document())
    with source.transaction() as writer:
        writer.add_service_order(
            ServiceOrder("ZS/1/2026", "S1", "K1", date(2026, 4, 1), "Przegląd"),
            next_date=date(2026, 10, 1))
        writer.block_sales("K2")
    exported = source.export()
    target = open_gateway("target")

    target.load(ErpDocument.model_validate_json(exported.model_dump_json()))

    assert target.data() == exported
    assert target.export() == exported
    assert {t.code: t.next_date for t in exported.service_order_templates} == {
        "S1": date(2026, 10, 1), "S2": date(2026, 11, 1)}
    assert {c.code: c.sales_blocked for c in exported.contractors} == {"K1": False, "K2": True}


def test_a_template_without_next_date_keeps_the_stored_one(gateway: SqlErpGateway) -> None:
    gateway.load(full_document())
    with gateway.transaction() as writer:
        writer.add_service_order(
            ServiceOrder("ZS/1/2026", "S1", "K1", date(2026, 4, 1), "Przegląd"),
            next_date=date(2026, 10, 1))

    gateway.load(full_document())  # S1 without next_date, S2 with it

    assert {t.code: t.next_date for t in gateway.data().service_order_templates} == {
        "S1": date(2026, 10, 1), "S2": date(2026, 11, 1)}


def test_secrets_are_stored_encrypted_and_never_exported(gateway: SqlErpGateway) -> None:
    gateway.load(full_document())

    exported = gateway.export()

    text = exported.model_dump_json()
    assert MAIL_PASSWORD not in text and SMS_TOKEN not in text
    assert all(account.password is None for account in exported.email_accounts)
    assert exported.sms_gateway is not None and exported.sms_gateway.token is None
    with gateway.engine.connect() as connection:
        raw = [str(value) for value in connection.execute(
            select(email_accounts_table.c.password)).scalars()]
        raw += [str(value) for value in connection.execute(
            select(sms_gateway_table.c.token)).scalars()]
        dump = repr(connection.execute(select(email_accounts_table)).all())
    assert all(MAIL_PASSWORD not in value and SMS_TOKEN not in value for value in raw)
    assert MAIL_PASSWORD not in dump
    assert any(value.startswith("gAAAA") for value in raw)  # Fernet tokens


def test_another_key_cannot_read_the_secrets_but_exports(
    open_gateway: Callable[..., SqlErpGateway],
) -> None:
    open_gateway(home="station-a").load(full_document())
    other = open_gateway(home="station-b")

    with pytest.raises(SecretKeyError) as caught:
        other.data()

    assert str(caught.value) == (
        "the stored secret cannot be decrypted with this station's key (copy "
        "SOA_HOME/secret.key from the station that stored it, or set SOA_SECRET_KEY)")
    assert MAIL_PASSWORD not in str(caught.value)
    assert other.export().email_accounts[0].password is None
    assert len(other.export().contractors) == 2


def test_the_secret_key_setting_is_used_in_place_of_the_key_file(
    open_gateway: Callable[..., SqlErpGateway], tmp_path: Path,
) -> None:
    key = Fernet.generate_key().decode()
    open_gateway(home="station-a", key=key).load(full_document())

    data = open_gateway(home="station-b", key=key).data()

    assert data.sms_gateway is not None and data.sms_gateway.token is not None
    assert data.sms_gateway.token.get_secret_value() == SMS_TOKEN
    assert not (tmp_path / "station-a" / "secret.key").exists()


def test_money_is_exact(gateway: SqlErpGateway) -> None:
    gateway.load(full_document())
    stored = invoice("FA/1/01/2026")
    with gateway.transaction() as writer:
        writer.add_invoice(stored)

    data = gateway.data()
    read = gateway.invoice("FA/1/01/2026")

    abo = {product.code: product for product in data.products}["ABO"]
    assert str(abo.net_price) == "0.10"
    assert {r.id: str(r.amount) for r in data.receivables} == {"N1": "100.00",
                                                              "N2": "1234567890.12"}
    assert str({r.id: r.remaining for r in data.receivables}["N2"]) == "0.10"
    assert str(data.dunning_schemes[0].skip_up_to) == "5.00"
    assert [str(line.quantity) for line in data.recurring_invoices[1].lines] == ["2.5", "1"]
    assert str(data.recurring_invoices[0].lines[0].quantity) == "0.0001"
    assert read == stored
    assert read is not None
    assert [str(line.unit_net_price) for line in read.lines] == ["0.10", "99.99", "0.33",
                                                                 "10.00"]
    assert [str(line.quantity) for line in read.lines] == ["2.5", "1", "3", "1"]
    assert list(read.vat_by_rate) == ["23", "8", "zw"]
    assert read.as_json() == stored.as_json()


# -- numbering ---------------------------------------------------------------------------

def test_numbers_are_gap_free_per_series_and_reused_after_a_rollback(
    gateway: SqlErpGateway,
) -> None:
    with gateway.transaction() as writer:
        assert [writer.next_number("FA/01/2026") for _ in range(3)] == [1, 2, 3]
        assert writer.next_number("ZS/2026") == 1
    with pytest.raises(RuntimeError), gateway.transaction() as writer:
        assert writer.next_number("FA/01/2026") == 4
        assert writer.next_number("PZ/2026") == 1
        raise RuntimeError("the run failed")

    with gateway.transaction() as writer:
        assert writer.next_number("FA/01/2026") == 4
        assert writer.next_number("PZ/2026") == 1


def test_concurrent_transactions_take_distinct_gap_free_numbers(
    gateway: SqlErpGateway,
) -> None:
    gateway.codes()  # tables created
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def take(rollback_every: int) -> None:
        try:
            for attempt in range(15):
                try:
                    with gateway.transaction() as writer:
                        number = writer.next_number("FA/01/2026")
                        time.sleep(0.002)
                        if attempt % rollback_every == rollback_every - 1:
                            raise LookupError("rolled back")
                except LookupError:
                    continue
                with lock:
                    taken.append(number)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=take, args=(every,)) for every in (4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(taken) == list(range(1, len(taken) + 1))
    assert len(taken) == 30 - 3 - 3


# -- what a transaction adds -------------------------------------------------------------

def test_an_invoice_of_a_recorded_period_rolls_the_whole_transaction_back(
    gateway: SqlErpGateway,
) -> None:
    gateway.load(full_document())
    with gateway.transaction() as writer:
        number = writer.next_number("FA/01/2026")
        writer.add_invoice(invoice(f"FA/{number}/01/2026", template="R1",
                                   period=date(2026, 1, 31)))

    with pytest.raises(AlreadyRecordedError) as caught, gateway.transaction() as writer:
        number = writer.next_number("FA/01/2026")
        writer.add_invoice(invoice(f"FA/{number}/01/2026", template="R0",
                                   period=date(2026, 2, 28)))
        writer.add_outbox(outbox_entry("invoice:FA/2/01/2026"))
        number = writer.next_number("FA/01/2026")
        writer.add_invoice(invoice(f"FA/{number}/01/2026", template="R1",
                                   period=date(2026, 1, 31)))

    assert str(caught.value) == ("an invoice of template R1 for period 2026-01-31 exists "
                                 "already; the transaction was rolled back")
    assert [entry.number for entry in gateway.invoices()] == ["FA/1/01/2026"]
    assert gateway.outbox() == []
    assert gateway.last_periods() == {"R1": date(2026, 1, 31)}
    with gateway.transaction() as writer:
        assert writer.next_number("FA/01/2026") == 2


def test_an_invoice_number_given_twice_is_already_recorded(gateway: SqlErpGateway) -> None:
    with gateway.transaction() as writer:
        writer.add_invoice(invoice("FA/1/01/2026"))

    with pytest.raises(AlreadyRecordedError, match=r"^invoice FA/1/01/2026 exists already; "), \
            gateway.transaction() as writer:
        writer.add_invoice(invoice("FA/1/01/2026", issue_date=date(2026, 2, 1)))

    assert gateway.invoices()[0].issue_date == date(2026, 1, 31)


def test_a_service_order_on_a_recorded_date_is_already_recorded(
    gateway: SqlErpGateway,
) -> None:
    gateway.load(full_document())
    order = ServiceOrder("ZS/1/2026", "S1", "K1", date(2026, 4, 1), "Przegląd", run_id="r")
    with gateway.transaction() as writer:
        writer.add_service_order(order, next_date=date(2026, 10, 1))

    with pytest.raises(AlreadyRecordedError, match="S1 has an order on 2026-04-01 already"), \
            gateway.transaction() as writer:
        writer.add_service_order(replace(order, number="ZS/2/2026"),
                                 next_date=date(2027, 4, 1))

    assert gateway.service_orders() == [order]
    assert {t.code: t.next_date for t in gateway.data().service_order_templates}["S1"] \
        == date(2026, 10, 1)


def test_a_dunning_stage_recorded_twice_rolls_back_and_dooms_the_transaction(
    gateway: SqlErpGateway,
) -> None:
    gateway.load(full_document())
    with gateway.transaction() as writer:
        writer.add_dunning_entry(dunning_entry("N1", 1))

    with gateway.transaction() as writer:
        writer.block_sales("K1")
        with pytest.raises(AlreadyRecordedError, match="N1 has a dunning history line for "
                                                       "stage 1 already"):
            writer.add_dunning_entry(dunning_entry("N1", 1))
        with pytest.raises(AlreadyRecordedError):  # the transaction is lost
            writer.add_dunning_entry(dunning_entry("N2", 1))

    assert gateway.dunning_history() == [dunning_entry("N1", 1)]
    assert not {c.code: c.sales_blocked for c in gateway.data().contractors}["K1"]


def test_a_payment_reminder_number_is_unique(gateway: SqlErpGateway) -> None:
    reminder = PaymentReminder("PZ/1/2026", "N1", "K1", "FV/1/2026", date(2026, 2, 1),
                               date(2026, 2, 8), Decimal("0.10"), "PLN", 17)
    with gateway.transaction() as writer:
        writer.add_payment_reminder(reminder)

    with pytest.raises(AlreadyRecordedError, match="payment reminder PZ/1/2026 exists"), \
            gateway.transaction() as writer:
        writer.add_payment_reminder(reminder)

    assert gateway.payment_reminder("PZ/1/2026") == reminder
    assert gateway.payment_reminder("PZ/2/2026") is None


def test_writes_of_a_transaction_show_up_in_the_views(gateway: SqlErpGateway) -> None:
    gateway.load(full_document())
    start = datetime(2026, 2, 1, 9, 30, tzinfo=WARSAW)
    with gateway.transaction() as writer:
        writer.add_invoice(invoice("FA/2/01/2026", template="R1", period=date(2026, 1, 31)))
        writer.add_invoice(invoice("FA/1/02/2026", template="R1", period=date(2026, 2, 28)))
        writer.add_invoice(invoice("FPF/1/01/2026", template="R0", period=date(2026, 2, 2),
                                   type_="FPF"))
        writer.add_dunning_entry(dunning_entry("N2", 2))
        writer.add_dunning_entry(dunning_entry("N1", 3))
        writer.add_dunning_entry(dunning_entry("N1", 1))
        writer.add_crm_task("DUN/N1/2", "Windykacja N1", start, "K1", "anna")
        writer.block_sales("K2")

    assert gateway.last_periods() == {"R1": date(2026, 2, 28), "R0": date(2026, 2, 2)}
    assert gateway.dunning_stages_done() == {"N1": {1, 3}, "N2": {2}}
    assert [(e.receivable, e.stage) for e in gateway.dunning_history()] == [
        ("N1", 1), ("N1", 3), ("N2", 2)]
    data = gateway.data()
    task = {task.id: task for task in data.crm_tasks}["DUN/N1/2"]
    assert (task.title, task.start, task.contractor, task.operator, task.reminder) == (
        "Windykacja N1", start, "K1", "anna", None)
    assert {c.code: c.sales_blocked for c in data.contractors} == {"K1": False, "K2": True}


def test_a_crm_task_id_is_unique(gateway: SqlErpGateway) -> None:
    start = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    with gateway.transaction() as writer:
        writer.add_crm_task("DUN/N1/2", "A", start, None, None)

    with pytest.raises(AlreadyRecordedError, match="CRM task DUN/N1/2 exists already"), \
            gateway.transaction() as writer:
        writer.add_crm_task("DUN/N1/2", "B", start, None, None)


def test_invoices_are_ordered_by_issue_date_then_number(gateway: SqlErpGateway) -> None:
    with gateway.transaction() as writer:
        for number in ("FA/10/01/2026", "FA/9/01/2026", "FA/2/01/2026"):
            writer.add_invoice(invoice(number))
        writer.add_invoice(invoice("FA/1/01/2026", issue_date=date(2026, 2, 1)))
        writer.add_invoice(invoice("FA/11/01/2026", status="draft"))
        writer.add_invoice(invoice("FPF/1/01/2026", type_="FPF", issue_date=date(2026, 1, 1)))

    assert [entry.number for entry in gateway.unsent_invoices()] == [
        "FA/2/01/2026", "FA/9/01/2026", "FA/10/01/2026", "FA/1/01/2026", "FPF/1/01/2026"]
    assert len(gateway.invoices()) == 6
    assert gateway.invoice("FA/12/01/2026") is None


def test_a_transaction_is_refused_once_it_ended(gateway: SqlErpGateway) -> None:
    with gateway.transaction() as writer:
        pass

    with pytest.raises(RuntimeError, match="has ended"):
        writer.next_number("FA/01/2026")


# -- the outbox --------------------------------------------------------------------------

def test_a_key_queued_twice_is_refused_without_harming_the_transaction(
    gateway: SqlErpGateway,
) -> None:
    with gateway.transaction() as writer:
        assert writer.add_outbox(outbox_entry("invoice:FA/1/01/2026")) is True
    with gateway.transaction() as writer:
        assert writer.add_outbox(outbox_entry("invoice:FA/1/01/2026")) is False
        assert writer.add_outbox(outbox_entry("invoice:FA/2/01/2026")) is True
        writer.add_invoice(invoice("FA/2/01/2026"))

    assert [entry.key for entry in gateway.outbox()] == ["invoice:FA/1/01/2026",
                                                         "invoice:FA/2/01/2026"]
    assert gateway.invoice("FA/2/01/2026") is not None


def test_outbox_keys_match_a_literal_prefix(gateway: SqlErpGateway) -> None:
    with gateway.transaction() as writer:
        for key in ("reminder:T1:2026", "reminder_x:T2", "order-notice:S1:2026-04-01",
                    "re%:x"):
            writer.add_outbox(outbox_entry(key))

    assert gateway.outbox_keys("reminder:") == {"reminder:T1:2026"}
    assert gateway.outbox_keys("re%") == {"re%:x"}
    assert gateway.outbox_keys("") == {"reminder:T1:2026", "reminder_x:T2",
                                       "order-notice:S1:2026-04-01", "re%:x"}


def test_a_recorded_delivery_marks_the_entry_and_its_invoice_sent(
    gateway: SqlErpGateway,
) -> None:
    with gateway.transaction() as writer:
        writer.add_invoice(invoice("FA/1/01/2026"))
        writer.add_invoice(invoice("FA/2/01/2026"))
        writer.add_outbox(outbox_entry("invoice:FA/1/01/2026", item="FA/1/01/2026",
                                       attachment="invoice:pl:FA/1/01/2026"))
        writer.add_outbox(outbox_entry("reminder:T1", item="FA/2/01/2026",
                                       operation="task_reminders"))
    sent_at = datetime(2026, 2, 1, 10, 0, tzinfo=WARSAW)

    gateway.record_delivery("invoice:FA/1/01/2026", message_id="<m1@soa>", sent_at=sent_at)
    gateway.record_delivery("reminder:T1", message_id="sms-1", sent_at=sent_at)

    sent = gateway.outbox("sent")
    assert [(entry.key, entry.message_id, entry.sent_at) for entry in sent] == [
        ("invoice:FA/1/01/2026", "<m1@soa>", sent_at), ("reminder:T1", "sms-1", sent_at)]
    assert sent[0].sent_at is not None and sent[0].sent_at.tzinfo is UTC
    assert sent[0].created_at is not None and sent[0].created_at.tzinfo is UTC
    assert gateway.outbox("pending") == []
    assert gateway.outbox_to_deliver("invoice_mailing", max_attempts=5) == []
    first = gateway.invoice("FA/1/01/2026")
    assert first is not None and first.sent_at == sent_at
    assert [entry.number for entry in gateway.unsent_invoices()] == ["FA/2/01/2026"]


def test_failed_deliveries_are_retried_until_the_last_attempt(gateway: SqlErpGateway) -> None:
    with gateway.transaction() as writer:
        writer.add_outbox(outbox_entry("invoice:FA/1/01/2026"))
        writer.add_outbox(outbox_entry("invoice:FA/2/01/2026"))
        writer.add_outbox(outbox_entry("reminder:T1", operation="task_reminders"))

    gateway.record_delivery_failure("invoice:FA/1/01/2026", error="550 refused", final=False)
    gateway.record_delivery_failure("invoice:FA/1/01/2026", error="451 later", final=False)

    failed = gateway.outbox("failed")
    assert [(entry.key, entry.status, entry.attempts, entry.error) for entry in failed] == [
        ("invoice:FA/1/01/2026", "failed", 2, "451 later")]
    assert [entry.key for entry in gateway.outbox_to_deliver(
        "invoice_mailing", max_attempts=3)] == ["invoice:FA/1/01/2026", "invoice:FA/2/01/2026"]
    assert [entry.key for entry in gateway.outbox_to_deliver(
        "invoice_mailing", max_attempts=2)] == ["invoice:FA/2/01/2026"]
    assert [entry.key for entry in gateway.outbox_to_deliver(
        "task_reminders", max_attempts=2)] == ["reminder:T1"]


def test_a_final_failure_is_never_retried_and_fails_its_dunning_line(
    gateway: SqlErpGateway,
) -> None:
    with gateway.transaction() as writer:
        writer.add_outbox(outbox_entry("dunning:N1:1", item="N1", operation="dunning"))
        writer.add_dunning_entry(dunning_entry("N1", 1, created="dunning:N1:1"))
        writer.add_outbox(outbox_entry("dunning:N2:2", item="N2", operation="dunning",
                                       attachment="payment_reminder:PZ/1/2026"))
        writer.add_dunning_entry(dunning_entry("N2", 2, created="PZ/1/2026"))
        writer.add_outbox(outbox_entry("dunning:N2:3", item="N2", operation="dunning"))
        writer.add_dunning_entry(dunning_entry("N2", 3, created="dunning:N2:3"))

    gateway.record_delivery_failure("dunning:N1:1", error="no such mailbox", final=True)
    gateway.record_delivery_failure("dunning:N2:2", error="no such mailbox", final=True)
    gateway.record_delivery_failure("dunning:N2:3", error="timeout", final=False)

    assert [entry.key for entry in gateway.outbox_to_deliver("dunning", max_attempts=5)] \
        == ["dunning:N2:3"]
    assert {(e.receivable, e.stage): e.outcome for e in gateway.dunning_history()} == {
        ("N1", 1): "failed", ("N2", 2): "failed", ("N2", 3): "done"}
    given_up = {entry.key: entry for entry in gateway.outbox("failed")}["dunning:N1:1"]
    assert (given_up.attempts, given_up.error) == (1, "no such mailbox")


# -- scale and wiring --------------------------------------------------------------------

def test_ten_thousand_receivables_load_and_read_back(gateway: SqlErpGateway) -> None:
    receivables = [
        {"id": f"N{index:05d}", "contractor": "K1", "document": f"FV/{index}/2026",
         "issue_date": "2026-01-01", "due_date": "2026-01-15", "amount": "100.10",
         "remaining": f"{index % 100}.{index % 10}5"}
        for index in range(10_000)
    ]
    document = ErpDocument.model_validate({"contractors": [{"code": "K1", "name": "Alfa"}],
                                           "receivables": receivables})
    began = time.perf_counter()

    assert gateway.load(document) == {"contractors": 1, "receivables": 10_000}
    data = gateway.data()

    assert time.perf_counter() - began < 20  # a few seconds at most, with a wide margin
    assert data.receivables == document.receivables
    assert gateway.load(document) == {"contractors": 1, "receivables": 10_000}


class FakeDatabase(CompanyDatabase):
    def __init__(self, url: str) -> None:
        self._url = url
        self.engine = create_sql_engine(url)

    @property
    def url(self) -> str:
        return self._url

    def sql_engine(self) -> Engine:
        return self.engine


def test_one_gateway_per_database(tmp_path: Path) -> None:
    gateways = SqlErpGateways(SecretBox.from_home(tmp_path, None))
    first = FakeDatabase(f"sqlite:///{tmp_path / 'a.db'}")
    second = FakeDatabase(f"sqlite:///{tmp_path / 'b.db'}")

    gateway = gateways.for_database(first)

    assert gateways.for_database(first) is gateway
    assert gateways.for_database(second) is not gateway
    assert isinstance(gateway, SqlErpGateway) and gateway.engine is first.engine
    gateway.load(ErpDocument(products=full_document().products))
    assert [product.code for product in gateways.for_database(first).data().products] == [
        "ABO", "SRV"]
    for database in (first, second):
        database.engine.dispose()


def test_the_tables_are_created_once_by_concurrent_first_uses(
    open_gateway: Callable[..., SqlErpGateway],
) -> None:
    gateways = [open_gateway() for _ in range(4)]
    errors: list[BaseException] = []

    def use(gateway: SqlErpGateway) -> None:
        try:
            gateway.codes()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=use, args=(gateway,)) for gateway in gateways]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with gateways[0].engine.connect() as connection:
        assert connection.execute(select(invoices_table)).all() == []


def test_secret_str_round_trip_through_a_document() -> None:
    """The document keeps secrets out of its repr, which the gateway relies on."""
    document = full_document()
    assert MAIL_PASSWORD not in repr(document)
    assert isinstance(document.email_accounts[0].password, SecretStr)
