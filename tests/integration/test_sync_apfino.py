"""``sync_apfino`` against the partner simulator over loopback HTTP, on SQLite and
PostgreSQL: issued invoices and their payments out (full, then differential), a requested
full synchronisation, payment links asked once for the invoices that qualify, faults
survived with everything delivered exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.erp_sync_sql import SqlCompanyGateway
from engine.erp.model import Invoice, InvoiceLine, InvoiceStatus
from engine.erp.money import document_amounts
from engine.erp.trade import PaymentLink
from engine.operations.sync.apfino import ApfinoSync
from engine.simulators.partners import PartnerSimulator
from tests.integration.sync_support import (
    SyncRunner,
    company_gateway,
    load,
    sim_post,
    sim_state,
    survive_faults,
)

SELLER = {"name": "Firma sp. z o.o.", "nip": "5260250274",
          "bank_account": "PL61109010140000071219812874"}


def invoice(number: int, net: str = "100.00", *, currency: str = "PLN",
            status: InvoiceStatus = "issued") -> Invoice:
    """``FA/number/12/2026`` of one line at 23% VAT (gross = net * 1.23)."""
    amounts = document_amounts([(Decimal(net), "23")])
    day = date(2026, 12, 1)
    return Invoice(number=f"FA/{number}/12/2026", type="FA", contractor="GASKA",
                   issue_date=day, sale_date=day, due_date=day + timedelta(days=14),
                   currency=currency, status=status, template=None, period=None,
                   lines=(InvoiceLine("USLUGA", "Usługa", Decimal(1), Decimal(net), "23",
                                      amounts.lines[0]),),
                   vat_by_rate=amounts.by_rate, totals=amounts.totals)


def add_invoices(gateway: SqlCompanyGateway, invoices: list[Invoice]) -> None:
    with gateway.transaction() as writer:
        for item in invoices:
            writer.add_invoice(item)


def payment(ident: int, document: str | None, amount: str) -> dict[str, Any]:
    return {"id": f"WB/{ident}/2026", "contractor": "GASKA", "document": document,
            "date": "2026-12-10", "amount": amount}


@pytest.fixture
def runner(store_kind: str, tmp_path: Path,
           simulator: PartnerSimulator) -> Iterator[SyncRunner]:
    sim_post(simulator.url, "/_sim/reset", {})
    with company_gateway(store_kind, tmp_path) as gateway:
        load(gateway, {"seller": SELLER, "contractors": [
            {"code": "GASKA", "name": "Gąska Sp. z o.o.", "nip": "5260250274"}]})
        gateway.configure("apfino", url=simulator.base_url("apfino"), credential="klucz-api",
                          settings={"split_payment_invoices": "FA/5/12/2026"}, batch_size=7)
        runner = SyncRunner(gateway, ApfinoSync())
        try:
            yield runner
        finally:
            runner.close()


def apfino(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(sim_state(simulator.url)["apfino"])


def links(runner: SyncRunner) -> dict[str, PaymentLink]:
    return {link.invoice: link for link in runner.gateway.all_records("payment_links")}


def company_invoices(runner: SyncRunner) -> None:
    add_invoices(runner.gateway, [
        invoice(1),                        # qualifies
        invoice(2),                        # partly paid: qualifies
        invoice(3),                        # paid: no link
        invoice(4, currency="EUR"),        # not PLN: no link
        invoice(5),                        # split payment (settings): no link
        invoice(6, "12300.00"),            # gross 15129.00 over max_amount: no link
        invoice(7, status="draft"),        # not issued: not sent
    ])
    load(runner.gateway, {"payments": [
        payment(1, "FA/2/12/2026", "23.00"), payment(2, "FA/3/12/2026", "123.00"),
        payment(3, None, "50.00"), payment(4, "ZS/1/2026/WSZ", "10.00")]})


def test_full_then_differential_and_payment_links_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    company_invoices(runner)
    counts = runner.run()
    assert counts["full"] == 1 and counts["payment_links"] == 2
    state = apfino(simulator)
    sent = {item["number"]: item for item in state["invoices"]}
    assert set(sent) == {f"FA/{n}/12/2026" for n in range(1, 7)}
    assert sent["FA/1/12/2026"] == {
        "number": "FA/1/12/2026",
        "contractor": {"code": "GASKA", "name": "Gąska Sp. z o.o.", "nip": "5260250274"},
        "issue_date": "2026-12-01", "due_date": "2026-12-15", "gross": "123.00",
        "remaining": "123.00", "currency": "PLN", "payment_form": "przelew",
        "split_payment": False, "status": "unpaid"}
    assert sent["FA/2/12/2026"]["remaining"] == "100.00"
    assert sent["FA/2/12/2026"]["status"] == "partially_paid"
    assert sent["FA/3/12/2026"]["status"] == "paid"
    assert sent["FA/5/12/2026"]["split_payment"] is True
    assert {item["id"] for item in state["payments"]} == {"WB/1/2026", "WB/2/2026"}
    assert state["payments"][0] == {"id": "WB/1/2026", "invoice": "FA/2/12/2026",
                                    "date": "2026-12-10", "amount": "23.00"}
    stored = links(runner)
    assert set(stored) == {"FA/1/12/2026", "FA/2/12/2026"}
    assert stored["FA/1/12/2026"].url.startswith("https://pay.apfino.example/l/")
    assert stored["FA/1/12/2026"].expires_at
    assert state["received_counts"]["payment_links"] == {"FA/1/12/2026": 1,
                                                         "FA/2/12/2026": 1}

    # Nothing changed: nothing is sent, no link is asked for
    counts = runner.run()
    assert counts["full"] == 0 and counts.get("sent", 0) == 0
    assert counts.get("payment_links", 0) == 0

    # A payment settles FA/1 (sent again as paid); a new invoice gets its link
    load(runner.gateway, {"payments": [payment(5, "FA/1/12/2026", "123.00")]})
    add_invoices(runner.gateway, [invoice(8, "50.00")])
    counts = runner.run()
    assert counts["sent"] == 2 and counts["payment_links"] == 1
    state = apfino(simulator)
    sent = {item["number"]: item for item in state["invoices"]}
    assert sent["FA/1/12/2026"]["status"] == "paid"
    assert sent["FA/1/12/2026"]["remaining"] == "0.00"
    received = state["received_counts"]
    # FA/2 and FA/3 went again with their payments in the full run, FA/1 with WB/5
    assert received["invoices"] == {
        "FA/1/12/2026": 2, "FA/2/12/2026": 2, "FA/3/12/2026": 2, "FA/4/12/2026": 1,
        "FA/5/12/2026": 1, "FA/6/12/2026": 1, "FA/8/12/2026": 1}
    assert received["payments"] == {"WB/1/2026": 1, "WB/2/2026": 1, "WB/5/2026": 1}
    assert received["payment_links"] == {"FA/1/12/2026": 1, "FA/2/12/2026": 1,
                                         "FA/8/12/2026": 1}
    assert set(links(runner)) == {"FA/1/12/2026", "FA/2/12/2026", "FA/8/12/2026"}
    status = runner.gateway.statuses()[0]
    assert status.last_error is None and not status.full_requested


def test_reset_resends_everything_and_keeps_the_links(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    company_invoices(runner)
    runner.run()
    runner.gateway.request_full("apfino")
    counts = runner.run()
    assert counts["full"] == 1 and counts.get("payment_links", 0) == 0
    received = apfino(simulator)["received_counts"]
    assert received["invoices"] == {
        "FA/1/12/2026": 2, "FA/2/12/2026": 4, "FA/3/12/2026": 4, "FA/4/12/2026": 2,
        "FA/5/12/2026": 2, "FA/6/12/2026": 2}
    assert received["payments"] == {"WB/1/2026": 2, "WB/2/2026": 2}
    assert received["payment_links"] == {"FA/1/12/2026": 1, "FA/2/12/2026": 1}


def test_no_links_without_a_bank_account(runner: SyncRunner,
                                         simulator: PartnerSimulator) -> None:
    load(runner.gateway, {"seller": {**SELLER, "bank_account": ""}})
    add_invoices(runner.gateway, [invoice(1)])
    runner.run()
    state = apfino(simulator)
    assert state["invoices"][0]["payment_form"] == "gotówka"
    assert state["received_counts"]["payment_links"] == {} and links(runner) == {}
    # With the account set, the next run asks for the link
    load(runner.gateway, {"seller": SELLER})
    assert runner.run()["payment_links"] == 1


def test_faults_are_survived_and_everything_is_delivered_once(
        runner: SyncRunner, simulator: PartnerSimulator) -> None:
    numbers = [f"FA/{n}/12/2026" for n in range(1, 41)]
    add_invoices(runner.gateway, [invoice(n) for n in range(1, 41)])
    load(runner.gateway, {"payments": [payment(n, f"FA/{n}/12/2026", "123.00")
                                       for n in range(1, 11)]})
    survive_faults(runner, simulator.url)
    state = sim_state(simulator.url)
    assert state["counters"]["apfino"]["faults"] > 0
    received = state["apfino"]["received_counts"]
    # Paid invoices went twice by design: on their own and again with their payment
    assert received["invoices"] == {number: 2 if index < 10 else 1
                                    for index, number in enumerate(numbers)}
    assert received["payments"] == {f"WB/{n}/2026": 1 for n in range(1, 11)}
    assert received["payment_links"] == dict.fromkeys(numbers[10:], 1)
    assert set(links(runner)) == set(numbers[10:])
