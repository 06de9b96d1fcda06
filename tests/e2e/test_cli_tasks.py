"""``soa companies`` and ``soa tasks`` through the installed command: every subcommand, its
JSON, and its refusals (one line, exit code 2, nothing recorded)."""

from __future__ import annotations

from datetime import datetime

from tests.e2e.cli import Soa
from tests.e2e.ledger import Ledger


def refused(soa: Soa, *args: str, fragment: str) -> None:
    before = soa.json("AUDIT", "tasks", "list"), soa.json("AUDIT", "companies", "list")
    result = soa.run("BIURO", *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.stderr
    assert (soa.json("AUDIT", "tasks", "list"), soa.json("AUDIT", "companies", "list")) == before


def test_companies_and_tasks_from_adding_to_removing(scheduling: tuple[Soa, Ledger]) -> None:
    soa, _ = scheduling
    companies = soa.json("KASA", "companies", "list")
    assert [(company["name"], company["task_count"]) for company in companies] == [("Firma A", 0)]
    assert companies[0]["database_url"].startswith("sqlite:///")
    refused(soa, "companies", "add", "firma a", fragment="already exists")

    task_id = soa.json("BIURO", "tasks", "add", "probe", "--company", "Firma A", "--name",
                       "Rano", "--daily", "06:30", "--business-days", "--param", "sleep=0.5",
                       "--timeout", "10m")["id"]
    listed = soa.json("KASA", "tasks", "list")
    assert [task["id"] for task in listed] == [task_id]
    task = listed[0]
    assert task["schedule"]["kind"] == "daily" and task["schedule"]["business_days"] is True
    assert task["params"] == {"sleep": 0.5, "fail_attempts": 0}
    assert task["state"] == "active" and task["timeout_seconds"] == 600
    next_run = datetime.fromisoformat(task["next_run"])
    assert next_run.weekday() < 5
    assert soa.json("KASA", "tasks", "show", task_id[:8]) == task
    assert "daily at 06:30 on business days (Europe/Warsaw)" in soa.ok("KASA", "tasks", "list")
    assert soa.json("AUDIT", "companies", "list")[0]["task_count"] == 1

    # Edit: a new rule keeps the zone and the business-days limit; a new name; no timeout.
    assert soa.ok("KASA", "tasks", "edit", task_id, "--daily", "07:15", "--name", "Rano 2",
                  "--no-timeout", "--param", "sleep=0").strip() == "task changed"
    edited = soa.json("AUDIT", "tasks", "show", task_id)
    assert edited["schedule"]["expression"] == "07:15"
    assert edited["schedule"]["business_days"] is True
    assert (edited["name"], edited["timeout_seconds"]) == ("Rano 2", None)
    assert edited["params"] == {"sleep": 0.0, "fail_attempts": 0}
    assert soa.ok("KASA", "tasks", "edit", task_id, "--all-days").strip() == "task changed"
    assert soa.json("AUDIT", "tasks", "show", task_id)["schedule"]["business_days"] is False
    assert soa.ok("KASA", "tasks", "edit", task_id, "--name", "Rano 2").strip() == (
        "nothing to change"
    )

    # States: disabled has no next run; enable, pause and resume say what they did.
    assert soa.ok("BIURO", "tasks", "disable", task_id).strip() == "task disabled"
    disabled = soa.json("AUDIT", "tasks", "show", task_id)
    assert (disabled["state"], disabled["next_run"]) == ("disabled", None)
    assert soa.ok("BIURO", "tasks", "disable", task_id).strip() == "task was already disabled"
    assert soa.ok("BIURO", "tasks", "enable", task_id).strip() == "task enabled"
    assert soa.ok("BIURO", "tasks", "pause", task_id).strip() == "task paused"
    assert soa.json("AUDIT", "tasks", "show", task_id)["state"] == "paused"
    assert soa.ok("BIURO", "tasks", "resume", task_id).strip() == "task resumed"
    resumed = soa.json("AUDIT", "tasks", "show", task_id)
    assert resumed["state"] == "active" and resumed["next_run"] is not None

    refused(soa, "tasks", "edit", task_id, "--daily", "25:00", fragment="is not a time of day")
    refused(soa, "tasks", "edit", task_id, "--param", "colour=red", fragment="no parameter colour")
    refused(soa, "tasks", "show", "abc", fragment="too short")
    refused(soa, "tasks", "pause", "ffffffff", fragment="no task has an id starting with")
    refused(soa, "companies", "remove", "Firma A", fragment="is used by 1 task(s)")
    refused(soa, "companies", "remove", "Firma B", fragment="is not known; known are: Firma A")

    run_id = soa.json("BIURO", "tasks", "run-now", task_id)["run_id"]
    assert soa.json("AUDIT", "runs", "show", run_id)["status"] == "scheduled"
    assert soa.ok("BIURO", "tasks", "remove", task_id).strip() == "task removed"
    assert soa.json("AUDIT", "tasks", "list") == []
    refused(soa, "tasks", "show", task_id, fragment="no task has an id starting with")
    assert soa.json("AUDIT", "runs", "show", run_id)["task_id"] == task_id  # history stays
    assert soa.ok("BIURO", "companies", "remove", "Firma A").strip() == "company Firma A removed"
    assert soa.json("AUDIT", "companies", "list") == []
    operations = soa.log_operations()
    assert operations == ["configured"]  # task and company changes are events, not log entries
