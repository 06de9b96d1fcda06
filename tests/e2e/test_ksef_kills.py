"""Recurring invoices issued and sent to KSeF by the real host, killed (SIGKILL) again and
again while it uploads, against the KSeF simulator with latency: after the last start no
invoice was accepted twice or under two numbers, none is left without a final status, and
every invoice holds the number KSeF gave it."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.simulators.ksef import KsefFaults, KsefSimulator
from tests.e2e.cli import Soa, process_exists, wait_until
from tests.support import PASSWORD

INVOICES = 400
NIP = "5239384994"
LOADED_MACHINE_SECONDS = 60


@pytest.fixture
def ksef() -> Iterator[KsefSimulator]:
    with KsefSimulator(0, seed=13, faults=KsefFaults(latency_ms=30),
                       processing_seconds=0.2) as simulator:
        yield simulator


def company_document() -> dict[str, Any]:
    return {
        "seller": {"name": "Serwis Komputerowy Żółw Sp. z o.o.", "nip": NIP,
                   "address": "ul. Świętokrzyska 12, 00-916 Warszawa"},
        "contractors": [{"code": "GASKA", "name": "Gąska i Synowie s.c.",
                         "nip": "4477127826", "address": "ul. Łąkowa 5, 90-001 Łódź"}],
        "products": [{"code": "ABON", "name": "Abonament IT", "net_price": "1000.00",
                      "vat_rate": "23"}],
        "recurring_invoices": [
            {"code": f"ABON-{number:03}", "name": f"Abonament {number}", "contractor": "GASKA",
             "start": "2026-11-30", "day_of_month": "last", "mode": "issue",
             "lines": [{"product": "ABON", "quantity": "1"}]}
            for number in range(INVOICES)],
    }


def uploads(ksef: KsefSimulator) -> int:
    return int(ksef.state()["uploads"])


def finished(soa: Soa, run_id: str) -> bool:
    return soa.json("AUDIT", "runs", "show", run_id)["status"] in ("succeeded", "failed")


def test_sigkill_while_sending_to_ksef_leaves_each_invoice_accepted_once(
        tmp_path: Path, ksef: KsefSimulator) -> None:
    soa = Soa(tmp_path / "home", None, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3"})
    try:
        soa.configure("BIURO", PASSWORD)
        soa.ok("BIURO", "companies", "add", "Firma K")
        path = tmp_path / "firma.json"
        path.write_text(json.dumps(company_document()), encoding="utf-8")
        soa.ok("BIURO", "erp", "load", "Firma K", str(path))
        soa.ok("BIURO", "ksef", "configure", "Firma K", "--env", "URL", "--url", ksef.url,
               "--token-stdin", "--since", "2026-11-01", stdin=ksef.issue_token(NIP) + "\n")
        task = soa.json("BIURO", "tasks", "add", "recurring_invoices", "--company", "Firma K",
                        "--name", "Faktury", "--every", "24h", "--max-attempts", "40",
                        "--backoff", "0.1s", "--param", "ksef_wait_seconds=120")
        run_id = soa.json("BIURO", "tasks", "run-now", task["id"])["run_id"]
        rng = random.Random(20261203)
        kills = 0
        for _ in range(6):
            pid = int(re.findall(r"process (\d+)", soa.ok("BIURO", "start"))[0])
            soa.host_pids.add(pid)
            before = uploads(ksef)
            wait_until(lambda before=before: uploads(ksef) > before + 3
                       or finished(soa, run_id), timeout=LOADED_MACHINE_SECONDS,
                       interval=0.02)
            if finished(soa, run_id):
                soa.ok("BIURO", "stop")
                break
            time.sleep(rng.uniform(0, 0.3))
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_until(lambda pid=pid: not process_exists(pid), timeout=LOADED_MACHINE_SECONDS)
        assert kills >= 3, "the run finished before it could be killed enough"
        if not finished(soa, run_id):
            soa.start("BIURO")
            wait_until(lambda: finished(soa, run_id), timeout=300, interval=0.5)
            soa.ok("BIURO", "stop")
        shown = soa.json("AUDIT", "runs", "show", run_id)
        assert shown["status"] == "succeeded", shown["error"]
        assert shown["attempts"] > 1  # the kills did interrupt it

        held = ksef.state()
        accepted = {entry["invoice_number"]: entry["ksef_number"]
                    for entry in held["accepted"]}
        # Check: each invoice accepted once, under one number (others were 440 duplicates)
        assert len(held["accepted"]) == INVOICES == len(accepted)
        assert len(set(accepted.values())) == INVOICES
        assert {entry["code"] for entry in held["rejected"]} <= {440}, held["rejected"]
        # Check: none left without a final status, each with the number KSeF gave it
        invoices = soa.json("AUDIT", "erp", "invoices", "Firma K")
        assert len(invoices) == INVOICES
        assert {invoice["number"]: invoice["ksef_number"] for invoice in invoices} == accepted
        assert {invoice["ksef_status"] for invoice in invoices} == {"accepted"}
    finally:
        soa.kill_hosts()
