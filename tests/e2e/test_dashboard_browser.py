"""The dashboard in a real browser: Debian's Chromium driven by Selenium through
chromium-driver, against a running host. Screenshots at 1280 and 390 px wide are kept
under ``test-artifacts/dashboard/`` in the repository.

The browser comes from Debian's packages (installed here when missing); Selenium Manager
never downloads one (``SE_OFFLINE=1`` and explicit paths).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.simulators.mail_catcher import MailCatcher
from tests.e2e.cli import Soa, wait_until
from tests.e2e.conftest import PLUGINS
from tests.support import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
EXAMPLE = ROOT / "examples" / "company" / "firma-demo.json"
AS_OF = "2026-12-15T08:00"
WIDE, NARROW = 1280, 390


@pytest.fixture
def store_kind() -> str:
    """The browser test needs one store: the embedded SQLite file (the API and its store
    kinds are covered by tests/e2e/test_api.py)."""
    return "sqlite"


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, timeout=900,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


@pytest.fixture(scope="session")
def chromium() -> tuple[Path, Path]:
    """Debian's chromium and chromium-driver, installed with apt-get when missing (under a
    lock, so parallel sessions do not race for dpkg)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return CHROMIUM, CHROMEDRIVER
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing and cannot be installed here "
                    f"(needs root and apt-get): run 'apt-get install -y {' '.join(PACKAGES)}'")
    with open("/tmp/soa-test-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            installed = _apt_get("install", "-y", "--no-install-recommends", *PACKAGES)
            if installed.returncode != 0:  # the package lists may be missing or stale
                _apt_get("update")
                installed = _apt_get("install", "-y", "--no-install-recommends", *PACKAGES)
            assert installed.returncode == 0, installed.stderr[-2000:]
    assert CHROMIUM.exists() and CHROMEDRIVER.exists()
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium: tuple[Path, Path], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "1")
    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 f"--window-size={WIDE},900"):
        options.add_argument(flag)
    service = Service(executable_path=str(driver_path),
                      log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Dashboard:
    """The browser on the dashboard of one host."""

    def __init__(self, driver: Any, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver = driver
        self.url = url
        self.by = By

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def find(self, css: str) -> Any:
        return self.driver.find_element(self.by.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(self.by.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    @property
    def path(self) -> str:
        return str(self.driver.current_url).removeprefix(self.url)

    def row(self, task_id: str) -> Any:
        return self.find(f"#task-{task_id}")

    def click(self, element: Any) -> None:
        """Click ``element`` and wait until the page it leads to is loaded: a new document
        (without the mark set on the old one), complete. Errors of the driver while the
        documents change are retried (chromedriver may answer one about the old page with
        "Node with given id does not belong to the document")."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.execute_script("document.documentElement.dataset.left = '1'")
        element.click()
        WebDriverWait(self.driver, 20, ignored_exceptions=(WebDriverException,)).until(
            lambda _: self.driver.execute_script(
                "return document.readyState === 'complete'"
                " && !document.documentElement.dataset.left"))

    def press(self, task_id: str, action: str) -> str:
        """Press the task's button; return the message the next page shows."""
        self.click(self.row(task_id).find_element(
            self.by.CSS_SELECTOR, f"[data-action='{action}']"))
        return self.text("#flash")

    def viewport(self, width: int, height: int = 900) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False,
        })

    def overflows(self) -> bool:
        return bool(self.driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth"))

    def screenshot(self, name: str, width: int) -> Path:
        """The whole page at ``width`` px (the viewport stretched to the page's height)."""
        self.viewport(width)
        height = int(self.driver.execute_script(
            "return document.documentElement.scrollHeight"))
        self.viewport(width, max(height, 600))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}-{width}.png"
        assert self.driver.save_screenshot(str(path)), path
        self.viewport(width)
        return path


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    """The mail and SMS catcher of ``soa simulate mail``, on free ports."""
    with MailCatcher(0, 0, tmp_path / "caught" / "messages.jsonl") as started:
        yield started


def wait_for_run(soa: Soa, run_id: str) -> str:
    """The status the run ends in (succeeded or failed)."""
    seen = [""]

    def ended() -> bool:
        seen[0] = soa.json("BIURO", "runs", "show", run_id)["status"]
        return seen[0] in ("succeeded", "failed")

    wait_until(ended, timeout=60, interval=0.5)
    return seen[0]


def load_example(soa: Soa, catcher: MailCatcher, folder: Path) -> None:
    """Company 'Firma Demo' with the example ERP data, its mail and SMS to ``catcher``."""
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["email_accounts"][0]["smtp_port"] = catcher.smtp_port
    document["sms_gateway"]["url"] = catcher.sms_url
    path = folder / "firma-demo.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    soa.ok("BIURO", "companies", "add", "Firma Demo")
    soa.ok("BIURO", "erp", "load", "Firma Demo", str(path))
    # a dunning stage by hand (a CRM task, nothing sent), for the dunning history
    soa.ok("BIURO", "erp", "dun", "Firma Demo", "--stage", "4", "--contractor", "GĄSKA",
           "--as-of", AS_OF)


@pytest.fixture
def host(soa: Soa, catcher: MailCatcher, tmp_path: Path) -> dict[str, str]:
    """A running host with company 'Firma A' and three tasks of the probe plugin, defined
    through the CLI, one of which failed its run (one failure makes a warning here), and
    company 'Firma Demo' with the example ERP data, its recurring invoices and service
    orders made by runs as of :data:`AS_OF`; returns the API URL, the token and the task
    ids."""
    soa.extra_env.update(PYTHONPATH=PLUGINS, SOA_API_BIND="127.0.0.1:0",
                         SOA_FAILURE_WARNING_THRESHOLD="1")
    soa.configure("BIURO", PASSWORD)
    soa.json("BIURO", "companies", "add", "Firma A")
    nightly = soa.json("BIURO", "tasks", "add", "probe", "--company", "Firma A",
                       "--name", "Nightly <script>alert(1)</script>", "--daily", "03:00")
    doomed = soa.json("BIURO", "tasks", "add", "probe", "--company", "Firma A",
                      "--name", "Doomed", "--daily", "04:00")
    broken = soa.json("BIURO", "tasks", "add", "probe", "--company", "Firma A",
                      "--name", "Broken export", "--daily", "05:00", "--max-attempts", "1",
                      "--param", "fail_attempts=9")
    load_example(soa, catcher, tmp_path)
    erp_tasks = [soa.json("BIURO", "tasks", "add", kind, "--company", "Firma Demo",
                          "--name", kind, "--daily", "06:00")["id"]
                 for kind in ("recurring_invoices", "recurring_orders")]
    soa.start("BIURO")
    broken_run = soa.json("BIURO", "tasks", "run-now", broken["id"])["run_id"]
    for task in erp_tasks:  # one after another, as examples/demo.sh runs them
        run_id = soa.json("BIURO", "tasks", "run-now", task, "--as-of", AS_OF)["run_id"]
        assert wait_for_run(soa, run_id) == "succeeded", soa.ok("BIURO", "runs", "show", run_id)
    assert wait_for_run(soa, broken_run) == "failed"
    return {
        "url": soa.status("BIURO")["api_url"], "token": soa.ok("BIURO", "api-token").strip(),
        "nightly": nightly["id"], "doomed": doomed["id"], "broken": broken["id"],
    }


def test_dashboard_in_chromium(soa: Soa, host: dict[str, str], browser: Any) -> None:
    page = Dashboard(browser, host["url"])
    try:
        _drive(soa, host, page)
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "failure.png"))
        (ARTIFACTS / "failure.html").write_text(browser.page_source)
        raise
    finally:
        soa.ok("BIURO", "stop")


