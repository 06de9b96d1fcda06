"""Starting the host as a background process and stopping it by signal."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.adapters.processes_psutil import is_host_process, process_is_gone
from engine.application.service import ServiceApplication
from engine.domain.errors import DomainError
from engine.settings import Settings

POLL_SECONDS = 0.1
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    """What ``soa start``/``soa stop`` report: an exit code and one line."""

    exit_code: int
    message: str


def host_log_path(settings: Settings) -> Path:
    """The file a background host writes its log to."""
    safe_station = re.sub(r"[^A-Za-z0-9._-]", "_", settings.station)
    return settings.home / "logs" / f"host-{safe_station}.log"


def start_background(app: ServiceApplication, settings: Settings) -> Outcome:
    """Start ``soa host`` in the background and return once it runs (or has failed)."""
    app.check_can_start()
    log_path = host_log_path(settings)
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        SOA_HOME=str(settings.home),
        SOA_STATION=settings.station,
        SOA_EDITION=settings.edition,
    )
    if settings.database_url:
        env["SOA_DATABASE_URL"] = settings.database_url
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.service_host", "host"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            env=env, close_fds=True, **_detached(),
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        exit_code = process.poll()
        if exit_code is not None:
            reason = _last_error_line(log_path, offset) or f"the host exited with code {exit_code}"
            return Outcome(2 if exit_code == 2 else 1, reason)
        view = app.view()
        if view.pid == process.pid and view.station == app.station:
            where = f", dashboard {view.api_url}" if view.api_url else ""
            return Outcome(0, f"started (process {process.pid}, log {log_path}{where})")
        time.sleep(POLL_SECONDS)
    process.terminate()
    return Outcome(
        1, f"the host did not start within {START_TIMEOUT_SECONDS:.0f} s; see {log_path}"
    )


def _detached() -> dict[str, Any]:
    """Popen options that detach the host from this terminal and its signals."""
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        return {"creationflags": flags}
    return {"start_new_session": True}


def stop_background(app: ServiceApplication, settings: Settings) -> Outcome:
    """Stop the host running on this station by SIGTERM; return once its stop is recorded
    and its process has ended."""
    view = app.running_session_to_stop()
    assert view.session_id is not None and view.pid is not None
    machine = socket.gethostname()
    if view.host != machine:
        raise DomainError(
            f"the host process runs on machine {view.host}, this is {machine}; "
            "run soa stop on that machine"
        )
    assert view.since is not None
    if process_is_gone(view.pid, view.since.timestamp()):
        app.record_crash(view.session_id)
        return Outcome(0, f"the host process {view.pid} was already gone; recorded it as crashed")
    if not is_host_process(view.pid):
        return Outcome(
            1, f"process {view.pid} does not look like an SOA host; stop it with the tool "
            "that started it"
        )
    os.kill(view.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.stop_timeout_seconds
    while time.monotonic() < deadline:
        gone = process_is_gone(view.pid, view.since.timestamp())
        if app.view().session_id != view.session_id:
            if gone:
                return Outcome(0, "stopped")
        elif gone:
            app.record_crash(view.session_id)
            return Outcome(1, f"the host process {view.pid} ended without recording its stop")
        time.sleep(POLL_SECONDS)
    return Outcome(
        1, f"the host process {view.pid} did not stop within {settings.stop_timeout_seconds:.0f} s"
    )


def _last_error_line(log_path: Path, offset: int) -> str | None:
    with open(log_path, "rb") as log_file:
        log_file.seek(offset)
        lines = log_file.read().decode(errors="replace").strip().splitlines()
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return lines[-1] if lines else None
