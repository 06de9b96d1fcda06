"""The dashboard's pages in process (FastAPI's TestClient over the real services on a
SQLite store): login and its cookie, redirects, CSRF refusals, the buttons' messages,
escaping, filters and paging, a company's data."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from engine.erp.model import DunningEntry, Invoice, OutboxEntry, ServiceOrder
from engine.erp.money import Amounts
from engine.erp.sync import SyncStatus
from engine.erp.trade import OrderLine, SalesOrder
from engine.operations.registry import OperationRegistry
from engine.scheduling.schedule import ScheduleSpec
from engine.service_host.api.app import create_app
from engine.service_host.api.auth import TOKEN_COOKIE
from engine.service_host.api.dashboard.rendering import FLASH_COOKIE
from engine.service_host.bootstrap import ApplicationServices
from tests.integration.scheduling import Recorder
from tests.support import PASSWORD, open_services

TOKEN = "x" * 32
EVIL_NAME = "<script>alert('x')</script>"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ApplicationServices]:
    registry = OperationRegistry({"recorder": Recorder}, load_entry_points=False)
    opened = open_services(tmp_path / "soa-home", None, "BIURO", registry=registry)
    opened.service.set_account("FIRMA\\soa", PASSWORD)
    opened.tasks.add_company("Firma <b>A</b>")
    yield opened
    opened.close()


@pytest.fixture
def client(services: ApplicationServices) -> TestClient:
    """A browser that is not logged in."""
    return TestClient(create_app(services, token=TOKEN), follow_redirects=False)


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    """A browser logged in with the token."""
    assert client.post("/login", data={"token": TOKEN}).status_code == 303
    return client


def add_task(services: ApplicationServices, name: str = "Nightly") -> str:
    task_id: UUID = services.tasks.add_task(
        "recorder", company="Firma <b>A</b>", name=name, schedule=ScheduleSpec(daily="03:00"),
    )
    return str(task_id)


def press(browser: TestClient, task: str, action: str, **form: str) -> tuple[int, str]:
    """POST a task's button as the page does; the status and the message it leaves."""
    csrf = csrf_value_of(browser)
    response = browser.post(f"/tasks/{task}/{action}", data={"csrf": csrf, "next": "/", **form})
    raw = response.cookies.get(FLASH_COOKIE, "")
    text = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["text"] if raw \
        else ""
    return response.status_code, text


def csrf_value_of(browser: TestClient) -> str:
    page = browser.get("/").text
    marker = 'name="csrf" value="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0]


def test_every_page_needs_the_token_and_leads_to_the_login(client: TestClient) -> None:
    for path in ("/", "/logs?status=ok", "/runs", "/runs/abcd", "/companies/Firma%20A"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path
    posted = client.post("/tasks/abcd/pause", data={"csrf": "x"})
    assert (posted.status_code, posted.headers["location"]) == (303, "/login?next=%2F")
    # Check the login page, the static files and the health need no token
    login = client.get("/login")
    assert login.status_code == 200 and 'name="token"' in login.text
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/dashboard.js").status_code == 200
    # Check the dashboard is no part of the API's schema
    paths = client.get("/openapi.json").json()["paths"]
    assert all(path.startswith("/api/") for path in paths), sorted(paths)


def test_login_sets_a_strict_http_only_cookie_and_a_wrong_token_is_refused(
    client: TestClient,
) -> None:
    wrong = client.post("/login", data={"token": "y" * 32, "next": "/logs"})
    assert wrong.status_code == 401
    assert "not the API token" in wrong.text and TOKEN_COOKIE not in wrong.cookies
    assert 'value="/logs"' in wrong.text

    response = client.post("/login", data={"token": TOKEN, "next": "/logs?status=ok"})
    assert response.status_code == 303 and response.headers["location"] == "/logs?status=ok"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN};")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert client.get("/").status_code == 200
    assert client.get("/login?next=/runs").headers["location"] == "/runs"  # already in

    # Check the next page must be this site's (no open redirect)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = client.post("/login", data={"token": TOKEN, "next": target})
        assert response.headers["location"] == "/", target


