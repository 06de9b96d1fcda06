"""``sync_mobile`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: master data out (full, differential with changes and deletions, again after a
reset), the reps' new customers, orders and payments in once, and faults survived with
everything delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.operations.sync.mobile import MobileSync
from engine.simulators.partners import PartnerSimulator
from tests.integration.sync_support import (
    SyncRunner,
    company_gateway,
    load,
    sim_post,
    sim_state,
    survive_faults,
)

PRODUCTS = 12
CUSTOMERS = [f"K{i:04}" for i in range(1, 6)]


def company_data() -> dict[str, Any]:
    return {
        "warehouses": [{"code": "MAG", "name": "Główny"}, {"code": "SKL", "name": "Sklep"}],
        "price_types": [{"code": "hurtowa", "name": "Hurtowa"},
                        {"code": "detaliczna", "name": "Detaliczna"}],
        "contractors": [{"code": "GASKA", "name": "Gąska Sp. z o.o.", "nip": "5260250274",
                         "email": "biuro@gaska.pl", "address": "ul. Długa 5, 90-001 Łódź"}]
        + [{"code": code, "name": f"Klient {code}"} for code in CUSTOMERS],
        "products": [{"code": f"P{i:04}", "name": f"Towar {i}", "net_price": "10.00",
                      "vat_rate": "23"} for i in range(PRODUCTS)],
        "stock": [{"product": f"P{i:04}", "warehouse": "MAG", "quantity": "12.5"}
                  for i in range(PRODUCTS)],
        "prices": [{"product": f"P{i:04}", "price_type": kind, "net_price": "18.50"}
                   for i in range(PRODUCTS) for kind in ("hurtowa", "detaliczna")],
        "receivables": [{"id": f"R-{i}", "contractor": "GASKA", "document": f"FS/{i}/12/2026",
                         "issue_date": "2026-12-01", "due_date": "2026-12-20",
                         "amount": "1230.00", "remaining": "230.00"} for i in range(1, 4)],
    }


@pytest.fixture
def runner(store_kind: str, tmp_path: Path,
           simulator: PartnerSimulator) -> Iterator[SyncRunner]:
    sim_post(simulator.url, "/_sim/reset", {})
    with company_gateway(store_kind, tmp_path) as gateway:
        load(gateway, company_data())
        gateway.configure("mobile", url=simulator.base_url("mobile"), credential="klucz-api",
                          settings={"warehouse": "MAG"}, batch_size=5)
        runner = SyncRunner(gateway, MobileSync())
        try:
            yield runner
        finally:
            runner.close()


def mobile_state(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(sim_state(simulator.url)["mobile"])


def by_key(items: list[dict[str, Any]], *fields: str) -> dict[str, dict[str, Any]]:
    return {"|".join(item[name] for name in fields): item for item in items}


def test_full_then_differential_with_changes_and_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    counts = runner.run()
    assert counts["full"] == 1
    # customers + products + products with levels + receivables
    assert counts["sent"] == 6 + PRODUCTS + PRODUCTS + 3
    state = mobile_state(simulator)
    customers = by_key(state["customers"], "code")
    assert customers["GASKA"] == {"code": "GASKA", "name": "Gąska Sp. z o.o.",
                                  "nip": "5260250274", "address": "ul. Długa 5, 90-001 Łódź",
                                  "email": "biuro@gaska.pl", "phone": None}
    products = by_key(state["products"], "code")
    assert len(products) == PRODUCTS
    assert products["P0001"] == {"code": "P0001", "name": "Towar 1", "unit": "szt.",
                                 "vat_rate": "23", "group": None}
    prices = by_key(state["prices"], "product", "price_type")
    assert len(prices) == 2 * PRODUCTS and prices["P0001|hurtowa"]["net_price"] == "18.50"
    stock = by_key(state["stock"], "product", "warehouse")
    assert len(stock) == PRODUCTS and stock["P0001|MAG"]["quantity"] == "12.5"
    receivables = by_key(state["receivables"], "id")
    assert receivables["R-1"] == {"id": "R-1", "customer": "GASKA",
                                  "document": "FS/1/12/2026", "due_date": "2026-12-20",
                                  "amount": "1230.00", "remaining": "230.00",
                                  "currency": "PLN"}

    # Nothing changed: nothing is sent
    assert runner.run().get("sent", 0) == 0

    load(runner.gateway, {
        "contractors": [{"code": "K0001", "name": "Klient pierwszy"}],
        "prices": [{"product": "P0002", "price_type": "hurtowa", "net_price": "17.00"}],
        "stock": [{"product": "P0003", "warehouse": "SKL", "quantity": "4"}],
        "receivables": [{"id": "R-2", "contractor": "GASKA", "document": "FS/2/12/2026",
                         "issue_date": "2026-12-01", "due_date": "2026-12-20",
                         "amount": "1230.00", "remaining": "0.00"}],
        "deletions": [{"entity": "products", "code": "P0004"},
                      {"entity": "contractors", "code": "K0005"},
                      {"entity": "prices", "code": "P0005|detaliczna"}],
    })
    counts = runner.run()
    # K0001, K0005 deleted, P0004 deleted, levels of P0002, P0003, P0005, R-2
    assert counts["sent"] == 7
    state = mobile_state(simulator)
    assert by_key(state["customers"], "code")["K0001"]["name"] == "Klient pierwszy"
    assert "K0005" not in by_key(state["customers"], "code")
    assert "P0004" not in by_key(state["products"], "code")
    prices = by_key(state["prices"], "product", "price_type")
    assert prices["P0002|hurtowa"]["net_price"] == "17.00"
    assert "P0005|detaliczna" not in prices and "P0005|hurtowa" in prices
    assert not any(key.startswith("P0004|") for key in prices)
    stock = by_key(state["stock"], "product", "warehouse")
    assert stock["P0003|SKL"]["quantity"] == "4" and "P0004|MAG" not in stock
    assert by_key(state["receivables"], "id")["R-2"]["remaining"] == "0.00"
    received = state["received_counts"]
    assert received["customers"]["K0001"] == 2 and received["customers"]["K0002"] == 1
    assert received["customers_deleted"] == {"K0005": 1}
    assert received["products_deleted"] == {"P0004": 1}
    assert received["prices"]["P0002|hurtowa"] == 2 and received["prices"]["P0001|hurtowa"] == 1
    assert received["stock"]["P0003|SKL"] == 1 and received["stock"]["P0003|MAG"] == 2
    assert received["receivables"] == {"R-1": 1, "R-2": 2, "R-3": 1}


def test_reset_resends_everything(runner: SyncRunner, simulator: PartnerSimulator) -> None:
    runner.run()
    runner.gateway.request_full("mobile")
    assert runner.run()["full"] == 1
    received = mobile_state(simulator)["received_counts"]
    for collection, size in (("customers", 6), ("products", PRODUCTS),
                             ("prices", 2 * PRODUCTS), ("stock", PRODUCTS),
                             ("receivables", 3)):
        assert len(received[collection]) == size
        assert set(received[collection].values()) == {2}, collection


def new_customer(ident: str, **more: Any) -> dict[str, Any]:
    return {"id": ident, "name": f"Klient {ident}", "nip": None,
            "email": f"{ident.lower()}@example.pl", "phone": "+48665317325",
            "address": {"street": "ul. Leśna 15", "city": "Szczecin",
                        "postal_code": "72-467", "country": "PL"}, **more}


def order(ident: str, customer: Any, **more: Any) -> dict[str, Any]:
    return {"id": ident, "customer": customer, "date": "2026-12-03",
            "lines": [{"code": "P0002", "quantity": "2", "price": "105.52", "vat_rate": "23"}],
            "warehouse": "SKL", "payment": "cash", **more}


def test_customers_orders_and_payments_come_in_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/seed", {"mobile": {
        "customers_new": [new_customer("CU-1"),
                          new_customer("CU-2", name="Gąska", nip="526-025-02-74")],
        "orders": [order("OR-1", "K0002"), order("OR-2", "CU-1", warehouse=None),
                   order("OR-3", new_customer("C-9")), order("OR-4", "NIEMA")],
        "payments": [{"id": "PA-1", "customer": "K0002", "document": "FS/1/12/2026",
                      "date": "2026-12-03", "amount": "481.55", "form": "card"}],
    }})
    counts = runner.run()
    assert counts["received"] == 1 + 3 + 1  # CU-1; OR-1..3; PA-1
    assert counts["customers_created"] == 2 and counts["customers_matched"] == 1
    assert any("CU-2" in warning and "GASKA" in warning for warning in runner.warnings)
    assert any("OR-4" in warning for warning in runner.warnings)
    gateway = runner.gateway
    created = {contractor.code: contractor
               for contractor in gateway.contractors_of(["MOB-CU-1", "MOB-CU-2", "MOB-C-9"])}
    assert set(created) == {"MOB-CU-1", "MOB-C-9"}
    assert created["MOB-CU-1"].address == "ul. Leśna 15, 72-467 Szczecin"
    orders = {item.partner_order_id: item for item in gateway.sales_orders("mobile")}
    assert set(orders) == {"OR-1", "OR-2", "OR-3"}
    assert orders["OR-1"].number == "ZS/1/2026/MOB" and orders["OR-1"].contractor == "K0002"
    assert orders["OR-1"].warehouse == "SKL" and orders["OR-1"].payment_form == "cash"
    assert orders["OR-2"].contractor == "MOB-CU-1" and orders["OR-2"].warehouse == "MAG"
    assert orders["OR-3"].contractor == "MOB-C-9"
    assert str(orders["OR-1"].lines[0].unit_price) == "105.52"
    payments = gateway.all_records("payments")
    assert [(p.id, p.partner_id, p.contractor, p.form, str(p.amount)) for p in payments] \
        == [("MOB-PA-1", "PA-1", "K0002", "card", "481.55")]

    # A rerun, and a re-import of every stream from the start, create nothing
    assert runner.run().get("received", 0) == 0
    with gateway.importing() as writer:
        for stream in ("customers", "orders", "payments"):
            writer.set_position("mobile", f"in:{stream}", "")
    counts = runner.run()
    assert counts.get("received", 0) == 0 and counts.get("customers_created", 0) == 0
    assert len(gateway.sales_orders("mobile")) == 3 and len(gateway.all_records("payments")) == 1
    # The new customers went out to the app with their codes
    assert {"MOB-CU-1", "MOB-C-9"} <= set(by_key(mobile_state(simulator)["customers"], "code"))


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/generate", {
        "partner": "mobile", "collection": "orders", "count": 15,
        "products": [f"P{i:04}" for i in range(PRODUCTS)], "customers": CUSTOMERS})
    sim_post(simulator.url, "/_sim/generate", {
        "partner": "mobile", "collection": "payments", "count": 8, "customers": CUSTOMERS})
    # Fewer, larger requests keep the retries' backoff short
    runner.gateway.configure("mobile", url=simulator.base_url("mobile"), credential=None,
                             settings={}, batch_size=10)
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["requests"]["faults"] > 0
    received = state["mobile"]["received_counts"]
    for collection, size in (("customers", 6), ("products", PRODUCTS),
                             ("prices", 2 * PRODUCTS), ("stock", PRODUCTS),
                             ("receivables", 3)):
        assert len(received[collection]) >= size, collection
        assert all(count == 1 for count in received[collection].values()), collection
    orders = runner.gateway.sales_orders("mobile")
    assert len(orders) == 15 and len({item.partner_order_id for item in orders}) == 15
    assert len({item.number for item in orders}) == 15
    payments = runner.gateway.all_records("payments")
    assert len(payments) == 8 and len({item.partner_id for item in payments}) == 8
