"""``soa replay``, ``soa history``, ``soa export`` and ``soa runs show --as-of`` as a user
runs them: exit codes, one-line refusals, who caused what, a tampered live row."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.e2e.cli import Soa, wait_until
from tests.e2e.ledger import Ledger
from tests.e2e.test_scheduling import LOADED_MACHINE_SECONDS, add_probe, runs_of
from tests.support import PASSWORD

EVER = ("--since", "2000-01-01", "--until", "2100-01-01")


def exported(soa: Soa, *args: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in soa.ok("AUDIT", "export", *args).splitlines()]


def refused(soa: Soa, *args: str) -> str:
    """The one line a refused command prints (exit 2, no traceback)."""
    result = soa.run("AUDIT", *args)
    assert result.returncode == 2, (args, result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_replay_history_and_export_from_the_command_line(soa: Soa, tmp_path: Path) -> None:
    # Check: an empty store replays to nothing, and matches.
    assert soa.ok("AUDIT", "replay").startswith("replayed 0 events")
    assert soa.ok("AUDIT", "replay", "--check").startswith("the live tables match")
    soa.configure("BIURO", PASSWORD)
    soa.ok("BIURO", "companies", "add", "Firma A")
    soa.ok("KASA", "configure", "log-retention", "20")
    checked = soa.ok("AUDIT", "replay", "--check")
    assert checked.startswith("the live tables match the replay of 6 events (up to event 6)")
    assert json.loads(soa.ok("AUDIT", "replay", "--check", "--json"))["differences"] == []
    # Check: every event says who caused it: the OS user and the station of the command.
    records = exported(soa, *EVER)
    assert [(record["event_type"], record["caused_by"]) for record in records] == [
        ("Created", f"cli:{getpass.getuser()}@BIURO"),
        ("Configured", f"cli:{getpass.getuser()}@BIURO"),
        ("Created", f"cli:{getpass.getuser()}@BIURO"),
        ("Assigned", f"cli:{getpass.getuser()}@BIURO"),
        ("Added", f"cli:{getpass.getuser()}@BIURO"),
        ("LogRetentionChanged", f"cli:{getpass.getuser()}@KASA"),
    ]
    assert [record["position"] for record in records] == [1, 2, 3, 4, 5, 6]
    assert PASSWORD not in json.dumps(records)
    # Check: the range is half-open, by the events' time (not their order in the log:
    # the ownership's events were triggered before the configuration's, saved after).
    configured_at, added_at = str(records[1]["time"]), str(records[4]["time"])
    since, until = datetime.fromisoformat(configured_at), datetime.fromisoformat(added_at)
    assert [record for record in exported(soa, "--since", configured_at, "--until", added_at)
            ] == [record for record in records
                  if since <= datetime.fromisoformat(str(record["time"])) < until]
    assert records[1] in exported(soa, "--since", configured_at, "--until", added_at)
    # Check: to a new file, with a summary line; never over an existing file.
    output = tmp_path / "events.jsonl"
    assert soa.ok("AUDIT", "export", *EVER, "--output", str(output)) == \
        f"exported 6 events to {output}\n"
    assert [json.loads(line) for line in output.read_text().splitlines()] == records
    assert "exists; give a new file" in refused(soa, "export", *EVER, "--output", str(output))
    # Check: the history as of then, and as of now.
    then = soa.json("AUDIT", "history", "--as-of", configured_at)
    assert then["status"]["text"] == "Usługa skonfigurowana na stanowisku BIURO jest " \
                                     "aktualnie zatrzymana."
    assert then["companies"] == [] and then["configuration"]["log_retention_days"] == 10
    now = soa.json("AUDIT", "history", "--as-of", datetime.now(UTC).isoformat())
    assert [company["name"] for company in now["companies"]] == ["Firma A"]
    assert now["configuration"] == {"account": "FIRMA\\soa", "log_retention_days": 20}
    shown = soa.ok("AUDIT", "history", "--as-of", "2000-01-01")
    assert shown.splitlines()[1] == "Usługa nie jest skonfigurowana."
    # Check: bad input is one line and exit 2.
    assert "'wczoraj' is not a date or time" in refused(soa, "history", "--as-of", "wczoraj")
    assert "Missing option '--as-of'" in refused(soa, "history")
    assert "is not before its end" in refused(
        soa, "export", "--since", "2026-12-02", "--until", "2026-12-01")
    assert "is not a date or time" in refused(soa, "export", "--since", "x", "--until", "y")


def tamper(soa: Soa) -> None:
    url = soa.database_url or f"sqlite:///{soa.home / 'soa.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE soa_companies SET task_count = 7"))
    engine.dispose()


def test_check_exits_1_and_prints_each_difference(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    company = soa.json("BIURO", "companies", "add", "Firma A")
    soa.ok("AUDIT", "companies", "list")  # the live tables catch up on a read
    tamper(soa)
    result = soa.run("AUDIT", "replay", "--check")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"soa_companies id={company['id']}: task_count is 7 live, 0 replayed",
        "1 difference(s) between the live tables and the replay of 5 events (up to event 5)",
    ]
    assert soa.run("AUDIT", "replay").returncode == 0  # a replay alone compares nothing


def test_host_events_name_the_session_and_runs_show_as_of(
    scheduling: tuple[Soa, Ledger],
) -> None:
    soa, _ = scheduling
    soa.start("BIURO")
    task_id = add_probe(soa, "--every", "1h")
    run_id = soa.json("KASA", "tasks", "run-now", task_id)["run_id"]
    wait_until(lambda: any(run["status"] == "succeeded" for run in runs_of(soa, task_id)),
               timeout=LOADED_MACHINE_SECONDS)
    soa.ok("BIURO", "stop")
    records = exported(soa, *EVER)
    started = next(record for record in records if record["event_type"] == "Started"
                   and record["aggregate_type"] == "StationOwnership")
    host = f"host:{started['fields']['session_id']}@BIURO"  # type: ignore[index]
    user = getpass.getuser()
    # Check: the start is the command's; the session's own records are the host's.
    assert started["caused_by"] == f"cli:{user}@BIURO"
    assert [(record["event_type"], record["caused_by"]) for record in records
            if record["aggregate_id"] == run_id] == [
        ("Scheduled", f"cli:{user}@KASA"), ("Started", host), ("Succeeded", host)]
    assert [record["caused_by"] for record in records
            if record["event_type"] == "Stopped"] == [host]
    assert soa.ok("AUDIT", "replay", "--check").startswith("the live tables match")
    # Check: the run as it was when scheduled, and before it existed.
    scheduled_at = next(datetime.fromisoformat(str(record["time"])) for record in records
                        if record["aggregate_id"] == run_id)
    shown = soa.json("AUDIT", "runs", "show", run_id, "--as-of", scheduled_at.isoformat())
    assert shown["status"] == "scheduled"
    assert [entry["event"] for entry in shown["history"]] == ["Scheduled"]
    assert soa.json("AUDIT", "runs", "show", run_id)["status"] == "succeeded"
    before = (scheduled_at - timedelta(microseconds=1)).isoformat()
    assert "after" in refused(soa, "runs", "show", run_id, "--as-of", before)
    assert "is not a date or time" in refused(soa, "runs", "show", run_id, "--as-of", "jutro")
