"""``sync_esklep`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: groups and products out (full, differential, deletions, a reset), customers
and orders in once, each order confirmed once, faults survived with everything delivered
once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.operations.sync.esklep import EsklepSettings, EsklepSync
from engine.simulators.partners import PartnerSimulator
from tests.integration.sync_support import (
    SyncRunner,
    company_gateway,
    load,
    sim_post,
    sim_state,
    survive_faults,
)

PRODUCTS = 30


def company_data() -> dict[str, Any]:
    return {
        "warehouses": [{"code": "MAG1", "name": "Główny"}, {"code": "MAG2", "name": "Sklep"}],
        "price_types": [{"code": "DET", "name": "Detaliczna"}],
        "product_groups": [{"code": "NARZ", "name": "Narzędzia"},
                           {"code": "NARZ-R", "name": "Narzędzia ręczne", "parent": "NARZ"},
                           {"code": "PUSTA", "name": "Pusta"}],
        "contractors": [{"code": "ACME", "name": "Acme sp. z o.o.", "nip": "5260250274",
                         "email": "biuro@acme.pl"}],
        "products": [{"code": f"P{i:03}", "name": f"Towar {i}", "net_price": "10.00",
                      "vat_rate": "23", "group": "NARZ-R", "ean": "5901234123457",
                      "attributes": {"kolor": "czarny"}} for i in range(PRODUCTS)],
        "stock": [{"product": f"P{i:03}", "warehouse": warehouse, "quantity": "5"}
                  for i in range(PRODUCTS) for warehouse in ("MAG1", "MAG2")],
        "prices": [{"product": f"P{i:03}", "price_type": "DET", "net_price": "20.00"}
                   for i in range(PRODUCTS)],
    }


@pytest.fixture
def runner(store_kind: str, tmp_path: Path,
           simulator: PartnerSimulator) -> Iterator[SyncRunner]:
    sim_post(simulator.url, "/_sim/reset", {})
    with company_gateway(store_kind, tmp_path) as gateway:
        load(gateway, company_data())
        gateway.configure("esklep", url=simulator.base_url("esklep"), credential="klucz-api",
                          settings={"warehouses": "MAG1", "price_type": "DET"}, batch_size=7)
        runner = SyncRunner(gateway, EsklepSync())
        try:
            yield runner
        finally:
            runner.close()


def shop(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(sim_state(simulator.url)["esklep"])


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in items}


def test_settings_defaults_and_comma_separated_lists() -> None:
    settings = EsklepSettings.model_validate({"warehouses": "MAG1, MAG2"})
    assert settings.warehouses == ["MAG1", "MAG2"] and settings.series == "SKL"
    assert settings.price_type is None and settings.create_customers
    assert settings.match_customers == "nip_email"


def test_full_then_differential_with_changes_and_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    counts = runner.run()
    # A full run reads products by their own changes only: each goes out once, with its
    # stock and prices in its payload
    assert counts["full"] == 1 and counts["sent"] == PRODUCTS + 3
    state = shop(simulator)
    products, groups = by_code(state["products"]), by_code(state["groups"])
    assert len(products) == PRODUCTS and len(groups) == 3
    assert groups["NARZ-R"] == {"code": "NARZ-R", "name": "Narzędzia ręczne",
                                "parent": "NARZ"}
    # Gross price of DET, stock of MAG1 only, the product's group, attributes and EAN
    assert products["P000"] == {
        "code": "P000", "name": "Towar 0", "group": "NARZ-R", "unit": "szt.",
        "vat_rate": "23", "net_price": "20.00", "price": "24.60", "stock": "5",
        "attributes": {"kolor": "czarny"}, "ean": "5901234123457"}

    # Nothing changed: a differential run sends nothing
    assert runner.run().get("sent", 0) == 0

    load(runner.gateway, {
        "prices": [{"product": "P001", "price_type": "DET", "net_price": "30.00"}],
        "stock": [{"product": "P002", "warehouse": "MAG1", "quantity": "1"},
                  {"product": "P005", "warehouse": "MAG2", "quantity": "9"}],
        "products": [{"code": "P003", "name": "Towar trzeci", "net_price": "10.00",
                      "vat_rate": "23", "group": "NARZ"}],
        "product_groups": [{"code": "NARZ", "name": "Narzędzia i akcesoria"}],
        "deletions": [{"entity": "products", "code": "P004"},
                      {"entity": "product_groups", "code": "PUSTA"}],
    })
    counts = runner.run()
    assert counts["full"] == 0 and counts["sent"] == 7
    state = shop(simulator)
    products, groups = by_code(state["products"]), by_code(state["groups"])
    assert products["P001"]["price"] == "36.90" and products["P001"]["net_price"] == "30.00"
    assert products["P002"]["stock"] == "1"
    assert products["P003"]["name"] == "Towar trzeci" and products["P003"]["group"] == "NARZ"
    assert products["P005"]["stock"] == "5"  # MAG2 is not the shop's warehouse
    assert "P004" not in products and "PUSTA" not in groups
    assert groups["NARZ"]["name"] == "Narzędzia i akcesoria"
    received = state["received_counts"]
    assert received["products"]["P000"] == 1
    assert {code: received["products"][code] for code in ("P001", "P002", "P003", "P005")} \
        == {"P001": 2, "P002": 2, "P003": 2, "P005": 2}
    assert received["products_deleted"] == {"P004": 1}
    assert received["groups_deleted"] == {"PUSTA": 1}
    assert received["groups"] == {"NARZ": 2, "NARZ-R": 1, "PUSTA": 1}


def test_reset_resends_everything(runner: SyncRunner, simulator: PartnerSimulator) -> None:
    runner.run()
    runner.gateway.request_full("esklep")
    assert runner.run()["full"] == 1
    received = shop(simulator)["received_counts"]
    assert len(received["products"]) == PRODUCTS
    assert set(received["products"].values()) == {2}  # once per full run
    assert set(received["groups"].values()) == {2}
    assert runner.run()["full"] == 0


def customer(ident: str, **more: Any) -> dict[str, Any]:
    return {"id": ident, "name": "Joanna Wiśniewska", "nip": None,
            "email": f"{ident.lower()}@example.pl", "phone": "+48539183747",
            "address": {"street": "ul. Piłsudskiego 109", "city": "Katowice",
                        "postal_code": "42-393", "country": "PL"}, **more}


def order(ident: str, buyer: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": ident, "number": f"ES/2026/{ident}", "created": "2026-11-28T07:21:20+01:00",
            "status": "awaiting_confirmation", "customer": buyer,
            "lines": [{"code": "P002", "quantity": "5", "price": "78.99", "vat_rate": "23"}],
            "shipping": {"method": "Kurier DPD", "cost": "16.90"},
            "payment": "cash_on_delivery", **more}


def test_customers_and_orders_come_in_once_and_are_confirmed_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/seed", {"esklep": {
        "customers": [customer("CU-1"),
                      customer("CU-2", name="Acme", nip="526-025-02-74", email=None)],
        "orders": [order("OR-1", customer("C-1")),
                   order("OR-2", customer("C-2", email="biuro@acme.pl"), payment="online"),
                   order("OR-3", customer("C-3"), status="confirmed")],
    }})
    counts = runner.run()
    assert counts["received"] == 3  # one customer created, two orders
    assert counts["customers_created"] == 2 and counts["customers_matched"] == 2
    assert counts["orders_confirmed"] == 2
    created = {contractor.code: contractor
               for contractor in runner.gateway.contractors_of(["SKL-CU-1", "SKL-C-1"])}
    assert created["SKL-CU-1"].email == "cu-1@example.pl"
    assert created["SKL-CU-1"].address == "ul. Piłsudskiego 109, 42-393 Katowice"
    orders = {item.partner_order_id: item for item in runner.gateway.sales_orders("esklep")}
    assert set(orders) == {"OR-1", "OR-2"}  # OR-3 is not awaiting confirmation
    assert orders["OR-1"].number == "ZS/1/2026/SKL" and orders["OR-2"].number == "ZS/2/2026/SKL"
    assert orders["OR-1"].contractor == "SKL-C-1" and orders["OR-2"].contractor == "ACME"
    assert orders["OR-1"].payment_form == "cash" and orders["OR-2"].payment_form == "online"
    assert orders["OR-1"].shipping is not None and str(orders["OR-1"].shipping.amount) == "16.90"
    assert orders["OR-1"].lines[0].product == "P002"
    assert {item.status_reported for item in orders.values()} == {"confirmed"}
    served = {item["id"]: item for item in shop(simulator)["orders"]}
    assert served["OR-1"]["status"] == "confirmed"
    assert served["OR-1"]["erp_number"] == "ZS/1/2026/SKL"
    assert served["OR-2"]["erp_number"] == "ZS/2/2026/SKL"

    # A rerun, and a re-import from empty cursors, create and confirm nothing again
    assert runner.run().get("received", 0) == 0
    with runner.gateway.importing() as writer:
        writer.set_position("esklep", "in:customers", "")
        writer.set_position("esklep", "in:orders", "")
    counts = runner.run()
    assert counts.get("received", 0) == 0 and counts.get("customers_created", 0) == 0
    assert counts.get("orders_confirmed", 0) == 0
    assert len(runner.gateway.sales_orders("esklep")) == 2
    assert shop(simulator)["received_counts"]["confirmations"] == {"OR-1": 1, "OR-2": 1}


def test_an_order_the_shop_refuses_to_confirm_is_warned_about_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    load(runner.gateway, {"sales_orders": [{
        "number": "ZS/9/2026/SKL", "series": "SKL", "partner": "esklep",
        "partner_order_id": "OR-NIEZNANE", "contractor": "ACME", "date": "2026-12-01",
        "lines": [{"product": "P001", "quantity": "1", "unit_price": "24.60",
                   "vat_rate": "23"}]}]})
    counts = runner.run()
    assert counts["confirmations_refused"] == 1
    assert any("OR-NIEZNANE" in warning for warning in runner.warnings)
    assert runner.run().get("confirmations_refused", 0) == 0


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/generate", {"partner": "esklep", "collection": "orders",
                                               "count": 12, "products": ["P001", "P002"]})
    sim_post(simulator.url, "/_sim/generate", {"partner": "esklep",
                                               "collection": "customers", "count": 8})
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["requests"]["faults"] > 0
    received = state["esklep"]["received_counts"]
    assert len(received["products"]) == PRODUCTS and len(received["groups"]) == 3
    assert all(count == 1 for count in received["products"].values()), received["products"]
    assert all(count == 1 for count in received["groups"].values()), received["groups"]
    orders = runner.gateway.sales_orders("esklep")
    assert len(orders) == 12 and len({item.partner_order_id for item in orders}) == 12
    assert len({item.number for item in orders}) == 12
    assert len(received["confirmations"]) == 12
    assert all(count == 1 for count in received["confirmations"].values())
    assert all(item["status"] == "confirmed" for item in state["esklep"]["orders"])
