"""The service host: the foreground process that runs the service on its station."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta
from types import FrameType

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from engine.application import ServiceApplication

PRUNE_EVERY = timedelta(hours=1)

EXIT_STOPPED = 0
EXIT_LEASE_LOST = 1


class ServiceHost:
    """Runs the service until SIGTERM/SIGINT, or until it finds it no longer owns it.

    Holds a heartbeat lease, renewed every ``heartbeat_seconds``; applies
    parameter changes (the log retention) live, and deletes expired log entries
    at start, every hour and at every retention change.
    """

    def __init__(
        self,
        app: ServiceApplication,
        *,
        heartbeat_seconds: float,
        logger: logging.Logger,
    ) -> None:
        self.app = app
        self.heartbeat_seconds = heartbeat_seconds
        self.logger = logger
        self.pid = os.getpid()
        self.machine = socket.gethostname()
        self.stopping = threading.Event()

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask the host to finish its current work and stop (the signal handler)."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl+Break, console close
            signal.signal(signal.SIGBREAK, self.request_stop)

    def run(self) -> int:
        """Start the service here and run it; return the process exit code.

        :raises DomainError: if the service may not start here (nothing is recorded).
        """
        session_id = self.app.begin_host_session(self.pid, self.machine)
        self.logger.info(
            "service started on station %s (session %s, process %d)",
            self.app.station, session_id, self.pid,
        )
        retention = self.app.view().log_retention_days
        last_prune = self._prune()
        while not self.stopping.wait(self.heartbeat_seconds):
            try:
                if not self.app.heartbeat(session_id):
                    self.app.record_lease_lost(session_id, self.pid)
                    self.logger.warning(
                        "the service no longer belongs to this host (lease lost); stopping"
                    )
                    return EXIT_LEASE_LOST
                current = self.app.view().log_retention_days
                if current != retention or self.app.clock.now() - last_prune >= PRUNE_EVERY:
                    if current != retention:
                        self.logger.info("log retention is now %d days", current)
                    retention = current
                    last_prune = self._prune()
            except (SQLAlchemyError, PersistenceError) as error:
                self.logger.error("database unreachable, retrying: %s", _first_line(error))
        if not self.app.end_host_session(session_id, self.pid):
            self.logger.warning("the service had been taken over; recorded the lost lease")
            return EXIT_LEASE_LOST
        self.logger.info("service stopped on station %s", self.app.station)
        return EXIT_STOPPED

    def _prune(self) -> datetime:
        deleted = self.app.prune_logs()
        if deleted:
            self.logger.info("deleted %d log entries older than the retention", deleted)
        return self.app.clock.now()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