def _drive(soa: Soa, host: dict[str, str], page: Dashboard) -> None:
    nightly, doomed, broken = host["nightly"], host["doomed"], host["broken"]

    # Check a page without the cookie leads to the login; a wrong token is refused
    page.open("/")
    assert page.path.startswith("/login")
    page.find("#token").send_keys("not-the-token")
    page.click(page.find("#login"))
    assert "not the API token" in page.text("#login-error")
    page.find("#token").send_keys(host["token"])
    page.click(page.find("#login"))
    assert page.path == "/"

    # Check the status text, in Polish and in English, and where the service runs
    assert page.text("#status-text") == "Usługa jest uruchomiona na stanowisku BIURO."
    assert page.text("#where") == "BIURO" and page.text("#api-url") == host["url"]
    page.click(page.find(".langs a[href$='lang=en']"))
    assert page.text("#status-text") == "The service is running on station BIURO."
    page.open("/")  # the choice is kept in a cookie
    assert page.text("#status-text") == "The service is running on station BIURO."

    # Check the tasks added through the CLI are listed, their names shown as text
    assert page.row(nightly).get_attribute("data-name") == "Nightly <script>alert(1)</script>"
    assert "Nightly <script>alert(1)</script>" in page.row(nightly).text
    assert "daily at 03:00" in page.row(nightly).text

    # Check the failing task is highlighted and named in the warnings
    assert "failing" in page.row(broken).get_attribute("class")
    assert "failing" not in page.row(nightly).get_attribute("class")
    assert "1 in a row" in page.row(broken).find_element(page.by.CSS_SELECTOR, ".failures").text
    assert "failed" in page.row(broken).find_element(page.by.CSS_SELECTOR, ".last-run").text
    assert "'Broken export'" in page.text("#warnings")

    # Check run now records a run that the host runs, shown as the task's last run
    message = page.press(nightly, "run-now")
    assert "recorded" in message
    run_id = message.split()[1]

    def last_run_succeeded() -> bool:
        page.open("/")
        return "succeeded" in page.row(nightly).find_element(
            page.by.CSS_SELECTOR, ".last-run").text

    wait_until(last_run_succeeded, timeout=60, interval=0.5)
    page.open("/runs")
    assert page.all(f"tr[data-run='{run_id}']")

    # Check pause and resume, and their messages
    page.open("/")
    assert page.press(nightly, "pause") == "task 'Nightly <script>alert(1)</script>' paused"
    assert "paused" in page.row(nightly).text
    assert page.all(f"#task-{nightly} [data-action='resume']")
    assert page.press(nightly, "resume") == "task 'Nightly <script>alert(1)</script>' resumed"
    assert "active" in page.row(nightly).text

    # Check a refusal shows the service's one-line message: the task was removed meanwhile
    soa.ok("BIURO", "tasks", "remove", doomed)
    refusal = page.press(doomed, "run-now")
    assert refusal == f"no task has an id starting with {doomed!r}"
    assert page.find("#flash").get_attribute("role") == "alert"
    assert "flash-error" in page.find("#flash").get_attribute("class")
    assert not page.all(f"#task-{doomed}")

    # Check a run's detail shows its event history
    page.click(page.row(nightly).find_element(page.by.CSS_SELECTOR, ".last-run a"))
    assert page.path == f"/runs/{run_id}"
    events = [cell.text for cell in page.all("#history .event")]
    assert events[0] == "Scheduled" and "Succeeded" in events, events
    page.screenshot("run", WIDE)

    # Check the log list, filtered by operation and status
    page.open("/logs")
    page.find("input[name='operation']").send_keys("probe")
    page.find("select[name='status'] option[value='ok']").click()
    page.click(page.find("#filter"))
    assert "operation=probe" in page.path and "status=ok" in page.path
    operations = [cell.text for cell in page.all("#log .operation")]
    assert operations and set(operations) == {"probe"}, operations
    page.screenshot("logs", WIDE)

    # Check a company's page lists the invoices the service lists, and its other data
    invoices = [invoice["number"] for invoice in soa.json("BIURO", "erp", "invoices",
                                                          "Firma Demo")]
    page.open("/companies/Firma%20Demo")
    assert page.text("#company-name") == "Firma Demo"
    assert invoices and [cell.text for cell in page.all(
        "#invoices td[data-label='Number']")] == invoices
    orders = [cell.text for cell in page.all("#service-orders td[data-label='Number']")]
    assert orders and all(number.startswith("ZS/") for number in orders), orders
    assert "DUN/R-2026-101/4" in page.text("#dunning")
    assert "sent" in page.text("#outbox")
    assert not page.overflows()
    page.screenshot("company", WIDE)

    # Check the overview at 1280 px, then at 390 px without horizontal overflow
    page.open("/")
    assert not page.overflows()
    page.screenshot("overview", WIDE)
    for path in ("/", "/logs?operation=probe", f"/runs/{run_id}", "/runs",
                 "/companies/Firma%20A", "/companies/Firma%20Demo"):
        page.viewport(NARROW)
        page.open(path)
        assert page.driver.execute_script("return window.innerWidth") == NARROW
        assert not page.overflows(), path
    page.open("/")
    assert page.text("#status-text") == "The service is running on station BIURO."
    assert page.row(nightly).find_element(page.by.CSS_SELECTOR, "[data-action='run-now']")\
        .is_displayed()
    page.screenshot("overview", NARROW)
    page.open("/logs?operation=probe")
    page.screenshot("logs", NARROW)
    page.open("/companies/Firma%20Demo")
    assert not page.overflows()
    page.screenshot("company", NARROW)

    # Check logging out forgets the token
    page.viewport(WIDE)
    page.open("/")
    page.click(page.find("#logout"))
    assert page.path.startswith("/login")
    page.open("/runs")
    assert page.path.startswith("/login")
