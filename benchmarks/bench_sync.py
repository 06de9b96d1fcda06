"""Partner synchronisation at volume, beside a bare httpx loop on the same simulator.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sync.py             # 100,000 products, 10,000 orders
    .venv/bin/python benchmarks/bench_sync.py --quick     # 1/10 of the sizes, 1 round

1. Push: a full synchronisation of ``sync_wszystkopl`` and of ``sync_esklep`` sending
   100,000 products with stock (two warehouses) to the partner simulator, in batches of
   1,000; peer: an ``httpx.Client`` posting the same payloads, built before the clock
   starts, in the same batches to the same endpoints.
2. Import: ``sync_wszystkopl`` bringing in 10,000 orders (customer matching, numbering,
   one transaction per page of 1,000); peer: the same pages fetched with httpx.
3. Differential: a ``sync_wszystkopl`` run after 1 % of the products changed price.

The simulator runs in a process of its own (``soa simulate partners``); the company
database is a SQLite file. Each figure is the median of the rounds; the simulator is
reset and a full synchronisation asked for before each round.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.adapters.cipher_box import CipherBox  # noqa: E402
from engine.adapters.erp_sync_sql import SqlCompanyGateway  # noqa: E402
from engine.adapters.partners.http import json_dumps  # noqa: E402
from engine.adapters.secret_box import SecretBox  # noqa: E402
from engine.erp.document import ErpDocument  # noqa: E402
from engine.operations.sync.core import PartnerSync  # noqa: E402
from engine.operations.sync.esklep import EsklepSync  # noqa: E402
from engine.operations.sync.mapping import gross  # noqa: E402
from engine.operations.sync.wszystkopl import WszystkoplSync  # noqa: E402
from tests.integration.sync_support import SyncRunner  # noqa: E402

BATCH = 1000


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    soa = str(Path(sys.executable).parent / "soa")
    process = subprocess.Popen([soa, "simulate", "partners", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    url = next(word for word in line.split() if word.startswith("http://"))
    return process, url.split("/<partner>")[0].rstrip(",/")


def company(path: Path, products: int) -> SqlCompanyGateway:
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    gateway = SqlCompanyGateway(engine, SecretBox.from_key(Fernet.generate_key()),
                                CipherBox.from_key(base64.urlsafe_b64encode(os.urandom(32))))
    gateway.load(ErpDocument.model_validate({
        "warehouses": [{"code": "MAG1", "name": "Główny"}, {"code": "MAG2", "name": "Sklep"}],
        "price_types": [{"code": "DET", "name": "Detaliczna"}],
        "products": [{"code": f"P{i:06}", "name": f"Towar numer {i}", "net_price": "10.00",
                      "vat_rate": "23", "ean": f"{5900000000000 + i}"}
                     for i in range(products)],
        "stock": [{"product": f"P{i:06}", "warehouse": warehouse, "quantity": str(i % 50)}
                  for i in range(products) for warehouse in ("MAG1", "MAG2")],
        "prices": [{"product": f"P{i:06}", "price_type": "DET", "net_price": "12.50"}
                   for i in range(products)],
    }))
    return gateway


def login(gateway: SqlCompanyGateway, sim: str) -> None:
    device = httpx.get(f"{sim}/wszystkopl/integration/register").json()
    gateway.save_tokens("wszystkopl", httpx.get(
        f"{sim}/wszystkopl/integration/token",
        params={"deviceCode": device["deviceCode"]}).json())


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def engine_full(runner: SyncRunner, sim: str, partner: str) -> float:
    httpx.post(f"{sim}/_sim/reset", json={})
    if partner == "wszystkopl":
        login(runner.gateway, sim)
    runner.gateway.request_full(partner)
    seconds, counts = timed(runner.run)
    assert counts["full"] == 1, counts
    return seconds


def peer_payloads(products: int) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The same batches the adapters send, built in memory."""
    offers = [{"externalId": f"P{i:06}", "title": f"Towar numer {i}",
               "price": gross(Decimal("12.50"), "23"), "vatRate": "23",
               "quantity": str(2 * (i % 50)), "unit": "szt."} for i in range(products)]
    shop = [{"code": f"P{i:06}", "name": f"Towar numer {i}", "group": None, "unit": "szt.",
             "vat_rate": "23", "net_price": "12.50", "price": "15.38",
             "stock": str(2 * (i % 50)), "attributes": {}, "ean": f"{5900000000000 + i}"}
            for i in range(products)]
    return {
        "wszystkopl": [("/wszystkopl/me/offers", {"offers": offers[start:start + BATCH]})
                       for start in range(0, products, BATCH)],
        "esklep": [("/esklep/products", {"products": shop[start:start + BATCH]})
                   for start in range(0, products, BATCH)],
    }