def test_logout_forgets_the_token(browser: TestClient) -> None:
    response = browser.post("/logout", data={"csrf": csrf_value_of(browser)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert browser.get("/").status_code == 303


def test_forms_without_the_page_value_or_from_another_site_are_refused(
    browser: TestClient, services: ApplicationServices
) -> None:
    task = add_task(services)
    csrf = csrf_value_of(browser)
    for form, headers in (
        ({}, {}),
        ({"csrf": "0" * 64}, {}),
        ({"csrf": csrf}, {"Origin": "http://evil.example"}),
        ({"csrf": csrf}, {"Origin": "null"}),
    ):
        response = browser.post(f"/tasks/{task}/pause", data=form, headers=headers)
        assert response.status_code == 403, (form, headers)
        assert "not sent by this dashboard" in response.text
    assert services.tasks.task(task).task.state == "active"
    # Check the login form, too, refuses another site's post
    response = browser.post("/login", data={"token": TOKEN},
                            headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and TOKEN_COOKIE not in response.cookies
    # Check the same form from this site's page is done
    status, text = press(browser, task, "pause")
    assert (status, text) == (303, "task 'Nightly' paused")
    assert browser.post(f"/tasks/{task}/pause", data={"csrf": csrf},
                        headers={"Origin": "http://testserver"}).status_code == 303


def test_buttons_say_what_they_did_or_the_services_refusal(
    browser: TestClient, services: ApplicationServices
) -> None:
    task = add_task(services)
    assert press(browser, task, "pause") == (303, "task 'Nightly' paused")
    assert press(browser, task, "pause") == (303, "task 'Nightly' was already paused")
    assert "b-paused" in browser.get("/").text
    assert press(browser, task, "resume") == (303, "task 'Nightly' resumed")

    status, text = press(browser, task, "run-now")
    assert status == 303 and text.endswith("recorded; the running host starts it")
    run_id = text.split()[1]
    assert services.runs.run(run_id)[0].status == "scheduled"

    # Check a refusal is the service's one line, shown once on the next page
    services.tasks.remove_task(task)
    status, text = press(browser, task, "run-now")
    assert (status, text) == (303, f"no task has an id starting with {task!r}")
    page = browser.get("/")
    assert f"no task has an id starting with {task!r}".replace("'", "&#39;") in page.text
    assert 'role="alert"' in page.text and "Traceback" not in page.text
    assert FLASH_COOKIE not in browser.cookies
    assert "no task has an id" not in browser.get("/").text
    assert press(browser, "ab", "pause") == (303, "task id 'ab' is too short; give at least 4 "
                                                  "characters")
    assert browser.post(f"/tasks/{task}/explode",
                        data={"csrf": csrf_value_of(browser)}).status_code == 404


def test_user_text_is_escaped(browser: TestClient, services: ApplicationServices) -> None:
    task = add_task(services, EVIL_NAME)
    for path in ("/", "/runs", f"/runs?task={task}"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<b>A</b>" not in page.text, path
    overview = browser.get("/").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in overview
    assert "Firma &lt;b&gt;A&lt;/b&gt;" in overview
    assert 'href="/companies/Firma%20%3Cb%3EA%3C%2Fb%3E"' in overview
    assert press(browser, task, "pause")[1] == f"task {EVIL_NAME!r} paused"
    assert "<script>alert" not in browser.get("/").text
    page = browser.get("/logs", params={"operation": EVIL_NAME, "since": EVIL_NAME})
    assert "<script>alert" not in page.text and "is not a date or time" in page.text
    # Check the pages forbid framing and inline scripts
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_overview_status_text_in_either_language(
    browser: TestClient, services: ApplicationServices
) -> None:
    text = browser.get("/").text
    stopped = "Usługa skonfigurowana na stanowisku BIURO jest aktualnie zatrzymana."
    assert stopped in text and "Nightly" not in text and "No tasks yet" in text
    english = browser.get("/?lang=en")
    assert "The service configured on station BIURO is currently stopped." in english.text
    assert english.cookies.get("soa_lang") == "en"
    assert "is currently stopped" in browser.get("/").text  # kept in the cookie
    assert stopped in browser.get("/?lang=pl").text


def test_runs_list_and_a_runs_history(browser: TestClient, services: ApplicationServices) -> None:
    task = add_task(services)
    run_id = str(services.runs.run_now(task))
    listed = browser.get("/runs", params={"task": task[:6], "status": "scheduled"})
    assert f'data-run="{run_id}"' in listed.text and "(manual)" in listed.text
    assert "No runs match" in browser.get("/runs", params={"status": "failed"}).text
    assert "is not known" in browser.get("/runs", params={"status": "exploded"}).text
    detail = browser.get(f"/runs/{run_id[:8]}")
    assert detail.status_code == 200
    assert '<strong class="event">Scheduled</strong>' in detail.text
    assert "Nightly" in detail.text
    missing = browser.get("/runs/ffffffff")
    assert missing.status_code == 404 and "no run has an id starting with" in missing.text


def test_log_list_filters_and_pages_of_fifty(
    browser: TestClient, services: ApplicationServices
) -> None:
    for change in range(60):
        assert services.service.set_log_retention(11 - change % 2)
    first = browser.get("/logs", params={"operation": "log_retention_changed"})
    assert first.text.count('class="log-row"') == 50
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = browser.get("/logs", params={"operation": "log_retention_changed", "offset": 50})
    assert second.text.count('class="log-row"') == 10
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    configured = browser.get("/logs", params={"operation": "configured", "status": "ok"})
    assert configured.text.count('class="log-row"') == 1
    assert "No log entries match" in browser.get("/logs", params={"status": "error"}).text
    assert "No log entries match" in browser.get(
        "/logs", params={"since": "2999-01-01T00:00"}).text
    assert "log status &#39;bad&#39; is not known" in browser.get(
        "/logs", params={"status": "bad"}).text
    assert browser.get("/logs", params={"offset": "nonsense"}).status_code == 200


def test_company_data_empty_or_unknown(browser: TestClient) -> None:
    page = browser.get("/companies/Firma%20%3Cb%3EA%3C%2Fb%3E")
    assert page.status_code == 200
    assert "No invoices." in page.text and "No messages." in page.text
    assert "No service orders." in page.text and "No dunning history." in page.text
    assert 'role="alert"' not in page.text
    unknown = browser.get("/companies/Nowhere%2FLtd")
    assert unknown.status_code == 200
    assert "company &#39;Nowhere/Ltd&#39; is not known" in unknown.text
    assert unknown.text.count('role="alert"') == 1  # one refusal, not one per table


class CannedErp:
    """The company data service with one invoice, one service order, one dunning stage,
    one undelivered message and one customer order from a partner."""

    def sales_orders(self, company: str) -> list[SalesOrder]:
        return [SalesOrder(
            number="ZS/7/2026/WSZ", series="WSZ", partner="wszystkopl",
            partner_order_id="<S-1>", contractor="ACME", date=date(2026, 12, 2),
            lines=[OrderLine(product="KUBEK", quantity=Decimal(2),
                             unit_price=Decimal("24.60"), vat_rate="23")])]

    def invoices(self, company: str) -> list[Invoice]:
        return [Invoice(
            number="FA/1/12/2026", type="FA", contractor="<i>ACME</i>",
            issue_date=date(2026, 12, 1), sale_date=date(2026, 12, 1),
            due_date=date(2026, 12, 15), currency="PLN", status="issued", template=None,
            period=None, lines=(), vat_by_rate={},
            totals=Amounts(Decimal("100.00"), Decimal("23.00"), Decimal("123.00")),
            sent_at=datetime(2026, 12, 1, 23, 30, tzinfo=UTC),
        )]

    def service_orders(self, company: str) -> list[ServiceOrder]:
        return [ServiceOrder(number="ZS/4/2026", template="KONSERWACJA", contractor="ŻABKA",
                             date=date(2026, 12, 15), description="Konserwacja <kasy>")]

    def dunning_history(self, company: str) -> list[DunningEntry]:
        return [DunningEntry(
            date=date(2026, 12, 15), receivable="R-2026-102", contractor="ŻABKA", stage=2,
            action="crm_task", created="DUN/R-2026-102/2", subject="Windykacja: FA/3/11/2026",
            description="etap 2 (+30 dni od terminu)", mode="automatic", outcome="done",
        )]

    def outbox(self, company: str, status: str | None = None) -> list[OutboxEntry]:
        return [OutboxEntry(
            key="invoice:FA/1/12/2026", operation="invoice_mailing", channel="email",
            to="faktury@acme.example", subject="Faktura <b>FA/1/12/2026</b>",
            text="", item="FA/1/12/2026", run_id="r1", idempotency_key="r1:invoice",
            status="failed", error="mail server refused", attempts=2,
        )]


class CannedSync:
    """The synchronisation service with one partner whose last run failed."""

    def statuses(self, company: str) -> list[SyncStatus]:
        return [SyncStatus(
            partner="wszystkopl", url="http://127.0.0.1:8030/wszystkopl",
            last_full=datetime(2026, 12, 1, 23, 0, tzinfo=UTC), last_differential=None,
            sent=120, received=3, watermark={"out:offers": "42", "in:sales": "3"},
            last_error="PartnerUnavailableError: <wszystkopl> did not answer",
            full_requested=True)]


def test_company_data_rows(browser: TestClient, services: ApplicationServices) -> None:
    services.__dict__["erp"] = CannedErp()
    services.__dict__["sync"] = CannedSync()
    page = browser.get("/companies/ACME").text
    # the synchronisations and the customer orders
    assert "out:offers=42" in page and "full next" in page
    assert "&lt;wszystkopl&gt; did not answer" in page and 'class="failing"' in page
    assert "ZS/7/2026/WSZ" in page and "&lt;S-1&gt;" in page
    assert "FA/1/12/2026" in page and "123.00 PLN" in page
    assert "2026-12-02 00:30:00" in page  # sent at 23:30 UTC: the next day in Warsaw
    assert "&lt;i&gt;ACME&lt;/i&gt;" in page and "<i>ACME" not in page
    assert "Faktura &lt;b&gt;FA/1/12/2026&lt;/b&gt;" in page and "mail server refused" in page
    assert "ZS/4/2026" in page and "Konserwacja &lt;kasy&gt;" in page
    assert "DUN/R-2026-102/2" in page and "Windykacja: FA/3/11/2026" in page
    assert "etap 2 (+30 dni od terminu)" in page and "b-done" in page
    assert "No invoices." not in page and "No messages." not in page
    assert "No service orders." not in page and "No dunning history." not in page
