"""``soa sync`` through the installed command, against the partner simulator: configure
(refusals in one line, exit 2), the device login, a synchronisation run by the host, its
status, a reset, orders brought in, the same through the HTTP API, and credentials that
appear in no CLI or API output, log or raw byte of the databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.simulators.partners import PartnerSimulator
from tests.e2e.cli import Soa, wait_until
from tests.support import PASSWORD

SECRET = "klucz-esklep-9f8e7d6c5b4a"


@pytest.fixture
def simulator() -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(0, seed=3)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def test_configure_login_run_status_and_reset(soa: Soa, tmp_path: Path,
                                              simulator: PartnerSimulator) -> None:
    soa.configure("BIURO", PASSWORD)
    soa.ok("BIURO", "companies", "add", "Firma")
    document = {
        "warehouses": [{"code": "MAG1", "name": "Główny"}],
        "products": [{"code": f"P{i}", "name": f"Towar {i}", "net_price": "10.00",
                      "vat_rate": "23"} for i in range(5)],
        "stock": [{"product": f"P{i}", "warehouse": "MAG1", "quantity": "3"} for i in range(5)],
    }
    path = tmp_path / "firma.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    soa.ok("BIURO", "erp", "load", "Firma", str(path))
    base = simulator.base_url("wszystkopl")

    # Refusals: one line, exit 2, nothing stored
    for args, wanted in (
        (["--set", "nope=1"], "setting nope of partner wszystkopl"),
        (["--set", "match_customers=maybe"], "setting match_customers"),
        (["--set", "series"], "--set 'series' is not KEY=VALUE"),
    ):
        result = soa.run("BIURO", "sync", "configure", "Firma", "wszystkopl", "--url", base,
                         *args)
        assert result.returncode == 2, result.stderr
        assert wanted in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert soa.json("AUDIT", "sync", "status", "Firma") == []
    result = soa.run("BIURO", "sync", "configure", "Firma", "kaufland", "--url", base)
    assert result.returncode == 2 and "Traceback" not in result.stderr

    soa.ok("BIURO", "sync", "configure", "Firma", "wszystkopl", "--url", base,
           "--set", "warehouses=MAG1", "--set", "series=WSZ", "--credential-stdin",
           stdin=SECRET + "\n")
    login = soa.ok("BIURO", "sync", "login", "Firma", "wszystkopl")
    assert "approve this device at http://" in login

    httpx.post(f"{simulator.url}/_sim/seed", json={"wszystkopl": {"sales": [{
        "id": "S1", "createdAt": "2026-12-01T10:00:00+01:00", "status": "new",
        "buyer": {"login": "jan", "email": "jan@example.pl", "name": "Jan", "nip": None,
                  "companyName": None, "phone": None, "address": {}},
        "items": [{"offerExternalId": "P1", "title": "Towar 1", "quantity": "1",
                   "price": "12.30", "vatRate": "23"}],
        "shipping": {"method": "kurier", "cost": "10.00"},
        "payment": {"type": "online", "paid": True}}]}}).raise_for_status()

    task = soa.json("BIURO", "tasks", "add", "sync_wszystkopl", "--company", "Firma",
                    "--name", "Marketplace", "--every", "1h")
    soa.start("BIURO")
    run_id = soa.json("BIURO", "tasks", "run-now", task["id"])["run_id"]
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"]
               not in ("scheduled", "running"), timeout=60)
    shown = soa.json("AUDIT", "runs", "show", run_id)
    assert shown["status"] == "succeeded", shown

    statuses = {status["partner"]: status for status in
                soa.json("AUDIT", "sync", "status", "Firma")}
    wszystko = statuses["wszystkopl"]
    assert set(wszystko) >= {"last_full", "last_differential", "sent", "received",
                             "watermark", "last_error"}
    assert wszystko["last_full"] and wszystko["sent"] >= 5 and wszystko["received"] == 1
    assert wszystko["watermark"]["out:offers"] and wszystko["last_error"] is None
    orders = soa.json("AUDIT", "erp", "sales-orders", "Firma")
    assert [(order["number"], order["partner_order_id"]) for order in orders] == [
        ("ZS/1/2026/WSZ", "S1")]

    # The API answers as the CLI does, takes a configuration, refuses bad input with 422
    api_url = soa.status("BIURO")["api_url"]
    api = httpx.Client(base_url=api_url, timeout=30, headers={
        "Authorization": f"Bearer {soa.ok('BIURO', 'api-token').strip()}"})
    with api:
        assert api.get("/api/companies/Firma/sync").json() == soa.json(
            "AUDIT", "sync", "status", "Firma")
        assert api.get("/api/companies/Firma/sales-orders").json() == orders
        refused = api.put("/api/companies/Firma/sync/wszystkopl",
                          json={"url": base, "settings": {"nope": "1"}})
        assert refused.status_code == 422 and "nope" in refused.json()["error"]
        assert api.put("/api/companies/Firma/sync/kaufland", json={"url": base}
                       ).status_code == 422
        changed = api.put("/api/companies/Firma/sync/wszystkopl",
                          json={"url": base, "settings": {"series": "WSZ2"}})
        assert changed.status_code == 200, changed.text
        assert api.post("/api/companies/Firma/sync/wszystkopl/reset").json()[
            "full_requested"] is True
        metrics = api.get("/metrics").text
        assert 'soa_sync_items_total{direction="received",kind="sync_wszystkopl"} 1.0' \
            in metrics, metrics
        outputs = [api.get("/api/companies/Firma/sync").text,
                   api.get("/api/logs").text, api.get("/api/runs").text,
                   api.get(f"/api/runs/{run_id}").text, api.get("/metrics").text,
                   httpx.get(f"{api_url}/companies/Firma", timeout=30, cookies={
                       "soa_token": soa.ok("BIURO", "api-token").strip()}).text]
    assert soa.json("AUDIT", "sync", "status", "Firma")[0]["full_requested"] is True
    soa.ok("BIURO", "sync", "reset", "Firma", "wszystkopl")
    soa.ok("BIURO", "stop")

    # The credential and the tokens are nowhere in the clear
    outputs += [soa.ok("AUDIT", "sync", "status", "Firma"),
               soa.ok("AUDIT", "sync", "status", "Firma", "--json"),
               soa.ok("AUDIT", "erp", "export", "Firma"),
               soa.ok("AUDIT", "logs", "--json")]
    tokens = [offer for offer in httpx.get(f"{simulator.url}/_sim/state").text.split('"')
              if offer.startswith("wa-")]
    for blob in [*outputs, *(file.read_bytes().decode("latin-1")
                             for file in soa.home.rglob("*") if file.is_file())]:
        assert SECRET not in blob
        assert not any(token in blob for token in tokens)
