"""Driving the installed ``soa`` command in subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.adapters.processes_psutil import is_host_process

SOA = str(Path(sys.executable).parent / "soa")


@dataclass
class Soa:
    """The ``soa`` command for one SOA_HOME and store, remembering hosts to clean up."""

    home: Path
    database_url: str | None
    extra_env: dict[str, str] = field(default_factory=dict)
    host_pids: set[int] = field(default_factory=set)

    def env(self, station: str, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
        # hosts of parallel tests must not compete for the API's default port
        env.update(SOA_HOME=str(self.home), SOA_STATION=station, SOA_API_BIND="127.0.0.1:0")
        env.update(self.extra_env)
        if self.database_url:
            env["SOA_DATABASE_URL"] = self.database_url
        env.update(overrides)
        return env

    def run(self, station: str, *args: str, stdin: str = "", timeout: float = 90,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SOA, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
            env=self.env(station, **env),
        )

    def ok(self, station: str, *args: str, stdin: str = "", **env: str) -> str:
        result = self.run(station, *args, stdin=stdin, **env)
        assert result.returncode == 0, (args, result.returncode, result.stderr)
        return result.stdout

    def json(self, station: str, *args: str) -> Any:
        return json.loads(self.ok(station, *args, "--json"))

    def status(self, station: str) -> dict[str, Any]:
        status: dict[str, Any] = self.json(station, "status")
        if status["host"]:
            self.host_pids.add(status["host"]["pid"])
        return status

    def configure(self, station: str, password: str, account: str = "FIRMA\\soa") -> None:
        self.ok(station, "configure", "account", account, "--password-stdin", stdin=password + "\n")

    def start(self, station: str) -> int:
        self.ok(station, "start")
        pid: int = self.status(station)["host"]["pid"]
        return pid

    def log_operations(self, station: str = "AUDIT") -> list[str]:
        """Every log entry's operation, oldest first (not only the CLI's default 100)."""
        entries = self.json(station, "logs", "--limit", "100000")
        return [entry["operation"] for entry in reversed(entries)]

    def kill_hosts(self) -> None:
        """Kill every host process of this SOA_HOME still running (after a failed test)."""
        import psutil

        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if (process.pid in self.host_pids or process.environ().get("SOA_HOME") == str(
                    self.home
                )) and is_host_process(process.pid):
                    process.kill()


def run_events(soa: Soa) -> list[Any]:
    """Every event of every task run in the event log, in order."""
    from engine.domain.task_run import TaskRun
    from tests.support import open_services

    services = open_services(soa.home, soa.database_url, "AUDIT")
    try:
        return [
            event for _, event in services.store.events_after(
                0, limit=10**7, stop=services.store.max_position()
            ) if isinstance(event, TaskRun.Event)
        ]
    finally:
        services.close()


def succeeded_per_run(soa: Soa) -> Counter[str]:
    """How many ``Succeeded`` events each run has in the event log (must be 0 or 1)."""
    from engine.domain.task_run import TaskRun

    return Counter(str(event.originator_id) for event in run_events(soa)
                   if isinstance(event, TaskRun.Succeeded))


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> float:
    """Wait until ``condition()`` holds; return the seconds it took; fail after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


def process_exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
