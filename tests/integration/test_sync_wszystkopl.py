"""``sync_wszystkopl`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: a full then a differential synchronisation (changes and deletions), orders in
once, status and tracking numbers back, faults survived with everything delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.adapters.erp_sync_sql import SqlCompanyGateway
from engine.operations.sync.wszystkopl import WszystkoplSync
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
        "contractors": [{"code": "ACME", "name": "Acme sp. z o.o.", "nip": "5260250274",
                         "email": "biuro@acme.pl"}],
        "products": [{"code": f"P{i:03}", "name": f"Towar {i}", "net_price": "10.00",
                      "vat_rate": "23"} for i in range(PRODUCTS)]
        + [{"code": "WYSYLKA", "name": "Wysyłka", "net_price": "0.00", "vat_rate": "23"}],
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
        gateway.configure("wszystkopl", url=simulator.base_url("wszystkopl"), credential=None,
                          settings={"warehouses": ["MAG1"], "price_type": "DET",
                                    "series": "WSZ", "shipping_item": "WYSYLKA"},
                          batch_size=7)
        login(gateway, simulator)
        runner = SyncRunner(gateway, WszystkoplSync())
        try:
            yield runner
        finally:
            runner.close()


def login(gateway: SqlCompanyGateway, simulator: PartnerSimulator) -> None:
    base = simulator.base_url("wszystkopl")
    device = httpx.get(f"{base}/integration/register").json()
    tokens = httpx.get(f"{base}/integration/token",
                       params={"deviceCode": device["deviceCode"]}).json()
    gateway.save_tokens("wszystkopl", tokens)


def offers(simulator: PartnerSimulator) -> dict[str, Any]:
    return {offer["externalId"]: offer
            for offer in sim_state(simulator.url)["wszystkopl"]["offers"]}


def test_full_then_differential_with_changes_and_deletions(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    counts = runner.run()
    assert counts["full"] == 1 and counts["sent"] >= PRODUCTS
    sent = offers(simulator)
    # Check every product is an offer: gross price of DET, stock of MAG1 only
    assert len(sent) == PRODUCTS + 1
    assert sent["P000"]["price"] == "24.60" and sent["P000"]["quantity"] == "5"
    assert sent["P000"]["title"] == "Towar 0" and sent["P000"]["vatRate"] == "23"

    # Nothing changed: a differential run sends nothing
    assert runner.run()["full"] == 0
    before = sim_state(simulator.url)["requests"]["accepted"]
    assert runner.run().get("sent", 0) == 0
    after = sim_state(simulator.url)["requests"]["accepted"]
    assert after - before <= 2  # only the sales page is asked for

    # A price, a stock level, a name change and a deletion
    load(runner.gateway, {
        "prices": [{"product": "P001", "price_type": "DET", "net_price": "30.00"}],
        "stock": [{"product": "P002", "warehouse": "MAG1", "quantity": "1"}],
        "products": [{"code": "P003", "name": "Towar trzeci", "net_price": "10.00",
                      "vat_rate": "23"}],
        "deletions": [{"entity": "products", "code": "P004"}],
    })
    counts = runner.run()
    assert counts["sent"] == 4
    sent = offers(simulator)
    assert sent["P001"]["price"] == "36.90"
    assert sent["P002"]["quantity"] == "1"
    assert sent["P003"]["title"] == "Towar trzeci"
    assert sent["P004"]["status"] == "ended"
    status = runner.gateway.statuses()[0]
    assert status.last_full is not None and status.last_differential is not None
    assert status.last_error is None and not status.full_requested


def test_reset_asks_for_a_full_synchronisation(runner: SyncRunner,
                                               simulator: PartnerSimulator) -> None:
    runner.run()
    runner.gateway.request_full("wszystkopl")
    counts = runner.run()
    assert counts["full"] == 1
    # Check every offer was sent again under the new generation's keys
    received = sim_state(simulator.url)["wszystkopl"]["received_counts"]["offers"]
    assert len(received) == PRODUCTS + 1 and set(received.values()) == {2}


def sale(number: int, **more: Any) -> dict[str, Any]:
    return {
        "id": f"S{number}", "createdAt": "2026-12-01T10:00:00+01:00", "status": "new",
        "buyer": {"login": f"kupiec{number}", "email": f"kupiec{number}@example.pl",
                  "name": "Jan Kowalski", "companyName": None, "nip": None,
                  "phone": "600100200", "address": {"street": "Polna 1", "city": "Kraków",
                                                    "postalCode": "30-001",
                                                    "countryCode": "PL"}},
        "items": [{"offerExternalId": "P001", "title": "Towar 1", "quantity": "2",
                   "price": "24.60", "vatRate": "23"}],
        "shipping": {"method": "kurier", "cost": "15.00"},
        "payment": {"type": "cash_on_delivery", "paid": False}, "total": "64.20", **more,
    }


def test_orders_come_in_once_and_status_goes_back(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sales = [sale(1), sale(2, buyer={"login": "acme", "email": "biuro@acme.pl",
                                     "name": "Acme", "companyName": "Acme sp. z o.o.",
                                     "nip": "526-025-02-74", "phone": None, "address": {}},
                      payment={"type": "online", "paid": True})]
    sim_post(simulator.url, "/_sim/seed", {"wszystkopl": {"sales": sales}})
    counts = runner.run()
    assert counts["received"] == 2
    orders = {order.partner_order_id: order for order in runner.gateway.sales_orders()}
    assert orders["S1"].number == "ZS/1/2026/WSZ" and orders["S2"].number == "ZS/2/2026/WSZ"
    assert orders["S1"].payment_form == "cash" and orders["S2"].payment_form == "transfer"
    assert orders["S2"].contractor == "ACME"  # matched by NIP
    assert orders["S1"].contractor == "WSZ-kupiec1"  # created
    assert orders["S1"].shipping is not None and orders["S1"].shipping.item == "WYSYLKA"
    # A re-run, and a re-import from the start, create nothing
    assert runner.run().get("received", 0) == 0
    with runner.gateway.importing() as writer:
        writer.set_position("wszystkopl", "in:sales", "")
    assert runner.run().get("received", 0) == 0
    assert len(runner.gateway.sales_orders()) == 2

    # Status and tracking numbers set in the ERP go back once
    runner.gateway.update_sales_order(orders["S1"].number, status="sent",
                                      tracking_numbers=["PL123"])
    runner.run()
    runner.run()
    state = sim_state(simulator.url)
    served = {item["id"]: item for item in state["wszystkopl"]["sales"]}
    assert served["S1"]["status"] == "sent"
    assert served["S1"]["trackingNumbers"] == ["PL123"]


def test_a_bad_order_is_warned_about_and_takes_no_number(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    bad = sale(2, items=[{"offerExternalId": "P001", "quantity": "1", "price": "x",
                          "vatRate": "23"}])
    sim_post(simulator.url, "/_sim/seed", {"wszystkopl": {"sales": [sale(1), bad, sale(3)]}})
    assert runner.run()["received"] == 2
    assert [order.number for order in runner.gateway.sales_orders()] == [
        "ZS/1/2026/WSZ", "ZS/2/2026/WSZ"]
    assert any("order S2 of wszystko.pl was not brought in" in warning
               for warning in runner.warnings)


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    sim_post(simulator.url, "/_sim/seed", {"wszystkopl": {"sales": [sale(n) for n in
                                                                     range(1, 21)]}})
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["requests"]["faults"] > 0
    received = state["wszystkopl"]["received_counts"]["offers"]
    assert len(received) == PRODUCTS + 1
    assert all(count == 1 for count in received.values()), received
    assert len(runner.gateway.sales_orders()) == 20
    assert len({order.partner_order_id for order in runner.gateway.sales_orders()}) == 20
