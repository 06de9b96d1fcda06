"""The real host process: start, stop, SIGKILL, takeover and a lost lease."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.e2e.cli import SOA, Soa, process_exists, wait_until
from tests.support import PASSWORD


def test_start_status_from_two_stations_and_stop(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    pid = soa.start("BIURO")
    assert process_exists(pid)
    assert soa.ok("BIURO", "status").strip() == "Usługa jest uruchomiona na stanowisku BIURO."
    assert soa.ok("KASA", "status").strip() == (
        "Usługa jest uruchomiona na stanowisku BIURO. Możesz ją zatrzymać tylko na tym stanowisku."
    )
    assert soa.ok("KASA", "--lang", "en", "status").strip() == (
        "The service is running on station BIURO. You can stop it only on that station."
    )
    soa.ok("BIURO", "stop")
    # Check that stop returns only once the host is down and the stop is recorded.
    assert not process_exists(pid)
    assert soa.ok("KASA", "status").strip() == (
        "Usługa skonfigurowana na stanowisku BIURO jest aktualnie zatrzymana."
    )
    assert soa.log_operations() == ["configured", "started", "stopped"]


def test_running_host_picks_up_a_retention_change_from_another_station(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    soa.start("BIURO")
    soa.ok("KASA", "configure", "log-retention", "21")
    log = soa.home / "logs" / "host-BIURO.log"
    wait_until(lambda: "log retention is now 21 days" in log.read_text(), timeout=15)
    soa.ok("BIURO", "stop")


def test_sigkill_shows_stopped_within_30_seconds_and_records_the_crash_once(soa: Soa) -> None:
    # Default heartbeat (5 s) and lease (15 s), as a user has them.
    soa.extra_env.clear()
    soa.configure("BIURO", PASSWORD)
    pid = soa.start("BIURO")
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: soa.status("KASA")["state"] == "stopped", timeout=30)
    assert time.monotonic() - killed_at <= 30
    for station in ("KASA", "BIURO", "KASA"):
        soa.status(station)
        soa.json(station, "logs")
    assert soa.log_operations() == ["configured", "started", "crashed"]
    crash = soa.json("KASA", "logs", "--status", "error")[0]
    assert str(pid) in crash["message"] and crash["station"] == "BIURO"
    # Check that the owner can start again afterwards.
    soa.start("BIURO")
    soa.ok("BIURO", "stop")
    assert soa.log_operations() == ["configured", "started", "crashed", "started", "stopped"]


def test_restart_right_after_a_crash_records_it_and_starts(soa: Soa) -> None:
    soa.extra_env.update(SOA_HEARTBEAT_SECONDS="5", SOA_LEASE_SECONDS="60")
    soa.configure(" BIURO ", PASSWORD)  # blanks around a station name are dropped
    pid = soa.start("BIURO ")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not process_exists(pid), timeout=10)
    # Check that a start on the same machine needs no wait for the 60 s lease.
    new_pid = soa.start("BIURO")
    assert new_pid != pid
    assert soa.log_operations() == ["configured", "started", "crashed", "started"]
    soa.ok("BIURO", "stop")


def test_takeover_after_a_hang_makes_the_old_host_stop_itself(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    old_pid = soa.start("BIURO")
    os.kill(old_pid, signal.SIGSTOP)  # the host hangs: no heartbeats
    try:
        wait_until(lambda: soa.status("KASA")["state"] == "stopped", timeout=15)
        soa.configure("KASA", PASSWORD)
        new_pid = soa.start("KASA")
    finally:
        os.kill(old_pid, signal.SIGCONT)
    # Check that the old host finds it lost the lease, records it and exits by itself.
    wait_until(lambda: not process_exists(old_pid), timeout=15)
    assert soa.status("BIURO")["host"]["pid"] == new_pid
    operations = soa.log_operations()
    assert operations[:3] == ["configured", "started", "crashed"]
    assert set(operations[3:5]) == {"moved", "account_changed"}
    assert operations[5:] == ["started", "lease_lost"]
    assert "lease lost" in (soa.home / "logs" / "host-BIURO.log").read_text()
    soa.ok("KASA", "stop")


def test_foreground_host_stops_gracefully_on_sigterm(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    host = subprocess.Popen([SOA, "host"], env=soa.env("BIURO"), stderr=subprocess.PIPE, text=True)
    soa.host_pids.add(host.pid)
    wait_until(lambda: soa.status("BIURO")["state"] == "running", timeout=30)
    host.send_signal(signal.SIGTERM)
    assert host.wait(timeout=30) == 0
    assert soa.log_operations() == ["configured", "started", "stopped"]


def test_two_concurrent_starts_leave_exactly_one_host(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    starts = [
        subprocess.Popen([SOA, "start"], env=soa.env("BIURO"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(start.wait(timeout=60), start.stderr.read()) for start in starts]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert refused.count("\n") == 1
    assert "already running" in refused or "changed the service at the same moment" in refused
    soa.status("BIURO")
    assert soa.log_operations().count("started") == 1
    soa.ok("BIURO", "stop")