def peer_push(sim: str, batches: list[tuple[str, dict[str, Any]]], token: str) -> float:
    httpx.post(f"{sim}/_sim/reset", json={})
    with httpx.Client(base_url=sim, timeout=60) as client:
        if "wszystkopl" in batches[0][0]:
            device = client.get("/wszystkopl/integration/register").json()
            token = client.get("/wszystkopl/integration/token",
                               params={"deviceCode": device["deviceCode"]}
                               ).json()["accessToken"]
        started = time.perf_counter()
        for number, (path, body) in enumerate(batches):
            client.post(path, content=json_dumps(body), headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": f"peer/{number}",
                "Content-Type": "application/json"}).raise_for_status()
        return time.perf_counter() - started


def engine_import(runner: SyncRunner, sim: str, orders: int) -> float:
    httpx.post(f"{sim}/_sim/reset", json={})
    login(runner.gateway, sim)
    httpx.post(f"{sim}/_sim/generate", json={
        "partner": "wszystkopl", "collection": "sales", "count": orders,
        "products": [f"P{i:06}" for i in range(100)]}, timeout=120).raise_for_status()
    with runner.gateway.importing() as writer:  # from the start, as a new marketplace
        writer.set_position("wszystkopl", "in:sales", "")
    seconds, counts = timed(runner.run)
    assert counts.get("received") == orders, counts
    return seconds


def peer_import(sim: str) -> float:
    with httpx.Client(base_url=sim, timeout=60) as client:
        device = client.get("/wszystkopl/integration/register").json()
        token = client.get("/wszystkopl/integration/token",
                           params={"deviceCode": device["deviceCode"]}).json()["accessToken"]
        started = time.perf_counter()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": BATCH}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/wszystkopl/me/sales", params=params,
                              headers={"Authorization": f"Bearer {token}"}).json()
            if not page["sales"] or page["nextCursor"] == cursor:
                break
            cursor = page["nextCursor"]
        return time.perf_counter() - started


def differential(runner: SyncRunner, sim: str, products: int) -> tuple[float, int]:
    step = 100  # 1 %
    runner.gateway.load(ErpDocument.model_validate({"prices": [
        {"product": f"P{i:06}", "price_type": "DET",
         "net_price": f"{13 + runner.runs % 7}.00"} for i in range(0, products, step)]}))
    seconds, counts = timed(runner.run)
    return seconds, int(counts.get("sent", 0))


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the sizes, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    products, orders = (10_000, 1_000) if args.quick else (100_000, 10_000)
    rounds = 1 if args.quick else args.rounds
    print(f"bench_sync: {products:,} products, {orders:,} orders, batches of {BATCH}, "
          f"{rounds} round(s); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    process, sim = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            gateway = company(Path(folder) / "company.db", products)
            print(f"setup: company data loaded in {time.perf_counter() - started:.1f} s")
            runners: dict[str, SyncRunner] = {}
            partners: dict[str, PartnerSync] = {"wszystkopl": WszystkoplSync(),
                                                "esklep": EsklepSync()}
            for name, operation in partners.items():
                gateway.configure(name, url=f"{sim}/{name}", credential="bench-key",
                                  settings={"price_type": "DET"}, batch_size=BATCH)
                runners[name] = SyncRunner(gateway, operation)
            payloads = peer_payloads(products)
            print(f"\n{'figure':44} {'engine':>10} {'bare httpx':>11} {'ratio':>6} "
                  f"{'items/s (engine)':>17}")
            for name in partners:
                engine_times = [engine_full(runners[name], sim, name) for _ in range(rounds)]
                peer_times = [peer_push(sim, payloads[name], "bench-key")
                              for _ in range(rounds)]
                engine_s, peer_s = median(engine_times), median(peer_times)
                print(f"{'push ' + f'{products:,}' + ' products to ' + name:44} "
                      f"{engine_s:9.2f}s {peer_s:10.2f}s {engine_s / peer_s:6.2f} "
                      f"{products / engine_s:17,.0f}")
            runner = runners["wszystkopl"]
            engine_times = [engine_import(runner, sim, orders) for _ in range(rounds)]
            peer_times = [peer_import(sim) for _ in range(rounds)]
            engine_s, peer_s = median(engine_times), median(peer_times)
            print(f"{'import ' + f'{orders:,}' + ' orders from wszystkopl':44} "
                  f"{engine_s:9.2f}s {peer_s:10.2f}s {engine_s / peer_s:6.2f} "
                  f"{orders / engine_s:17,.0f}")
            diffs = [differential(runner, sim, products) for _ in range(rounds)]
            diff_s = median([seconds for seconds, _ in diffs])
            print(f"{'differential: 1 % of products changed':44} {diff_s:9.2f}s "
                  f"{'':>10} {'':>6} {'(' + str(diffs[0][1]) + ' sent)':>17}")
            for each in runners.values():
                each.close()
            gateway.engine.dispose()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
