"""``sync_wszystkopl`` run by the real host, killed (SIGKILL) again and again in the
middle of its full synchronisation and of its imports, against the partner simulator
with latency: after the last start every offer reached the marketplace exactly once by
the simulator's own count, and every order came in once, numbered without gaps."""

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

import httpx
import pytest

from engine.simulators.partners import Faults, PartnerSimulator
from tests.e2e.cli import Soa, process_exists, wait_until
from tests.support import PASSWORD

PRODUCTS = 5000
SALES = 400
BATCH = 10
LOADED_MACHINE_SECONDS = 60


@pytest.fixture
def simulator() -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(0, seed=11, faults=Faults(latency_ms=20))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def state(simulator: PartnerSimulator) -> dict[str, Any]:
    return dict(httpx.get(f"{simulator.url}/_sim/state", timeout=30).json())


def accepted(simulator: PartnerSimulator) -> int:
    return int(state(simulator)["requests"]["accepted"])


def finished(soa: Soa, run_id: str) -> bool:
    return soa.json("AUDIT", "runs", "show", run_id)["status"] in ("succeeded", "failed")


def test_sigkill_mid_synchronisation_sends_and_imports_everything_once(
        tmp_path: Path, simulator: PartnerSimulator) -> None:
    soa = Soa(tmp_path / "home", None, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3"})
    try:
        soa.configure("BIURO", PASSWORD)
        soa.ok("BIURO", "companies", "add", "Firma S")
        document = {
            "warehouses": [{"code": "MAG1", "name": "Główny"}],
            "products": [{"code": f"P{i:04}", "name": f"Towar {i}", "net_price": "10.00",
                          "vat_rate": "23"} for i in range(PRODUCTS)],
            "stock": [{"product": f"P{i:04}", "warehouse": "MAG1", "quantity": "4"}
                      for i in range(PRODUCTS)],
        }
        path = tmp_path / "firma.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        soa.ok("BIURO", "erp", "load", "Firma S", str(path))
        httpx.post(f"{simulator.url}/_sim/generate", json={
            "partner": "wszystkopl", "collection": "sales", "count": SALES,
            "products": [f"P{i:04}" for i in range(PRODUCTS)]}, timeout=30).raise_for_status()
        soa.ok("BIURO", "sync", "configure", "Firma S", "wszystkopl", "--url",
               simulator.base_url("wszystkopl"), "--batch-size", str(BATCH))
        soa.ok("BIURO", "sync", "login", "Firma S", "wszystkopl")
        task = soa.json("BIURO", "tasks", "add", "sync_wszystkopl", "--company", "Firma S",
                        "--name", "Marketplace", "--every", "24h", "--max-attempts", "40",
                        "--backoff", "0.1s")
        run_id = soa.json("BIURO", "tasks", "run-now", task["id"])["run_id"]
        rng = random.Random(20261203)
        kills = 0
        for _ in range(6):
            pid = int(re.findall(r"process (\d+)", soa.ok("BIURO", "start"))[0])
            soa.host_pids.add(pid)
            before = accepted(simulator)
            try:
                wait_until(lambda before=before: accepted(simulator) > before + 3
                           or finished(soa, run_id), timeout=LOADED_MACHINE_SECONDS,
                           interval=0.02)
            except AssertionError:
                raise AssertionError(json.dumps([soa.json("AUDIT", "runs", "show", run_id),
                                                 soa.json("AUDIT", "status"),
                                                 soa.json("AUDIT", "logs")[:5]])) from None
            if finished(soa, run_id):
                soa.ok("BIURO", "stop")
                break
            time.sleep(rng.uniform(0, 0.3))
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_until(lambda pid=pid: not process_exists(pid), timeout=LOADED_MACHINE_SECONDS)
        assert kills >= 3, "the synchronisation finished before it could be killed enough"
        if not finished(soa, run_id):
            soa.start("BIURO")
            wait_until(lambda: finished(soa, run_id), timeout=300, interval=0.5)
            soa.ok("BIURO", "stop")
        assert soa.json("AUDIT", "runs", "show", run_id)["status"] == "succeeded"

        held = state(simulator)
        # Check: every offer received exactly once, some requests repeated and recognised
        counts = held["wszystkopl"]["received_counts"]["offers"]
        assert len(counts) == PRODUCTS and set(counts.values()) == {1}, counts
        # Check: every order in once, numbered ZS/1..SALES without gaps
        orders = soa.json("AUDIT", "erp", "sales-orders", "Firma S")
        assert len(orders) == SALES
        assert len({order["partner_order_id"] for order in orders}) == SALES
        assert sorted(int(order["number"].split("/")[1]) for order in orders) == list(
            range(1, SALES + 1))
        runs = soa.json("AUDIT", "runs", "show", run_id)
        assert runs["attempts"] > 1  # the kills did interrupt it
    finally:
        soa.kill_hosts()
