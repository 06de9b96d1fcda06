"""The partner simulator over real loopback HTTP: every partner's writes land in
/_sim/state with their received counts, imports page with cursors, idempotency keys are
replayed, seeding and generation fill the imports, and each fault kind behaves as
docs/partners/README.md says."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stdnum.pl import nip

from engine.simulators.partners import (
    Faults,
    PartnerSimulator,
    SimulatorInputError,
    SimulatorPortError,
)

API_KEY = {"Authorization": "Bearer api-key"}


@pytest.fixture
def sim() -> Iterator[PartnerSimulator]:
    with PartnerSimulator(0, seed=7) as started:
        yield started


@pytest.fixture
def client(sim: PartnerSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as opened:
        yield opened


def write(client: httpx.Client, path: str, body: Any, key: str, method: str = "POST",
          **headers: str) -> httpx.Response:
    return client.request(method, path, json=body, headers={
        **API_KEY, "Idempotency-Key": key, **headers})


def state(client: httpx.Client, partner: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/_sim/state", params={"partner": partner}).json()
    return data


def counters(client: httpx.Client, partner: str) -> dict[str, int]:
    data: dict[str, int] = client.get("/_sim/state").json()["counters"][partner]
    return data


def login(client: httpx.Client) -> dict[str, str]:
    device = client.get("/wszystkopl/integration/register").json()
    tokens: dict[str, str] = client.get("/wszystkopl/integration/token",
                                        params={"deviceCode": device["deviceCode"]}).json()
    return tokens


OUTBOUND = [
    ("esklep", "groups", {"code": "G1", "name": "Narzędzia", "parent": None}, "G1"),
    ("esklep", "products", {"code": "P1", "name": "Młotek", "group": "G1", "unit": "szt",
                            "vat_rate": "23", "net_price": "10.00", "price": "12.30",
                            "stock": "5", "attributes": {"kolor": "czerwony"},
                            "ean": "5900000000001"}, "P1"),
    ("detal", "products", {"code": "P1", "name": "Młotek", "unit": "szt", "vat_rate": "23",
                           "price": "12.30", "ean": None}, "P1"),
    ("detal", "customers", {"code": "K1", "name": "Jan Nowak", "nip": None, "address": "",
                            "email": "jan@example.pl", "phone": None}, "K1"),
    ("mobile", "customers", {"code": "K1", "name": "Gąska Sp. z o.o.", "nip": "5260250274",
                             "address": "Łódź", "email": None, "phone": None}, "K1"),
    ("mobile", "products", {"code": "P1", "name": "Młotek", "unit": "szt", "vat_rate": "23",
                            "group": "G1"}, "P1"),
    ("mobile", "prices", {"product": "P1", "price_type": "hurtowa", "net_price": "9.00"},
     "P1|hurtowa"),
    ("mobile", "stock", {"product": "P1", "warehouse": "MAG", "quantity": "2.5"}, "P1|MAG"),
    ("mobile", "receivables", {"id": "R1", "customer": "K1", "document": "FS/1/12/2026",
                               "due_date": "2026-12-20", "amount": "123.00",
                               "remaining": "23.00", "currency": "PLN"}, "R1"),
    ("hrm", "employees", {"code": "E1", "first_name": "Anna", "last_name": "Wójcik",
                          "email": None, "phone": None, "department": "Biuro",
                          "contracts": [], "absences": []}, "E1"),
]


@pytest.mark.parametrize(("partner", "collection", "item", "key"), OUTBOUND)
def test_upsert_and_delete_land_in_state(client: httpx.Client, partner: str,
                                         collection: str, item: dict[str, Any],
                                         key: str) -> None:
    path = f"/{partner}/{collection}"
    assert write(client, path, {collection: [item]}, "u1").json() == {"upserted": 1}
    changed = {**item, "name": "nowa"} if "name" in item else item
    assert write(client, path, {collection: [changed]}, "u2").json() == {"upserted": 1}
    seen = state(client, partner)[partner]
    # Check the last version is kept, and each key counted per accepted request
    assert seen[collection] == [changed]
    assert seen["received_counts"][collection] == {key: 2}
    parts = key.split("|")
    deletion = {"codes": parts} if len(parts) == 1 else {"keys": [parts]}
    assert write(client, f"{path}/delete", deletion, "d1").json() == {"deleted": 1}
    assert write(client, f"{path}/delete", deletion, "d2").json() == {"deleted": 0}
    seen = state(client, partner)[partner]
    assert seen[collection] == []
    assert seen["received_counts"][f"{collection}_deleted"] == {key: 2}


@pytest.mark.parametrize(("path", "collection", "item", "key"), [
    ("/xl/branch/documents", "documents", {"number": "FS/1/B1", "kind": "sales",
                                           "date": "2026-12-03", "contractor": "K1",
                                           "net": "100.00", "vat": "23.00", "gross": "123.00",
                                           "currency": "PLN"}, "FS/1/B1"),
    ("/xl/branch/cash", "entries", {"id": "KP1", "date": "2026-12-03", "kind": "KP",
                                    "amount": "50.00", "description": "Utarg"}, "KP1"),
    ("/xl/branch/payments", "payments", {"id": "W1", "contractor": "K1", "document": "FS/1",
                                         "date": "2026-12-03", "amount": "10.00",
                                         "form": "transfer"}, "W1"),
    ("/apfino/payments", "payments", {"id": "A1", "invoice": "FS/1", "date": "2026-12-03",
                                      "amount": "10.00"}, "A1"),
])
def test_branch_and_financing_uploads(client: httpx.Client, path: str, collection: str,
                                      item: dict[str, Any], key: str) -> None:
    partner = path.split("/")[1]
    answer = write(client, path, {collection: [item]}, "k")
    assert answer.status_code == 200 and answer.json() == {"upserted": 1}
    seen = state(client, partner)[partner]
    assert seen[collection] == [item] and seen["received_counts"][collection] == {key: 1}


def test_wszystkopl_device_login_and_tokens(client: httpx.Client) -> None:
    device = client.get("/wszystkopl/integration/register").json()
    assert device["expiresIn"] == 600 and device["interval"] == 1 and device["userCode"]
    unknown = client.get("/wszystkopl/integration/token", params={"deviceCode": "nope"})
    assert unknown.status_code == 400 and unknown.json() == {"error": "invalid_grant"}
    tokens = client.get("/wszystkopl/integration/token",
                        params={"deviceCode": device["deviceCode"]}).json()
    assert tokens["tokenType"] == "Bearer" and tokens["expiresIn"] == 3600

    def offers(token: str) -> httpx.Response:
        return client.get("/wszystkopl/me/offers", headers={"Authorization": f"Bearer {token}"})

    assert offers(tokens["accessToken"]).status_code == 200
    for bad in ("api-key", "wa-unknown"):
        refused = offers(bad)
        assert refused.status_code == 401 and refused.json() == {"error": "invalid_token"}
    fresh = client.get("/wszystkopl/integration/refresh",
                       params={"refreshToken": tokens["refreshToken"]}).json()
    # Check the refresh rotates both tokens
    assert offers(tokens["accessToken"]).status_code == 401
    assert offers(fresh["accessToken"]).status_code == 200
    again = client.get("/wszystkopl/integration/refresh",
                       params={"refreshToken": tokens["refreshToken"]})
    assert again.status_code == 400


def test_wszystkopl_offers_and_sales(client: httpx.Client, sim: PartnerSimulator) -> None:
    auth = {"Authorization": f"Bearer {login(client)['accessToken']}"}

    def send(method: str, path: str, body: Any, key: str) -> Any:
        answer = client.request(method, f"/wszystkopl{path}", json=body,
                                headers={**auth, "Idempotency-Key": key})
        assert answer.status_code == 200, answer.text
        return answer.json()

    offer = {"externalId": "P1", "title": "Młotek", "price": "12.30", "vatRate": "23",
             "quantity": "5", "unit": "szt"}
    assert send("POST", "/me/offers", {"offers": [offer]}, "o1") == {"created": 1, "updated": 0}
    assert send("POST", "/me/offers", {"offers": [offer, {**offer, "externalId": "P2"}]},
                "o2") == {"created": 1, "updated": 1}
    assert send("PUT", "/me/update-offers", {"offers": [{"externalId": "P1", "price": "9.99"},
                                                        {"externalId": "X", "quantity": "1"}]},
                "o3") == {"updated": 1, "missing": ["X"]}
    assert send("POST", "/me/offers/end", {"externalIds": ["P2"]}, "o4")["ended"] == 1
    listed = {o["externalId"]: o for o in client.get("/wszystkopl/me/offers",
                                                     headers=auth).json()["offers"]}
    assert listed["P1"]["price"] == "9.99" and listed["P1"]["status"] == "active"
    assert listed["P2"]["status"] == "ended"
    send("POST", "/me/offers", {"offers": [{**offer, "externalId": "P2"}]}, "o5")
    assert state(client, "wszystkopl")["wszystkopl"]["received_counts"]["offers"] == {
        "P1": 2, "P2": 2}

    sim.generate("wszystkopl", "sales", 3, products=["P1", "P2"])
    sales = client.get("/wszystkopl/me/sales", headers=auth).json()
    assert sales["nextCursor"] == "3" and len(sales["sales"]) == 3
    sale = sales["sales"][0]
    assert {item["offerExternalId"] for item in sale["items"]} <= {"P1", "P2"}
    assert send("PUT", "/me/sales/updateStatus",
                {"sales": [{"id": sale["id"], "status": "sent"}]}, "s1") == {"updated": 1}
    numbers = send("PUT", f"/me/sales/{sale['id']}/trackingNumbers",
                   {"trackingNumbers": ["INP123"]}, "s2")
    assert numbers == {"id": sale["id"], "trackingNumbers": ["INP123"]}
    stored = state(client, "wszystkopl")["wszystkopl"]["sales"][0]
    assert stored["status"] == "sent" and stored["trackingNumbers"] == ["INP123"]
    missing = client.put("/wszystkopl/me/sales/nope/trackingNumbers", json={
        "trackingNumbers": []}, headers={**auth, "Idempotency-Key": "s3"})
    assert missing.status_code == 404


def test_esklep_serves_only_orders_awaiting_confirmation(client: httpx.Client,
                                                         sim: PartnerSimulator) -> None:
    sim.seed({"esklep": {"orders": [{"id": "O1"}, {"id": "O2"}, {"id": "O3"}],
                         "customers": [{"id": "C1", "name": "Jan"}]}})
    confirmed = write(client, "/esklep/orders/O2/confirm", {"erp_number": "ZK/1/2026"}, "c1")
    assert confirmed.json() == {"id": "O2", "status": "confirmed", "erp_number": "ZK/1/2026"}
    page = client.get("/esklep/orders", params={"status": "awaiting_confirmation"},
                      headers=API_KEY).json()
    assert [order["id"] for order in page["orders"]] == ["O1", "O3"]
    assert page["next_cursor"] == "3"
    assert write(client, "/esklep/orders/O9/confirm", {"erp_number": "X"}, "c2"
                 ).status_code == 404
    assert write(client, "/esklep/orders/O2/confirm", {"erp_number": "ZK/9"}, "c3"
                 ).status_code == 409
    customers = client.get("/esklep/customers", headers=API_KEY).json()
    assert customers == {"customers": [{"id": "C1", "name": "Jan"}], "next_cursor": "1"}


def test_hrm_clear_replaces_the_copy(client: httpx.Client, sim: PartnerSimulator) -> None:
    write(client, "/hrm/employees", {"employees": [{"code": "E1"}, {"code": "E2"}]}, "e1")
    assert write(client, "/hrm/employees/clear", {}, "e2").json() == {"cleared": 2}
    write(client, "/hrm/employees", {"employees": [{"code": "E2"}]}, "e3")
    seen = state(client, "hrm")["hrm"]
    assert seen["employees"] == [{"code": "E2"}]
    assert seen["received_counts"]["employees"] == {"E1": 1, "E2": 2}
    sim.generate("hrm", "leave", 2, customers=["E2"])
    leave = client.get("/hrm/leave", headers=API_KEY).json()["leave"]
    assert [entry["employee"] for entry in leave] == ["E2", "E2"]


def test_apfino_payment_links(client: httpx.Client) -> None:
    invoice = {"number": "FS/1/2026", "contractor": {"code": "K1", "name": "Gąska",
                                                     "nip": "5260250274"},
               "issue_date": "2026-12-01", "due_date": "2026-12-15", "gross": "123.00",
               "remaining": "123.00", "currency": "PLN", "payment_form": "przelew",
               "split_payment": False, "status": "open"}
    assert write(client, "/apfino/invoices", {"invoices": [invoice]}, "i1").json() == {
        "upserted": 1}
    first = write(client, "/apfino/payment-links", {"invoices": ["FS/1/2026", "FS/404"]},
                  "l1").json()
    assert first["unknown"] == ["FS/404"] and len(first["links"]) == 1
    link = first["links"][0]
    assert link["invoice"] == "FS/1/2026" and link["url"].startswith("https://")
    # Check the same link comes when asked again with a new key
    again = write(client, "/apfino/payment-links", {"invoices": ["FS/1/2026"]}, "l2").json()
    assert again == {"links": [link], "unknown": []}


def test_idempotency_key_replays_the_first_answer(client: httpx.Client) -> None:
    body = {"products": [{"code": "P1", "name": "Młotek"}]}
    first = write(client, "/esklep/products", body, "same")
    second = write(client, "/esklep/products", {"products": [{"code": "P2"}]}, "same")
    assert second.status_code == first.status_code == 200
    assert second.content == first.content and second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    seen = state(client, "esklep")["esklep"]
    # Check the replay changed nothing and counted as a duplicate
    assert seen["products"] == body["products"]
    assert seen["received_counts"]["products"] == {"P1": 1}
    assert counters(client, "esklep") == {"accepted": 1, "duplicates": 1, "faults": 0,
                                          "refused": 0}
    # Check keys are per partner
    assert "Idempotent-Replayed" not in write(client, "/detal/products", body, "same").headers
    missing = client.post("/esklep/products", json=body, headers=API_KEY)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["error"]
    assert client.get("/_sim/state").json()["requests"]["duplicates"] == 1


def test_auth_bad_body_and_unknown_paths(client: httpx.Client) -> None:
    no_auth = client.post("/esklep/products", json={"products": []},
                          headers={"Idempotency-Key": "a"})
    assert no_auth.status_code == 401
    bad = write(client, "/esklep/products", {"products": [{"name": "no code"}]}, "b")
    assert bad.status_code == 400 and "code" in bad.json()["error"]
    not_json = client.post("/mobile/stock", content=b"{oops", headers={
        **API_KEY, "Idempotency-Key": "c"})
    assert not_json.status_code == 400
    assert client.get("/esklep/nothing", headers=API_KEY).status_code == 404
    assert client.get("/nobody/products").status_code == 404
    assert client.get("/_sim/nothing").status_code == 404


def test_cursors_page_in_insertion_order(client: httpx.Client, sim: PartnerSimulator) -> None:
    sim.seed({"detal": {"cash": [{"id": f"KP{n}"} for n in range(250)]}})
    seen: list[str] = []
    cursor = ""
    for expected in (100, 100, 50, 0):
        page = client.get("/detal/cash", params={"cursor": cursor}, headers=API_KEY).json()
        assert len(page["entries"]) == expected
        seen += [entry["id"] for entry in page["entries"]]
        cursor = page["next_cursor"]
    assert seen == [f"KP{n}" for n in range(250)] and cursor == "250"
    # Check items seeded later come after the stored cursor
    sim.seed({"detal": {"cash": [{"id": "later"}]}})
    page = client.get("/detal/cash", params={"cursor": cursor, "limit": 5000},
                      headers=API_KEY).json()
    assert page == {"entries": [{"id": "later"}], "next_cursor": "251"}
    small = client.get("/detal/cash", params={"limit": 2}, headers=API_KEY).json()
    assert small["next_cursor"] == "2"
    for bad in ({"cursor": "x"}, {"cursor": "999"}, {"limit": "0"}, {"limit": "many"}):
        assert client.get("/detal/cash", params=bad, headers=API_KEY).status_code == 400


def test_seed_file_and_seed_endpoint(tmp_path: Path, client: httpx.Client) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"xl": {"products": [{"code": "P1", "deleted": False}]},
                                "wszystkopl": {"sales": [{"total": "1.00"}]}}),
                    encoding="utf-8")
    with PartnerSimulator(0, seed_file=seed) as seeded:
        data = httpx.get(f"{seeded.url}/_sim/state").json()
        assert data["xl"]["products"] == [{"code": "P1", "deleted": False}]
        assert data["wszystkopl"]["sales"][0]["status"] == "new"
        assert data["wszystkopl"]["sales"][0]["id"]
    for content, problem in (("{", "not JSON"), ('{"apfino": {"sales": []}}', "apfino"),
                             ('{"esklep": {"orders": {}}}', "esklep.orders")):
        seed.write_text(content, encoding="utf-8")
        with pytest.raises(SimulatorInputError, match=problem) as raised:
            PartnerSimulator(0, seed_file=seed)
        assert "\n" not in str(raised.value)
    answer = client.post("/_sim/seed", json={"mobile": {"payments": [{"id": "W1"}]}})
    assert answer.json() == {"seeded": {"mobile": {"payments": 1}}}
    duplicate = client.post("/_sim/seed", json={"mobile": {"payments": [{"id": "W1"}]}})
    assert duplicate.status_code == 400
    assert client.post("/_sim/seed", json={"nobody": {}}).status_code == 400


def test_generate_realistic_objects(client: httpx.Client) -> None:
    for partner, collection in (("esklep", "customers"), ("esklep", "orders"),
                                ("detal", "documents"), ("detal", "cash"),
                                ("detal", "customers_new"), ("mobile", "orders"),
                                ("mobile", "customers_new"), ("mobile", "payments"),
                                ("xl", "products"), ("xl", "customers"), ("xl", "prices"),
                                ("hrm", "leave"), ("wszystkopl", "sales")):
        answer = client.post("/_sim/generate", json={
            "partner": partner, "collection": collection, "count": 30,
            "products": ["A1", "A2"]})
        assert answer.status_code == 200 and answer.json()["generated"] == 30, answer.text
    data = client.get("/_sim/state").json()
    sales = data["wszystkopl"]["sales"]
    companies = [sale["buyer"] for sale in sales if sale["buyer"]["nip"]]
    assert companies and all(nip.is_valid(buyer["nip"]) for buyer in companies)
    assert all(buyer["companyName"] for buyer in companies)
    assert all("@" in sale["buyer"]["email"] for sale in sales)
    assert {item["offerExternalId"] for sale in sales for item in sale["items"]} <= {"A1", "A2"}
    documents = data["detal"]["documents"]
    assert {document["type"] for document in documents} == {"receipt", "invoice", "correction"}
    by_id = {document["id"]: document for document in documents}
    for correction in (d for d in documents if d["type"] == "correction"):
        assert by_id[correction["corrects"]]["type"] != "correction"
        assert all(line["quantity"].startswith("-") for line in correction["lines"])
    assert all(order["status"] == "awaiting_confirmation" for order in data["esklep"]["orders"])
    refused = client.post("/_sim/generate", json={"partner": "apfino", "collection": "x"})
    assert refused.status_code == 400


def test_503_before_does_nothing(client: httpx.Client) -> None:
    failed = write(client, "/esklep/products", {"products": [{"code": "P1"}]}, "k",
                   **{"X-Sim-Fault": "503"})
    assert failed.status_code == 503 and failed.json()["error"]
    assert state(client, "esklep")["esklep"]["products"] == []
    retried = write(client, "/esklep/products", {"products": [{"code": "P1"}]}, "k")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert counters(client, "esklep")["faults"] == 1


def test_500_after_keeps_the_work(client: httpx.Client) -> None:
    lost = write(client, "/mobile/products", {"products": [{"code": "P1"}]}, "k",
                 **{"X-Sim-Fault": "500-after"})
    assert lost.status_code == 500
    assert state(client, "mobile")["mobile"]["products"] == [{"code": "P1"}]
    retried = write(client, "/mobile/products", {"products": [{"code": "P1"}]}, "k")
    # Check the retry is recognised by its key: the first answer, nothing counted again
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    assert state(client, "mobile")["mobile"]["received_counts"]["products"] == {"P1": 1}
    assert counters(client, "mobile") == {"accepted": 1, "duplicates": 1, "faults": 1,
                                          "refused": 0}


def test_resets_before_and_after(client: httpx.Client) -> None:
    with pytest.raises(httpx.TransportError):
        write(client, "/detal/products", {"products": [{"code": "P1"}]}, "k1",
              **{"X-Sim-Fault": "reset"})
    assert state(client, "detal")["detal"]["products"] == []
    with pytest.raises(httpx.TransportError):
        write(client, "/detal/products", {"products": [{"code": "P2"}]}, "k2",
              **{"X-Sim-Fault": "reset-after"})
    assert state(client, "detal")["detal"]["products"] == [{"code": "P2"}]
    assert write(client, "/detal/products", {"products": [{"code": "P2"}]}, "k2"
                 ).headers["Idempotent-Replayed"] == "true"


def test_429_and_throttle(client: httpx.Client, sim: PartnerSimulator) -> None:
    forced = client.get("/xl/hq/products", headers={**API_KEY, "X-Sim-Fault": "429"})
    assert forced.status_code == 429 and forced.headers["Retry-After"] == "1"
    assert client.post("/_sim/faults", json={"throttle": 3}).json()["throttle"] == 3
    time.sleep(1 - time.monotonic() % 1 + 0.01)  # the start of a second
    statuses = [client.get("/xl/hq/products", headers=API_KEY).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # Check the limit is per partner
    assert client.get("/hrm/leave", headers=API_KEY).status_code == 200
    sim.set_faults(Faults())
    assert client.get("/xl/hq/products", headers=API_KEY).status_code == 200


def test_latency(client: httpx.Client) -> None:
    started = time.monotonic()
    answer = client.get("/hrm/leave", headers={**API_KEY, "X-Sim-Fault": "latency=300"})
    assert answer.status_code == 200 and time.monotonic() - started >= 0.3
    client.post("/_sim/faults", json={"latency_ms": 200})
    started = time.monotonic()
    client.get("/hrm/leave", headers=API_KEY)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    client.get("/_sim/state")
    assert time.monotonic() - started < 0.2
    bad = client.get("/hrm/leave", headers={**API_KEY, "X-Sim-Fault": "explode"})
    assert bad.status_code == 400


def test_error_rate_splits_before_and_after(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"error_rate": 1})
    answers = [write(client, "/esklep/groups", {"groups": [{"code": f"G{n}"}]}, f"k{n}")
               for n in range(40)]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {500, 503}
    kept = {group["code"] for group in state(client, "esklep")["esklep"]["groups"]}
    # Check exactly the 500 answers came after the work was kept
    assert kept == {f"G{n}" for n, status in enumerate(statuses) if status == 500}
    assert counters(client, "esklep")["faults"] == 40
    assert client.post("/_sim/faults", json={"error_rate": 2}).status_code == 400


def test_reset_rate_closes_connections(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"reset_rate": 1})
    for n in range(20):
        with pytest.raises(httpx.TransportError):
            write(client, "/esklep/groups", {"groups": [{"code": f"G{n}"}]}, f"k{n}")
    kept = len(state(client, "esklep")["esklep"]["groups"])
    assert 0 < kept < 20
    client.post("/_sim/faults", json={"reset_rate": 0})
    assert client.get("/esklep/customers", headers=API_KEY).status_code == 200


def test_sim_reset_forgets_everything(client: httpx.Client) -> None:
    write(client, "/esklep/products", {"products": [{"code": "P1"}]}, "k")
    client.post("/_sim/seed", json={"hrm": {"leave": [{"id": "L1"}]}})
    assert client.post("/_sim/reset").json() == {"reset": True}
    data = client.get("/_sim/state").json()
    assert data["esklep"]["products"] == [] and data["hrm"]["leave"] == []
    assert data["requests"] == {"accepted": 0, "duplicates": 0, "faults": 0, "refused": 0}
    again = write(client, "/esklep/products", {"products": [{"code": "P1"}]}, "k")
    assert "Idempotent-Replayed" not in again.headers


def test_port_in_use(sim: PartnerSimulator) -> None:
    with pytest.raises(SimulatorPortError, match="is in use") as raised:
        PartnerSimulator(sim.port).start()
    assert "choose another port" in str(raised.value)


def test_a_body_cut_short_is_neither_done_nor_kept(sim: PartnerSimulator,
                                                   client: httpx.Client) -> None:
    """A client killed between the headers and the body: the key stays unused."""
    import socket

    with socket.create_connection(("127.0.0.1", sim.port)) as raw:
        raw.sendall(b"POST /esklep/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                    b"Idempotency-Key: cut-1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 40\r\n\r\n{\"products\": [")
        raw.shutdown(socket.SHUT_WR)
        raw.recv(100)
    answer = write(client, "/esklep/products", {"products": [{"code": "P1", "name": "x"}]},
                   "cut-1")
    assert answer.status_code == 200 and "Idempotent-Replayed" not in answer.headers
    assert counters(client, "esklep")["accepted"] == 1
