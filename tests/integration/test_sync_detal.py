"""``sync_detal`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: products and customers out (full, differential, deletions, a reset); till
customers, documents (taking stock, shortfalls kept and warned about) and cash entries in
once; faults survived with everything delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.adapters import erp_trade_sql as trade
from engine.erp.trade import CashEntry, RetailDocument
from engine.operations.sync.detal import DetalSettings, DetalSync
from engine.simulators.partners import PartnerSimulator
from tests.integration.sync_support import (
    SyncRunner,
    company_gateway,
    load,
    sim_post,
    sim_state,
    survive_faults,
)

PRODUCTS = 20
DAY = "2026-12-03"


def company_data() -> dict[str, Any]:
    return {
        "warehouses": [{"code": "MAG", "name": "Sklep"}, {"code": "KASA", "name": "Kasa"}],
        "price_types": [{"code": "DET", "name": "Detaliczna"}],
        "contractors": [{"code": "ACME", "name": "Acme sp. z o.o.", "nip": "5260250274",
                         "email": "biuro@acme.pl", "address": "ul. Długa 5, 90-001 Łódź"},
                        {"code": "BETA", "name": "Beta", "email": "beta@example.pl"}],
        "products": [{"code": f"P{i:03}", "name": f"Towar {i}", "net_price": "10.00",
                      "vat_rate": "23", "ean": "5901234123457"} for i in range(PRODUCTS)],
        "stock": [{"product": f"P{i:03}", "warehouse": warehouse, "quantity": "5"}
                  for i in range(PRODUCTS) for warehouse in ("MAG", "KASA")],
        "prices": [{"product": f"P{i:03}", "price_type": "DET", "net_price": "20.00"}
                   for i in range(PRODUCTS)],
    }


def connect(runner: SyncRunner, simulator: PartnerSimulator, **settings: Any) -> None:
    runner.gateway.configure("detal", url=simulator.base_url("detal"), credential="klucz",
                             settings={"price_type": "DET", **settings}, batch_size=7)


@pytest.fixture
def runner(store_kind: str, tmp_path: Path,
           simulator: PartnerSimulator) -> Iterator[SyncRunner]:
    sim_post(simulator.url, "/_sim/reset", {})
    with company_gateway(store_kind, tmp_path) as gateway:
        load(gateway, company_data())
        runner = SyncRunner(gateway, DetalSync())
        connect(runner, simulator)
        try:
            yield runner
        finally:
            runner.close()


def till(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(sim_state(simulator.url)["detal"])


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in items}


def stock(runner: SyncRunner, product: str, warehouse: str = "MAG") -> Decimal:
    levels = runner.gateway.records("stock", [f"{product}|{warehouse}"])
    return levels[0].quantity if levels else Decimal(0)


def shortfalls(runner: SyncRunner) -> list[dict[str, str]]:
    with runner.gateway.engine.connect() as connection:
        return trade.shortfalls(connection)


def test_settings_defaults() -> None:
    settings = DetalSettings.model_validate({})
    assert settings.price_type is None and settings.warehouse is None
    assert settings.create_customers


def test_full_then_differential_with_changes_and_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    counts = runner.run()
    # A full run reads products by their own changes only: each goes out once
    assert counts["full"] == 1 and counts["sent"] == PRODUCTS + 2
    state = till(simulator)
    products, customers = by_code(state["products"]), by_code(state["customers"])
    assert products["P000"] == {"code": "P000", "name": "Towar 0", "unit": "szt.",
                                "vat_rate": "23", "price": "24.60", "ean": "5901234123457"}
    assert customers["ACME"] == {"code": "ACME", "name": "Acme sp. z o.o.",
                                 "nip": "5260250274", "address": "ul. Długa 5, 90-001 Łódź",
                                 "email": "biuro@acme.pl", "phone": None}
    assert runner.run().get("sent", 0) == 0

    load(runner.gateway, {
        "prices": [{"product": "P001", "price_type": "DET", "net_price": "30.00"}],
        "products": [{"code": "P002", "name": "Towar drugi", "net_price": "10.00",
                      "vat_rate": "8"}],
        "contractors": [{"code": "BETA", "name": "Beta sp. j.", "email": "beta@example.pl"}],
        "deletions": [{"entity": "products", "code": "P003"},
                      {"entity": "contractors", "code": "ACME"}],
    })
    counts = runner.run()
    assert counts["sent"] == 5
    state = till(simulator)
    products, customers = by_code(state["products"]), by_code(state["customers"])
    assert products["P001"]["price"] == "36.90"
    assert products["P002"]["name"] == "Towar drugi" and products["P002"]["price"] == "21.60"
    assert customers["BETA"]["name"] == "Beta sp. j."
    assert "P003" not in products and "ACME" not in customers
    received = state["received_counts"]
    assert received["products"]["P000"] == 1 and received["products"]["P001"] == 2
    assert received["products_deleted"] == {"P003": 1}
    assert received["customers"] == {"ACME": 1, "BETA": 2}
    assert received["customers_deleted"] == {"ACME": 1}


def test_reset_resends_everything(runner: SyncRunner, simulator: PartnerSimulator) -> None:
    runner.run()
    runner.gateway.request_full("detal")
    assert runner.run()["full"] == 1
    received = till(simulator)["received_counts"]
    assert len(received["products"]) == PRODUCTS
    assert set(received["products"].values()) == {2}  # once per full run
    assert received["customers"] == {"ACME": 2, "BETA": 2}


def document(ident: str, kind: str, number: str, lines: list[tuple[str, str]],
             **more: Any) -> dict[str, Any]:
    return {"id": ident, "type": kind, "number": number, "date": DAY, "warehouse": "MAG",
            "customer": None, "payment": "card", "from_receipt": None, "corrects": None,
            "lines": [{"code": code, "quantity": quantity, "price": "24.60", "vat_rate": "23"}
                      for code, quantity in lines], **more}


BUDMAX = {"id": "C-2", "name": "Budmax Sp. z o.o.", "nip": "1234563218",
          "address": {"street": "ul. Polna 4", "city": "Poznań", "postal_code": "61-200",
                      "country": "PL"}}


def seed_till(simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/seed", {"detal": {
        "customers_new": [
            {"id": "CU-1", "name": "Acme", "nip": "526-025-02-74", "email": None,
             "phone": None, "address": None},
            {"id": "CU-2", "name": "Joanna Wójcik", "nip": None, "email": "jw@o2.pl",
             "phone": "+48673901408", "address": {"street": "ul. Szkolna 86",
                                                  "city": "Warszawa",
                                                  "postal_code": "06-433"}}],
        "documents": [
            document("DO-1", "receipt", "PA/1/12/2026", [("P001", "2")]),
            document("DO-2", "invoice", "FS/2/12/2026", [("P001", "2")],
                     from_receipt="DO-1", customer=BUDMAX),
            document("DO-3", "correction", "KOR/3/12/2026", [("P001", "-1")],
                     corrects="DO-1"),
            document("DO-4", "invoice", "FS/4/12/2026", [("P002", "7")], customer="ACME"),
            document("DO-5", "receipt", "PA/5/12/2026", [("P003", "6"), ("NIEMA", "1")]),
        ],
        "cash": [{"id": "CA-1", "date": DAY, "kind": "KP", "amount": "801.54",
                  "description": "Wpłata utargu", "register": "KASA1"},
                 {"id": "CA-2", "date": DAY, "kind": "KW", "amount": "100.00",
                  "description": "Wypłata do banku", "register": "KASA1"}],
    }})


def test_documents_cash_and_customers_come_in_once_and_take_stock(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    seed_till(simulator)
    counts = runner.run()
    assert counts["received"] == 1 + 5 + 2  # one till customer created (CU-1 is ACME)
    assert counts["customers_created"] == 2 and counts["customers_matched"] == 1
    assert counts["shortfalls"] == 2
    created = {contractor.code: contractor
               for contractor in runner.gateway.contractors_of(["DET-CU-2", "DET-C-2"])}
    assert created["DET-CU-2"].email == "jw@o2.pl"
    assert created["DET-C-2"].nip == "1234563218"
    assert created["DET-C-2"].address == "ul. Polna 4, 61-200 Poznań"

    documents: dict[str, RetailDocument] = {
        entry.partner_id: entry for entry in runner.gateway.all_records("retail_documents")}
    assert set(documents) == {"DO-1", "DO-2", "DO-3", "DO-4", "DO-5"}
    assert documents["DO-2"].from_receipt == "PA/1/12/2026"
    assert documents["DO-2"].contractor == "DET-C-2"
    assert documents["DO-3"].corrects == "PA/1/12/2026"
    assert documents["DO-3"].lines[0].quantity == Decimal(-1)
    assert documents["DO-4"].contractor == "ACME" and documents["DO-4"].payment_form == "card"
    # The receipt took 2, the invoice made from it nothing, the correction gave 1 back
    assert stock(runner, "P001") == 4 and stock(runner, "P001", "KASA") == 5
    # Never negative: what was missing is a shortfall of the day and warehouse
    assert stock(runner, "P002") == 0 and stock(runner, "P003") == 0
    assert [(row["day"], row["warehouse"], row["product"], Decimal(row["quantity"]))
            for row in shortfalls(runner)] == [(DAY, "MAG", "P002", Decimal(2)),
                                               (DAY, "MAG", "P003", Decimal(1))]
    short = [warning for warning in runner.warnings if "short" in warning]
    assert len(short) == 1 and DAY in short[0] and "MAG" in short[0]
    assert any("NIEMA" in warning for warning in runner.warnings)
    cash: dict[str, CashEntry] = {
        entry.partner_id: entry for entry in runner.gateway.all_records("cash_entries")}
    assert cash["CA-1"].id == "DET-CA-1" and cash["CA-1"].kind == "KP"
    assert str(cash["CA-1"].amount) == "801.54" and cash["CA-1"].cash_register == "KASA1"
    assert cash["CA-2"].kind == "KW"

    # A rerun, and a re-import from empty cursors, bring nothing in again
    assert runner.run().get("received", 0) == 0
    with runner.gateway.importing() as writer:
        for stream in ("customers", "documents", "cash"):
            writer.set_position("detal", f"in:{stream}", "")
    counts = runner.run()
    assert counts.get("received", 0) == 0 and counts.get("shortfalls", 0) == 0
    assert counts.get("customers_created", 0) == 0
    assert len(runner.gateway.all_records("retail_documents")) == 5
    assert len(runner.gateway.all_records("cash_entries")) == 2
    assert stock(runner, "P001") == 4
    # The till's new customers went out to it as customers
    assert {"DET-CU-2", "DET-C-2"} <= set(by_code(till(simulator)["customers"]))


def test_the_tills_warehouse_setting_wins_over_the_documents(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    connect(runner, simulator, warehouse="KASA", create_customers=False)
    seed_till(simulator)
    runner.run()
    assert stock(runner, "P001") == 5 and stock(runner, "P001", "KASA") == 4
    assert {row["warehouse"] for row in shortfalls(runner)} == {"KASA"}
    documents = {entry.partner_id: entry
                 for entry in runner.gateway.all_records("retail_documents")}
    assert documents["DO-2"].contractor is None  # not created, kept without a customer
    assert not runner.gateway.contractors_of(["DET-CU-2", "DET-C-2"])


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sold = ["P000", "P001", "P002"]
    sim_post(simulator.url, "/_sim/generate", {"partner": "detal", "collection": "documents",
                                               "count": 20, "products": sold,
                                               "customers": ["ACME", "BETA"]})
    sim_post(simulator.url, "/_sim/generate", {"partner": "detal", "collection": "cash",
                                               "count": 8})
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["requests"]["faults"] > 0
    received = state["detal"]["received_counts"]
    assert len(received["products"]) == PRODUCTS
    # Every product went out once, in the full run: the stock its sales took does not
    # send it back (the till's product carries no stock)
    assert set(received["products"].values()) == {1}, received["products"]
    assert all(count == 1 for count in received["customers"].values()), received["customers"]
    documents = runner.gateway.all_records("retail_documents")
    assert len(documents) == 20 and len({entry.partner_id for entry in documents}) == 20
    cash = runner.gateway.all_records("cash_entries")
    assert len(cash) == 8 and len({entry.partner_id for entry in cash}) == 8
    assert all(level.quantity >= 0 for level in runner.gateway.all_records("stock"))
