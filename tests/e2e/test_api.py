"""The HTTP API of a running host: auth, the same JSON as the CLI, filters, paging,
refusals with the right status, station rules, metrics. One host per store kind."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cli import Soa, wait_until
from tests.e2e.conftest import PLUGINS
from tests.support import PASSWORD, temporary_postgres_database


class Api:
    """The API of the host under test, with its token."""

    def __init__(self, soa: Soa, url: str, token: str) -> None:
        self.soa = soa
        self.url = url
        self.token = token
        self.client = httpx.Client(base_url=url, timeout=30,
                                   headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def refused(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, (path, response.status_code, response.text)
        message: str = response.json()["error"]
        assert message and "\n" not in message and "Traceback" not in message
        return message


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("api") / "soa-home"
    with _database(request.param) as database_url:
        soa = Soa(home, database_url, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3",
                                       "PYTHONPATH": PLUGINS})
        try:
            soa.configure("BIURO", PASSWORD)
            soa.json("BIURO", "companies", "add", "Firma A")
            soa.start("BIURO")
            url = soa.status("BIURO")["api_url"]
            token = soa.ok("BIURO", "api-token").strip()
            yield Api(soa, url, token)
            soa.ok("BIURO", "stop")
        finally:
            soa.kill_hosts()


def _database(kind: str) -> Any:
    import contextlib

    return contextlib.nullcontext(None) if kind == "sqlite" else temporary_postgres_database()


def test_token_file_is_private_and_every_endpoint_but_health_needs_it(api: Api) -> None:
    token_file = api.soa.home / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == api.token and len(api.token) >= 32
    anonymous = httpx.Client(base_url=api.url, timeout=30)
    assert anonymous.get("/api/health").json()["status"] == "ok"
    for path in ("/api/status", "/api/logs", "/api/config", "/api/tasks", "/metrics"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get(path, headers={"Authorization": "Bearer " + "x" * 43})
        assert wrong.status_code == 401, path
    assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.")


def test_status_is_the_json_of_the_cli_for_the_station_asking(api: Api) -> None:
    for station, lang in (("KASA", "en"), ("BIURO", "pl"), ("KASA", "pl")):
        from_api = api.get("/api/status", station=station, lang=lang)
        from_cli = api.soa.json(station, "--lang", lang, "status")
        assert from_api == from_cli
    assert from_api["api_url"] == api.url
    assert from_api["text"] == (
        "Usługa jest uruchomiona na stanowisku BIURO. Możesz ją zatrzymać tylko na tym stanowisku."
    )
    api.refused("GET", "/api/status", 422, params={"lang": "de"})
    api.refused("GET", "/api/status", 422, params={"station": "  "})


def test_logs_filter_and_page_like_the_cli(api: Api) -> None:
    api.soa.ok("KASA", "configure", "log-retention", "11")
    api.soa.ok("KASA", "configure", "log-retention", "10")
    everything = api.get("/api/logs", limit=1000)
    assert everything == api.soa.json("AUDIT", "logs", "--limit", "1000")
    assert [entry["operation"] for entry in everything][-2:] == ["started", "configured"]
    first = api.client.get("/api/logs", params={"limit": 2})
    assert first.json() == everything[:2] and first.headers["x-next-offset"] == "2"
    second = api.client.get("/api/logs", params={"limit": 2, "offset": 2})
    assert second.json() == everything[2:4]
    last = api.client.get("/api/logs", params={"limit": 1000, "offset": 1})
    assert "x-next-offset" not in last.headers and last.json() == everything[1:]
    started = api.get("/api/logs", operation="started", status="ok", company="")
    assert started == []  # no entry belongs to the company ""
    started = api.get("/api/logs", operation="started", status="ok")
    assert [entry["operation"] for entry in started] == ["started"]
    assert api.get("/api/logs", since="2999-01-01T00:00:00Z") == []
    message = api.refused("GET", "/api/logs", 422, params={"status": "fine"})
    assert "query.status" in message
    api.refused("GET", "/api/logs", 422, params={"since": "2026-12-01T10:00:00"})
    api.refused("GET", "/api/logs", 422, params={"limit": 0})
    response = api.client.get("/api/logs", params={"limit": "many"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "query.limit"


def test_configuration_and_its_station_rules(api: Api) -> None:
    assert api.get("/api/config") == api.soa.json("BIURO", "configure", "show")
    assert "password" not in str(api.get("/api/config")).lower()
    changed = api.client.put("/api/config/log-retention", json={"days": 14}).json()
    assert changed == {"log_retention_days": 14, "changed": True}
    assert api.soa.json("KASA", "configure", "show")["log_retention_days"] == 14
    api.refused("PUT", "/api/config/log-retention", 422, json={"days": 4})
    api.refused("PUT", "/api/config/log-retention", 422, json={"days": "ten"})
    api.refused("PUT", "/api/config/log-retention", 422, json={"days": 10, "extra": 1})
    api.client.put("/api/config/log-retention", json={"days": 10})
    # The service runs on BIURO: another station may not set the account.
    refusal = api.refused("PUT", "/api/config/account", 403, json={
        "account": "FIRMA\\inny", "password": PASSWORD, "station": "KASA"})
    assert "BIURO" in refusal and PASSWORD not in refusal
    api.refused("PUT", "/api/config/account", 422, json={
        "account": "FIRMA\\", "password": PASSWORD, "station": "BIURO"})
    api.refused("PUT", "/api/config/account", 422, json={"account": "FIRMA\\soa"})
    done = api.client.put("/api/config/account", json={
        "account": "FIRMA\\soa2", "password": PASSWORD, "station": "BIURO"})
    assert done.json() == {"account": "FIRMA\\soa2", "station": "BIURO"}
    host_log = (api.soa.home / "logs" / "host-BIURO.log").read_text()
    assert PASSWORD not in host_log


def test_companies_tasks_and_runs(api: Api) -> None:
    assert api.get("/api/companies") == api.soa.json("BIURO", "companies", "list")
    created = api.client.post("/api/companies", json={"name": "Firma B"})
    assert created.status_code == 201 and created.json()["name"] == "Firma B"
    api.refused("POST", "/api/companies", 409, json={"name": "Firma B"})
    api.refused("POST", "/api/companies", 422, json={"name": ""})
    task = api.client.post("/api/tasks", json={
        "kind": "probe", "company": "Firma A", "name": "próbka <b>",
        "schedule": {"daily": "23:59"}, "params": {"sleep": 0},
    })
    assert task.status_code == 201, task.text
    task_id = task.json()["id"]
    assert api.get(f"/api/tasks/{task_id}") == api.soa.json("BIURO", "tasks", "show", task_id)
    assert task_id in [entry["id"] for entry in api.get("/api/tasks", company="Firma A")]
    api.refused("POST", "/api/tasks", 422, json={
        "kind": "nothing", "company": "Firma A", "name": "x", "schedule": {"daily": "06:00"}})
    api.refused("POST", "/api/tasks", 422, json={
        "kind": "probe", "company": "Firma A", "name": "x", "schedule": {"daily": "25:00"}})
    api.refused("POST", "/api/tasks", 404, json={
        "kind": "probe", "company": "Nie ma", "name": "x", "schedule": {"daily": "06:00"}})
    api.refused("GET", "/api/tasks/0000", 404)
    api.refused("GET", "/api/tasks/00", 404)

    renamed = api.client.patch(f"/api/tasks/{task_id}", json={"name": "próbka"}).json()
    assert renamed["name"] == "próbka" and renamed["changed"] is True
    assert api.client.post(f"/api/tasks/{task_id}/pause").json()["changed"] is True
    assert api.client.post(f"/api/tasks/{task_id}/pause").json()["changed"] is False
    assert api.get(f"/api/tasks/{task_id}")["next_run"] is None
    assert api.client.post(f"/api/tasks/{task_id}/resume").json()["changed"] is True

    run = api.client.post(f"/api/tasks/{task_id}/run", json={"as_of": "2026-12-15T08:00:00+01:00"})
    assert run.status_code == 202
    run_id = run.json()["run_id"]
    wait_until(lambda: api.get(f"/api/runs/{run_id}")["status"] == "succeeded", timeout=60)
    shown = api.get(f"/api/runs/{run_id}")
    assert shown == api.soa.json("BIURO", "runs", "show", run_id)
    assert shown["history"][0]["event"] == "Scheduled"
    assert api.client.post(f"/api/tasks/{task_id}/run").status_code == 202
    api.refused("POST", f"/api/tasks/{task_id}/run", 422, json={"as_of": "2026-12-15T08:00"})
    runs = api.client.get("/api/runs", params={"task": task_id, "limit": 1})
    assert len(runs.json()) == 1 and runs.headers["x-next-offset"] == "1"
    assert api.get("/api/runs", task=task_id, status="succeeded")[-1]["id"] == run_id
    api.refused("GET", "/api/runs", 422, params={"status": "great"})
    api.refused("GET", "/api/runs/ffffffff", 404)

    assert api.client.delete(f"/api/tasks/{task_id}").status_code == 204
    api.refused("POST", f"/api/tasks/{task_id}/run", 404)
    assert api.client.delete("/api/companies/Firma B").status_code == 204
    api.refused("DELETE", "/api/companies/Firma B", 404)


def test_company_data_views(api: Api) -> None:
    assert api.get("/api/companies/Firma A/invoices") == []
    assert api.get("/api/companies/Firma A/outbox", status="failed") == []
    assert api.get("/api/companies/Firma A/service-orders") == []
    assert api.get("/api/companies/Firma A/dunning-history") == []
    preview = api.client.post("/api/companies/Firma A/preview",
                              json={"kind": "recurring_invoices",
                                    "as_of": "2026-12-15T08:00:00+01:00"})
    assert preview.status_code == 200 and preview.json() == []
    api.refused("GET", "/api/companies/Nie ma/invoices", 404)
    api.refused("GET", "/api/companies/Firma A/outbox", 422, params={"status": "lost"})
    api.refused("POST", "/api/companies/Firma A/preview", 422, json={"kind": "probe"})
    api.refused("GET", "/api/nothing/here", 404)


def test_metrics(api: Api) -> None:
    text = api.client.get("/metrics").text
    for name in ("soa_runs{", "soa_projection_lag_events ", "soa_host_lease_age_seconds ",
                 "soa_api_requests_total{", "soa_run_duration_seconds_bucket{",
                 "soa_attempts_total{"):
        assert name in text, name
    assert 'soa_api_requests_total{method="GET",route="/api/status",status="401"}' in text


def test_api_address_in_use_refuses_the_start(api: Api, tmp_path: Path) -> None:
    other = Soa(tmp_path / "other", None, {"SOA_HEARTBEAT_SECONDS": "1",
                                            "SOA_LEASE_SECONDS": "3"})
    other.configure("BIURO", PASSWORD)
    port = api.url.rsplit(":", 1)[1]
    result = other.run("BIURO", "start", SOA_API_BIND=f"127.0.0.1:{port}")
    assert result.returncode == 2, result
    assert "cannot serve the API on 127.0.0.1:" in result.stderr
    assert other.status("BIURO")["state"] == "stopped"
    bad = other.run("BIURO", "start", SOA_API_BIND="nowhere")
    assert bad.returncode == 2 and "SOA_API_BIND" in bad.stderr
