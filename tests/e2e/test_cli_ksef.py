"""``soa ksef`` through the installed command, against the KSeF simulator: configure
(refusals in one line, exit 2, nothing stored), a ``ksef_send`` run by the host, the
invoices' KSeF fields in ``soa erp invoices``, ``status``, ``show`` and ``upo``, the same
through the HTTP API (422 for bad input), and a token and a private key that appear in
no CLI or API output, log or raw byte of the files under SOA_HOME."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ksef_client.utils.ksef_number import validate_ksef_number

from engine.simulators.ksef import KsefSimulator
from tests.e2e.cli import Soa, wait_until
from tests.support import PASSWORD

NIP = "5239384994"


@pytest.fixture
def ksef() -> Iterator[KsefSimulator]:
    with KsefSimulator(0, seed=7) as simulator:
        yield simulator


def company_document() -> dict[str, object]:
    return {
        "seller": {"name": "Serwis Komputerowy Żółw Sp. z o.o.", "nip": NIP,
                   "address": "ul. Świętokrzyska 12, 00-916 Warszawa"},
        "contractors": [{"code": "GASKA", "name": "Gąska i Synowie s.c.",
                         "nip": "4477127826", "address": "ul. Łąkowa 5, 90-001 Łódź"}],
        "products": [{"code": "ABON", "name": "Abonament IT", "net_price": "1000.00",
                      "vat_rate": "23"}],
        "recurring_invoices": [{"code": "ABON-GASKA", "name": "Abonament", "contractor":
                                "GASKA", "start": "2026-11-30", "day_of_month": "last",
                                "mode": "issue", "lines": [{"product": "ABON",
                                                            "quantity": "1"}]}],
    }


def run_task(soa: Soa, kind: str) -> dict[str, object]:
    task = soa.json("BIURO", "tasks", "add", kind, "--company", "Firma", "--name", kind,
                    "--every", "24h")
    run_id = soa.json("BIURO", "tasks", "run-now", task["id"])["run_id"]
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"]
               not in ("scheduled", "running"), timeout=120)
    return dict(soa.json("AUDIT", "runs", "show", run_id))


def test_configure_send_and_read_back_with_no_secret_in_the_clear(
        soa: Soa, tmp_path: Path, ksef: KsefSimulator) -> None:
    soa.configure("BIURO", PASSWORD)
    soa.ok("BIURO", "companies", "add", "Firma")
    path = tmp_path / "firma.json"
    path.write_text(json.dumps(company_document()), encoding="utf-8")
    soa.ok("BIURO", "erp", "load", "Firma", str(path))
    token = ksef.issue_token(NIP)
    certificate, key = ksef.issue_certificate(NIP)
    (tmp_path / "cert.pem").write_text(certificate)
    (tmp_path / "key.pem").write_text(key)
    (tmp_path / "other.pem").write_text(ksef.issue_certificate("4477127826")[1])

    # Refusals: one line, exit 2, nothing stored
    for args, stdin, wanted in (
        (["--env", "QA"], None, "'QA' is not one of"),
        (["--env", "URL", "--token-stdin"], token + "\n", "environment URL needs --url"),
        (["--env", "TEST", "--url", ksef.url, "--token-stdin"], token + "\n",
         "--url is only for environment URL"),
        (["--env", "URL", "--url", ksef.url], None, "the first configuration needs a login"),
        (["--env", "URL", "--url", ksef.url, "--token-stdin", "--nip", "123"], token + "\n",
         "NIP '123' is not valid"),
        (["--env", "URL", "--url", ksef.url, "--certificate", str(tmp_path / "cert.pem")],
         None, "--certificate and --key go together"),
        (["--env", "URL", "--url", ksef.url, "--certificate", str(tmp_path / "cert.pem"),
          "--key", str(tmp_path / "other.pem")], None,
         "the private key does not belong to the certificate"),
        (["--env", "URL", "--url", ksef.url, "--token-stdin"], "\n",
         "standard input gave no KSeF token"),
    ):
        result = soa.run("BIURO", "ksef", "configure", "Firma", *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stderr)
        assert wanted in result.stderr, (wanted, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert soa.json("AUDIT", "ksef", "status", "Firma")["configured"] is False

    shown = soa.ok("BIURO", "ksef", "configure", "Firma", "--env", "URL", "--url", ksef.url,
                   "--certificate", str(tmp_path / "cert.pem"), "--key",
                   str(tmp_path / "key.pem"), "--since", "2026-11-01")
    assert "login by certificate" in shown and NIP in shown
    soa.ok("BIURO", "ksef", "configure", "Firma", "--env", "URL", "--url", ksef.url,
           "--token-stdin", stdin=token + "\n")
    status = soa.json("AUDIT", "ksef", "status", "Firma")
    assert status["settings"]["method"] == "token" and status["settings"]["token_set"]

    soa.start("BIURO")
    issued = run_task(soa, "recurring_invoices")
    assert issued["status"] == "succeeded", issued
    sent = run_task(soa, "ksef_send")
    assert sent["status"] == "succeeded", sent
    (invoice,) = soa.json("AUDIT", "erp", "invoices", "Firma")
    assert invoice["ksef_status"] == "accepted" and invoice["ksef_accepted_at"]
    assert validate_ksef_number(invoice["ksef_number"]).is_valid
    assert invoice["ksef_number"] in soa.ok("AUDIT", "erp", "invoices", "Firma")
    upo = soa.ok("AUDIT", "ksef", "upo", "Firma", invoice["number"])
    assert invoice["ksef_number"] in upo
    detail = soa.json("AUDIT", "ksef", "show", "Firma", invoice["number"])
    assert detail["ksef_number"] == invoice["ksef_number"] and detail["uploads"] == 1
    status = soa.json("AUDIT", "ksef", "status", "Firma")
    assert status["counts"]["accepted"] == 1 and status["open"] == []
    refused = soa.run("BIURO", "ksef", "reopen", "Firma", invoice["number"])
    assert refused.returncode == 2 and "only a rejected invoice" in refused.stderr
    for number, wanted in (("5239384994-20261203-0123456789AB-00", "is not a KSeF number"),
                           (invoice["ksef_number"], "is accepted in KSeF")):
        refused = soa.run("BIURO", "ksef", "record", "Firma", invoice["number"], number)
        assert refused.returncode == 2 and wanted in refused.stderr, refused.stderr

    api_url = soa.status("BIURO")["api_url"]
    api = httpx.Client(base_url=api_url, timeout=30, headers={
        "Authorization": f"Bearer {soa.ok('BIURO', 'api-token').strip()}"})
    with api:
        assert api.get("/api/companies/Firma/ksef").json() == status
        number = invoice["number"]
        assert api.get(f"/api/companies/Firma/ksef/invoices/{number}").json()[
            "ksef_number"] == invoice["ksef_number"]
        assert invoice["ksef_number"] in api.get(
            f"/api/companies/Firma/ksef/invoices/{number}/upo").text
        for body in ({"environment": "QA"}, {"environment": "URL"},
                     {"environment": "URL", "url": ksef.url, "nip": "12"},
                     {"environment": "URL", "url": ksef.url, "token": "t",
                      "certificate": certificate}):
            answer = api.put("/api/companies/Firma/ksef", json=body)
            assert answer.status_code == 422, (body, answer.text)
        changed = api.put("/api/companies/Firma/ksef", json={
            "environment": "URL", "url": ksef.url, "certificate": certificate,
            "private_key": key})
        assert changed.status_code == 200, changed.text
        assert changed.json()["method"] == "certificate"
        page = httpx.get(f"{api_url}/companies/Firma", timeout=30, cookies={
            "soa_token": soa.ok("BIURO", "api-token").strip()}).text
        assert invoice["ksef_number"] in page  # the dashboard's invoices show it
        outputs = [page, changed.text, api.get("/api/companies/Firma/ksef").text,
                   api.get("/api/logs").text, api.get("/api/runs").text,
                   api.get("/metrics").text]
    soa.ok("BIURO", "stop")

    outputs += [soa.ok("AUDIT", "ksef", "status", "Firma"),
                soa.ok("AUDIT", "ksef", "status", "Firma", "--json"),
                soa.ok("AUDIT", "erp", "export", "Firma"),
                soa.ok("AUDIT", "logs", "--json")]
    key_body = "".join(key.strip().splitlines()[1:-1])[:60]
    for blob in [*outputs, *(file.read_bytes().decode("latin-1")
                             for file in soa.home.rglob("*") if file.is_file())]:
        assert token not in blob
        assert key_body not in blob.replace("\n", "").replace("\\n", "")
