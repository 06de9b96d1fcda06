"""This machine's processes, through psutil (imported when first needed)."""

from __future__ import annotations

import socket
from datetime import datetime

from engine.ports.host import Processes

PID_REUSE_SLACK_SECONDS = 2.0


def process_is_gone(pid: int, started_before: float) -> bool:
    """True if no live process ``pid`` exists that began before ``started_before`` (epoch s).

    A process that began later holds a reused pid, so the host is gone.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return bool(process.create_time() > started_before + PID_REUSE_SLACK_SECONDS)
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False  # it exists; we may not look at it


def is_host_process(pid: int) -> bool:
    """True if ``pid`` is a live SOA host process on this machine (safe to signal)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        command_line = process.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process with our pid: signalling will tell
    joined = " ".join(command_line)
    return "host" in command_line and ("engine.service_host" in joined or "soa" in joined)


class PsutilProcesses(Processes):
    """Processes of this machine, named as ``socket.gethostname()`` names it."""

    def machine(self) -> str:
        return socket.gethostname()

    def is_gone(self, pid: int, started_at: datetime) -> bool:
        return process_is_gone(pid, started_at.timestamp())
