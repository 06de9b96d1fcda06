"""``sync_xl`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: the branch's documents, cash entries and payments out (full, differential,
again after a reset; deletions are not sent), headquarters' products, customers and
price lists in once (changes and deletions), and faults survived with everything
delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.erp_sync_sql import SqlCompanyGateway
from engine.erp.model import Invoice, InvoiceLine, InvoiceStatus, InvoiceType
from engine.erp.money import document_amounts, line_net
from engine.operations.sync.xl import XlSync
from engine.simulators.partners import PartnerSimulator
from tests.integration.sync_support import (
    SyncRunner,
    company_gateway,
    load,
    sim_post,
    sim_state,
    survive_faults,
)

ENTRIES = 6


def company_data() -> dict[str, Any]:
    return {
        "warehouses": [{"code": "MAG", "name": "Główny"}],
        "price_types": [{"code": "hurtowa", "name": "Hurtowa"}],
        "contractors": [{"code": "GASKA", "name": "Gąska Sp. z o.o.", "nip": "5260250274"},
                        {"code": "K0003", "name": "Stary klient", "dunning_scheme": None,
                         "sales_blocked": True}],
        "products": [{"code": "P0001", "name": "Młotek", "net_price": "10.00",
                      "vat_rate": "23", "group": None, "ean": "5901234123457"},
                     {"code": "P0009", "name": "Wycofany", "net_price": "1.00",
                      "vat_rate": "23"}],
        "retail_documents": [
            {"number": "PA/1/2026", "type": "receipt", "date": "2026-12-03",
             "lines": [{"product": "P0001", "quantity": "2", "unit_price": "12.30",
                        "vat_rate": "23"},
                       {"product": "P0001", "quantity": "1", "unit_price": "10.80",
                        "vat_rate": "8"}]}],
        "cash_entries": [{"id": f"KP/{i}/2026", "date": "2026-12-03", "kind": "KP",
                          "amount": "123.00", "description": f"Wpłata {i}"}
                         for i in range(1, ENTRIES + 1)],
        "payments": [{"id": f"WB/{i}/2026", "contractor": "GASKA", "document": "FA/1/12/2026",
                      "date": "2026-12-04", "amount": "123.00", "form": "transfer"}
                     for i in range(1, ENTRIES + 1)],
    }


def invoice(number: str, status: InvoiceStatus = "issued",
            type_: InvoiceType = "FA") -> Invoice:
    specs: list[tuple[Decimal, Decimal]] = [(Decimal("2"), Decimal("50.00"))]
    amounts = document_amounts([(line_net(quantity, price), "23") for quantity, price in specs])
    day = date(2026, 12, 3)
    return Invoice(
        number=number, type=type_, contractor="GASKA", issue_date=day, sale_date=day,
        due_date=day + timedelta(days=14), currency="PLN", status=status, template=None,
        period=None, lines=tuple(InvoiceLine("P0001", "Młotek", quantity, price, "23",
                                             amounts.lines[index])
                                 for index, (quantity, price) in enumerate(specs)),
        vat_by_rate=amounts.by_rate, totals=amounts.totals, run_id="run-1")


def add_invoices(gateway: SqlCompanyGateway, *invoices: Invoice) -> None:
    with gateway.transaction() as writer:
        for made in invoices:
            writer.add_invoice(made)


@pytest.fixture
def runner(store_kind: str, tmp_path: Path,
           simulator: PartnerSimulator) -> Iterator[SyncRunner]:
    sim_post(simulator.url, "/_sim/reset", {})
    with company_gateway(store_kind, tmp_path) as gateway:
        load(gateway, company_data())
        add_invoices(gateway, invoice("FA/1/12/2026"), invoice("FA/2/12/2026", "draft"),
                     invoice("FPF/1/12/2026", type_="FPF"))
        gateway.configure("xl", url=simulator.base_url("xl"), credential="klucz-api",
                          settings={}, batch_size=4)
        runner = SyncRunner(gateway, XlSync())
        try:
            yield runner
        finally:
            runner.close()


def xl_state(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(sim_state(simulator.url)["xl"])


def by_key(items: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    return {item[field]: item for item in items}


def test_full_then_differential_without_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    counts = runner.run()
    assert counts["full"] == 1 and counts["sent"] == 2 + 2 * ENTRIES
    state = xl_state(simulator)
    documents = by_key(state["documents"], "number")
    assert set(documents) == {"FA/1/12/2026", "PA/1/2026"}  # no draft, no pro forma
    invoice_sent = documents["FA/1/12/2026"]
    assert (invoice_sent["kind"], invoice_sent["type"], invoice_sent["date"],
            invoice_sent["contractor"], invoice_sent["net"], invoice_sent["vat"],
            invoice_sent["gross"], invoice_sent["currency"]) == \
        ("sales", "FA", "2026-12-03", "GASKA", "100.00", "23.00", "123.00", "PLN")
    receipt = documents["PA/1/2026"]
    # 24.60 gross at 23% -> 20.00 net; 10.80 gross at 8% -> 10.00 net
    assert (receipt["kind"], receipt["type"], receipt["net"], receipt["vat"],
            receipt["gross"], receipt["contractor"]) == \
        ("sales", "receipt", "30.00", "5.40", "35.40", None)
    assert by_key(state["entries"], "id")["KP/1/2026"] == {
        "id": "KP/1/2026", "date": "2026-12-03", "kind": "KP", "amount": "123.00",
        "description": "Wpłata 1", "cash_register": ""}
    assert by_key(state["payments"], "id")["WB/1/2026"] == {
        "id": "WB/1/2026", "contractor": "GASKA", "document": "FA/1/12/2026",
        "date": "2026-12-04", "amount": "123.00", "currency": "PLN", "form": "transfer"}

    assert runner.run().get("sent", 0) == 0

    load(runner.gateway, {
        "cash_entries": [{"id": "KP/2/2026", "date": "2026-12-03", "kind": "KP",
                          "amount": "150.00", "description": "Wpłata 2"}],
        "payments": [{"id": "WB/9/2026", "contractor": "GASKA", "date": "2026-12-05",
                      "amount": "10.00", "form": "cash"}],
        "deletions": [{"entity": "payments", "code": "WB/1/2026"}],
    })
    add_invoices(runner.gateway, invoice("FA/3/12/2026"))
    counts = runner.run()
    assert counts["sent"] == 3 and counts["deletions_not_sent"] == 1
    assert any("WB/1/2026" in warning for warning in runner.warnings)
    state = xl_state(simulator)
    assert by_key(state["entries"], "id")["KP/2/2026"]["amount"] == "150.00"
    received = state["received_counts"]
    assert received["entries"]["KP/2/2026"] == 2 and received["entries"]["KP/1/2026"] == 1
    assert received["payments"]["WB/9/2026"] == 1 and received["payments"]["WB/1/2026"] == 1
    assert received["documents"] == {"FA/1/12/2026": 1, "PA/1/2026": 1, "FA/3/12/2026": 1}


def test_reset_resends_everything(runner: SyncRunner, simulator: PartnerSimulator) -> None:
    runner.run()
    runner.gateway.request_full("xl")
    assert runner.run()["full"] == 1
    received = xl_state(simulator)["received_counts"]
    assert received["documents"] == {"FA/1/12/2026": 2, "PA/1/2026": 2}
    for collection in ("entries", "payments"):
        assert len(received[collection]) == ENTRIES
        assert set(received[collection].values()) == {2}


def test_master_data_comes_in_once_with_changes_and_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    address = {"street": "ul. Szkolna 48", "city": "Kraków", "postal_code": "33-176",
               "country": "PL"}
    sim_post(simulator.url, "/_sim/seed", {"xl": {
        "products": [
            {"code": "P0001", "name": "Młotek stalowy", "unit": "szt", "vat_rate": "23",
             "net_price": "19.99", "deleted": False},
            {"code": "P0002", "name": "Gwoździe", "unit": "kg", "vat_rate": "8",
             "net_price": "7.50", "deleted": False},
            {"code": "P0003", "name": "Zły", "unit": "szt", "vat_rate": "17",
             "net_price": "1.00", "deleted": False},
            {"code": "P0002", "name": "Gwoździe", "unit": "kg", "vat_rate": "8",
             "net_price": "7.50", "deleted": True},
            {"code": "P0009", "deleted": True}],
        "customers": [
            {"code": "K0001", "name": "Paweł Wiśniewski", "nip": None,
             "email": "pawel@onet.pl", "phone": "+48856702218", "address": address,
             "deleted": False},
            {"code": "K0003", "name": "Nowa nazwa", "nip": None, "email": None,
             "phone": None, "address": address, "deleted": False},
            {"code": "GASKA", "deleted": True}],
        "prices": [{"product": "P0001", "price_type": "hurtowa", "net_price": "15.40"},
                   {"product": "P0001", "price_type": "detaliczna", "net_price": "21.00"},
                   {"product": "P0099", "price_type": "hurtowa", "net_price": "1.00"}],
    }})
    counts = runner.run()
    # P0001 changed, P0009 deleted (P0002 is deleted later in its page: never made);
    # K0001 made, K0003 changed, GASKA deleted; two prices
    assert counts["received"] == 2 + 3 + 2
    assert counts["products_deleted"] == 1 and counts["contractors_deleted"] == 1
    assert counts["price_types_created"] == 1
    assert any("P0003" in warning for warning in runner.warnings)
    assert any("P0099" in warning for warning in runner.warnings)
    gateway = runner.gateway
    [record] = gateway.product_records(["P0001", "P0002", "P0003", "P0009"])
    assert (record.product.name, record.product.unit, str(record.product.net_price)) == \
        ("Młotek stalowy", "szt", "19.99")
    assert record.product.ean == "5901234123457"  # the branch's own detail stays
    assert record.prices == {"hurtowa": Decimal("15.40"), "detaliczna": Decimal("21.00")}
    contractors = {item.code: item for item in gateway.contractors_of(["K0001", "K0003",
                                                                        "GASKA"])}
    assert set(contractors) == {"K0001", "K0003"}
    assert contractors["K0001"].address == "ul. Szkolna 48, 33-176 Kraków"
    assert contractors["K0003"].name == "Nowa nazwa" and contractors["K0003"].sales_blocked

    # A rerun, and a re-import of every stream from the start, change nothing
    assert runner.run().get("received", 0) == 0
    with gateway.importing() as writer:
        for stream in ("products", "customers", "prices"):
            writer.set_position("xl", f"in:{stream}", "")
    assert runner.run().get("received", 0) == 0
    assert [item.product.code for item in gateway.product_records(["P0001", "P0002",
                                                                   "P0009"])] == ["P0001"]
    assert len(gateway.contractors_of(["K0001", "K0003", "GASKA"])) == 2


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/generate", {
        "partner": "xl", "collection": "products", "count": 25,
        "products": [f"P{i:04}" for i in range(1, 21)]})
    sim_post(simulator.url, "/_sim/generate", {
        "partner": "xl", "collection": "customers", "count": 15})
    sim_post(simulator.url, "/_sim/generate", {
        "partner": "xl", "collection": "prices", "count": 30,
        "products": [f"P{i:04}" for i in range(1, 21)]})
    # Fewer, larger requests keep the retries' backoff short
    runner.gateway.configure("xl", url=simulator.base_url("xl"), credential=None,
                             settings={}, batch_size=10)
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["requests"]["faults"] > 0
    received = state["xl"]["received_counts"]
    assert received["documents"] == {"FA/1/12/2026": 1, "PA/1/2026": 1}
    for collection in ("entries", "payments"):
        assert len(received[collection]) == ENTRIES
        assert all(count == 1 for count in received[collection].values()), collection
    served = state["xl"]
    codes = {item["code"] for item in served["products"]}
    assert len(runner.gateway.product_records(sorted(codes))) == len(codes)
    customers = {item["code"] for item in served["customers"]}
    assert len(runner.gateway.contractors_of(sorted(customers))) == len(customers)
    prices = {(item["product"], item["price_type"]): item["net_price"]
              for item in served["prices"]}
    stored = {(record.product.code, kind): f"{price:.2f}"
              for record in runner.gateway.product_records(sorted(codes))
              for kind, price in record.prices.items()}
    assert stored == prices
