"""Two hosts on two stations sharing one database: no occurrence runs twice."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.e2e.cli import Soa, process_exists, succeeded_per_run, wait_until
from tests.e2e.test_scheduling import add_probe, all_succeeded_until, ledger_rows
from tests.support import PASSWORD


@pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_hung_host_and_its_successor_never_complete_an_occurrence_twice(
    scheduling: tuple[Soa, str],
) -> None:
    """On PostgreSQL: a suspended host's open transaction is ended by the server after
    10 s, so the other station can take over. (On SQLite a process suspended inside a
    write transaction holds the file's lock; SQLite serves one machine, see operations.)"""
    soa, ledger = scheduling
    task_id = add_probe(soa, ledger, "--every", "1s", "--catch-up", "all", "--max-attempts",
                        "5", "--backoff", "1s", "--param", "sleep=0.3")
    for _ in range(3):
        old = soa.start("BIURO")
        time.sleep(2)
        os.kill(old, signal.SIGSTOP)  # BIURO's host hangs mid-run
        try:
            wait_until(lambda: soa.status("KASA")["state"] == "stopped", timeout=60)
            soa.configure("KASA", PASSWORD)  # KASA takes over
            new = soa.start("KASA")
            time.sleep(2)
        finally:
            os.kill(old, signal.SIGCONT)  # the old host wakes up, finds its lease lost
        wait_until(lambda old=old: not process_exists(old), timeout=20)
        assert soa.status("BIURO")["host"]["pid"] == new
        soa.ok("KASA", "stop")
        soa.configure("BIURO", PASSWORD)  # back to BIURO for the next round
    soa.start("BIURO")
    until = datetime.now(UTC)
    wait_until(lambda: all_succeeded_until(soa, task_id, until), timeout=120)
    soa.ok("BIURO", "stop")

    succeeded = succeeded_per_run(soa)
    assert succeeded and max(succeeded.values()) == 1
    effects = Counter(row[0] for row in ledger_rows(ledger, "effects"))
    assert max(effects.values()) == 1
    assert set(effects) == set(succeeded)
    assert soa.log_operations().count("lease_lost") == 3
