"""A store written by release 0.1 opens and runs unchanged.

``tests/fixtures/release_0_1/soa.db`` was made by release 0.1's own ``soa`` command
(``make_store.sh`` says how): the service configured, companies added and removed, tasks
of every schedule kind paused, disabled, edited and removed, runs succeeded, failed and
abandoned by a killed host. ``expected.json`` is what release 0.1 printed about it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Soa, wait_until
from tests.e2e.conftest import PLUGINS
from tests.support import PASSWORD

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "release_0_1"
HOME = Path("/tmp/soa-release-0.1-fixture")  # where release 0.1 made it (company URL)


@pytest.fixture
def old_store() -> Iterator[tuple[Soa, dict[str, Any]]]:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    shutil.copy(FIXTURE / "soa.db", HOME / "soa.db")
    soa = Soa(HOME, None, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3",
                           "PYTHONPATH": PLUGINS})
    expected = json.loads((FIXTURE / "expected.json").read_text())
    yield soa, expected
    soa.kill_hosts()
    shutil.rmtree(HOME, ignore_errors=True)


def without(items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{key: value for key, value in item.items() if key not in keys} for item in items]


def log_rows() -> list[tuple[Any, ...]]:
    with sqlite3.connect(HOME / "soa.db") as connection:
        return list(connection.execute(
            "SELECT notification_id, time, station, operation, status, message, company, run_id "
            "FROM soa_log_entries ORDER BY notification_id"
        ))


def test_a_store_of_release_0_1_reads_the_same_and_runs(
    old_store: tuple[Soa, dict[str, Any]]
) -> None:
    soa, expected = old_store
    # Check: every read shows what release 0.1 showed.
    status = soa.json("BIURO", "status")
    assert status.pop("api_url") is None  # a field added since: no host runs
    assert status == expected["status"]
    assert soa.json("BIURO", "configure", "show") == expected["configuration"]
    assert soa.json("BIURO", "companies", "list") == expected["companies"]
    assert without(soa.json("BIURO", "tasks", "list"), "next_run") == without(
        expected["tasks"], "next_run"
    )
    assert soa.json("BIURO", "runs", "list", "--limit", "100000") == expected["runs"]
    retention = timedelta(days=expected["configuration"]["log_retention_days"])
    shown = [entry for entry in expected["logs"]
             if datetime.fromisoformat(entry["time"]) >= datetime.now(UTC) - retention]
    assert soa.json("BIURO", "logs", "--limit", "100000") == shown
    # Check: the read models that this release derives from the old events are the ones
    # release 0.1 derived (the log list as stored, before any retention deletes).
    stored = log_rows()
    assert stored
    from tests.support import open_services

    services = open_services(HOME, None, "AUDIT")
    try:
        services.read_models.rebuild()
    finally:
        services.close()
    assert log_rows() == stored

    # Check: it runs. The every-second task (disabled last) is enabled again and runs; the
    # old host's crash was recorded in 0.1, a new start records nothing of the kind.
    every = next(task for task in expected["tasks"] if task["name"] == "Co sekundę")
    assert soa.ok("BIURO", "tasks", "enable", every["id"]).strip() == "task enabled"
    soa.configure("BIURO", PASSWORD)
    started = datetime.now(UTC)
    soa.start("BIURO")
    wait_until(lambda: any(run["status"] == "succeeded" and run["task_id"] == every["id"]
                           and run["id"] not in {old["id"] for old in expected["runs"]}
                           for run in soa.json("AUDIT", "runs", "list", "--limit", "100")),
               timeout=60)
    soa.ok("BIURO", "stop")
    new = [entry for entry in soa.json("AUDIT", "logs", "--limit", "100000")
           if datetime.fromisoformat(entry["time"]) >= started]
    assert new[0]["operation"] == "stopped" and new[-1]["operation"] == "started"
    assert "crashed" not in {entry["operation"] for entry in new}
    assert soa.json("AUDIT", "status")["state"] == "stopped"
