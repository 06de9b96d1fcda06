"""``soa erp`` and the ERP kinds through the installed command: load, export, refusals
(one line, exit code 2, nothing stored), preview, a manual dunning stage, and a run
as of another instant recorded on the run and done by the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Soa, wait_until
from tests.support import PASSWORD

EXAMPLE = Path(__file__).parents[2] / "examples" / "company" / "firma-demo.json"


@pytest.fixture
def company(soa: Soa, tmp_path: Path) -> tuple[Soa, Path]:
    """The service on BIURO, company 'Firma Demo' with the example data (mail to port 9,
    where nothing listens: these tests send nothing)."""
    soa.configure("BIURO", PASSWORD)
    soa.ok("BIURO", "companies", "add", "Firma Demo")
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["email_accounts"][0].update(smtp_port=9, password="tajne-hasło-SMTP")
    path = tmp_path / "company.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    soa.ok("BIURO", "erp", "load", "Firma Demo", str(path))
    return soa, tmp_path


def export(soa: Soa) -> dict[str, Any]:
    exported: dict[str, Any] = json.loads(soa.ok("AUDIT", "erp", "export", "Firma Demo"))
    return exported


def test_bad_documents_are_refused_whole(company: tuple[Soa, Path]) -> None:
    soa, folder = company
    before = export(soa)
    good = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    cases = [
        ({**good, "contractors": [dict(good["contractors"][0], name="Zmieniona"),
                                  dict(good["contractors"][1], nip="1234567890")]},
         "company data contractors[1].nip: '1234567890' is not a valid NIP"),
        ({"receivables": [dict(good["receivables"][0], contractor="NIKT")]},
         "company data receivables[0].contractor: contractor 'NIKT' does not exist"),
        ({"products": [dict(good["products"][0], net_price=5)]},
         "company data products[0].net_price: must be a string with two decimals"),
        ({"dunning_schemes": [dict(good["dunning_schemes"][1], default=True)]},
         "exactly one dunning scheme must be the default"),
    ]
    for document, fragment in cases:
        path = folder / "bad.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        result = soa.run("BIURO", "erp", "load", "Firma Demo", str(path))
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr
    assert export(soa) == before  # Check: nothing of any bad document was stored
    result = soa.run("BIURO", "erp", "load", "Nie Ma", str(EXAMPLE))
    assert result.returncode == 2 and "company 'Nie Ma' is not known" in result.stderr


def test_export_loads_back_to_the_same_state_without_secrets(company: tuple[Soa, Path]) -> None:
    soa, folder = company
    exported = export(soa)
    assert exported["email_accounts"][0]["password"] is None
    assert exported["sms_gateway"]["token"] is None
    assert "tajne-hasło-SMTP" not in json.dumps(exported)
    # Check: the SMTP password is nowhere in clear under SOA_HOME (the company database
    # is there), in UTF-8 or UTF-16
    for path in soa.home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for encoding in ("utf-8", "utf-16-le"):
                assert "tajne-hasło-SMTP".encode(encoding) not in content, path
    soa.ok("BIURO", "companies", "add", "Kopia")
    path = folder / "export.json"
    path.write_text(json.dumps(exported), encoding="utf-8")
    soa.ok("BIURO", "erp", "load", "Kopia", str(path))
    copy = json.loads(soa.ok("AUDIT", "erp", "export", "Kopia"))
    assert copy == exported
    schema = json.loads(soa.ok("AUDIT", "erp", "schema"))
    assert "contractors" in schema["properties"]


def test_preview_and_manual_dunning(company: tuple[Soa, Path]) -> None:
    soa, _ = company
    preview = soa.json("AUDIT", "erp", "preview", "Firma Demo", "dunning", "--as-of",
                       "2026-12-15T07:00")
    assert [(action["action"], action["item"]) for action in preview
            if action["action"] != "skip"] == [
        ("sales_block", "R-2026-101"), ("crm_task", "R-2026-102"), ("sms", "R-2026-103")]
    assert soa.json("AUDIT", "erp", "dunning-history", "Firma Demo") == []  # wrote nothing
    bad = soa.run("BIURO", "erp", "preview", "Firma Demo", "dunning", "--as-of", "jutro")
    assert bad.returncode == 2 and "'jutro' is not a date or time" in bad.stderr

    # stage 4 (a CRM task) by hand for Gąska's receivables above the threshold
    done = soa.json("BIURO", "erp", "dun", "Firma Demo", "--stage", "4", "--contractor",
                    "GĄSKA", "--as-of", "2026-12-15T07:00")
    assert done["actions"] == 1
    [entry] = soa.json("AUDIT", "erp", "dunning-history", "Firma Demo")
    assert (entry["receivable"], entry["stage"], entry["mode"], entry["outcome"],
            entry["created"]) == ("R-2026-101", 4, "manual", "done", "DUN/R-2026-101/4")


def test_a_kind_needs_no_params_and_run_now_acts_as_of_the_instant(
    company: tuple[Soa, Path],
) -> None:
    soa, _ = company
    task = soa.json("BIURO", "tasks", "add", "recurring_orders", "--company", "Firma Demo",
                    "--name", "Zlecenia", "--daily", "06:00")
    assert soa.json("AUDIT", "tasks", "show", task["id"])["params"] == {
        "templates": [], "email_account": None}
    soa.start("BIURO")
    run_id = soa.json("BIURO", "tasks", "run-now", task["id"], "--as-of",
                      "2026-11-01T06:00")["run_id"]
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"] != "scheduled"
               and soa.json("AUDIT", "runs", "show", run_id)["status"] != "running",
               timeout=60)
    shown = soa.json("AUDIT", "runs", "show", run_id)
    assert shown["status"] == "succeeded", shown
    scheduled = shown["history"][0]
    assert scheduled["details"]["as_of"].startswith("2026-11-01T")
    orders = soa.json("AUDIT", "erp", "service-orders", "Firma Demo")
    # as of 1 November: the September and the 31 October orders, not the later ones
    assert [(order["template"], order["date"]) for order in orders] == [
        ("KONSERWACJA-ŻABKA", "2026-09-15"), ("PRZEGLĄD-GĄSKA", "2026-10-31")]
    soa.ok("BIURO", "stop")
