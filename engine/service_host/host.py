"""The service host: the foreground process that runs the service on its station."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Protocol
from uuid import UUID

from engine.application.actor import acting_as, host_actor, set_process_actor
from engine.application.service import ServiceApplication
from engine.ports.store import StoreUnavailableError

PRUNE_EVERY = timedelta(hours=1)

EXIT_STOPPED = 0
EXIT_LEASE_LOST = 1


class Scheduler(Protocol):
    """What the host needs of the task scheduler (see :mod:`.scheduler`)."""

    def start(self) -> None: ...
    def refresh(self) -> None: ...
    def stop(self) -> None: ...


SchedulerFactory = Callable[[UUID, Callable[[], bool]], Scheduler]
"""Builds the scheduler of a host session, given the session and a may-run check."""


class ApiService(Protocol):
    """What the host needs of its HTTP server (see :mod:`.api.server`): bound already,
    so that its ``url`` is known before the session begins."""

    url: str

    def start(self) -> None: ...
    def stop(self) -> None: ...


class ServiceHost:
    """Runs the service until SIGTERM/SIGINT, or until it finds it no longer owns it.

    Every ``refresh_seconds`` it picks up changed definitions and dispatches due
    runs; every ``heartbeat_seconds`` a thread of its own renews its lease. It starts attempts only
    while its lease is surely valid (renewed less than ``lease_seconds -
    heartbeat_seconds`` ago). It applies parameter changes (the log retention)
    live and deletes expired log entries at start, every hour and at every
    retention change.
    """

    def __init__(
        self,
        app: ServiceApplication,
        *,
        heartbeat_seconds: float,
        logger: logging.Logger,
        refresh_seconds: float = 1.0,
        scheduler_factory: SchedulerFactory | None = None,
        api: ApiService | None = None,
    ) -> None:
        self.app = app
        self.api = api
        self.heartbeat_seconds = heartbeat_seconds
        self.refresh_seconds = min(refresh_seconds, heartbeat_seconds)
        self.logger = logger
        self.scheduler_factory = scheduler_factory
        self.pid = os.getpid()
        self.machine = socket.gethostname()
        self.stopping = threading.Event()
        self._lost = threading.Event()
        self._lease_renewed_at = time.monotonic()

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask the host to finish its current work and stop (the signal handler)."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl+Break, console close
            signal.signal(signal.SIGBREAK, self.request_stop)

    def lease_is_safe(self) -> bool:
        """True while no other host can consider this host's lease expired."""
        margin = self.app.lease_seconds - self.heartbeat_seconds
        return time.monotonic() - self._lease_renewed_at < margin and not self.stopping.is_set()

    def run(self) -> int:
        """Start the service here and run it; return the process exit code.

        :raises DomainError: if the service may not start here (nothing is recorded).
        """
        try:
            session_id = self.app.begin_host_session(
                self.pid, self.machine, self.api.url if self.api else None
            )
        except BaseException:
            if self.api is not None:
                self.api.stop()
            raise
        # The events of the session record host:<session>@<station>: on this thread, and
        # by default on every thread that names no actor (scheduler, attempts, commits).
        actor = host_actor(session_id, self.app.station)
        previous_actor = set_process_actor(actor)
        try:
            with acting_as(actor):
                return self._run_session(session_id)
        finally:
            set_process_actor(previous_actor)

    def _run_session(self, session_id: UUID) -> int:
        self._lease_renewed_at = time.monotonic()
        self.logger.info(
            "service started on station %s (session %s, process %d)",
            self.app.station, session_id, self.pid,
        )
        if self.api is not None:
            self.api.start()
        heartbeat = threading.Thread(
            target=self._beat, args=(session_id,), name="soa-heartbeat", daemon=True
        )
        heartbeat.start()
        scheduler = (
            self.scheduler_factory(session_id, self.lease_is_safe)
            if self.scheduler_factory else None
        )
        try:
            return self._serve(session_id, scheduler)
        finally:
            self.stopping.set()
            if scheduler is not None:
                scheduler.stop()
            if self.api is not None:
                self.api.stop()
            heartbeat.join()

    def _beat(self, session_id: UUID) -> None:
        """Renew the lease every ``heartbeat_seconds`` on a thread of its own, so no slow
        start, query or refresh of the main loop can let it expire."""
        while not self.stopping.wait(self.heartbeat_seconds):
            beat = time.monotonic()
            try:
                renewed = self.app.renew_lease(session_id)
            except StoreUnavailableError as error:
                self.logger.error("database unreachable, lease not renewed: %s", error.message)
                continue
            if not renewed:
                self._lost.set()
                self.stopping.set()
                return
            self._lease_renewed_at = beat

    def _serve(self, session_id: UUID, scheduler: Scheduler | None) -> int:
        retention = self.app.view().log_retention_days
        last_prune = self._prune()
        if scheduler is not None:
            scheduler.start()
        last_check = time.monotonic()
        while not self.stopping.wait(self.refresh_seconds):
            try:
                if time.monotonic() - last_check >= self.heartbeat_seconds:
                    last_check = time.monotonic()
                    if not self.app.owns_service(session_id):
                        return self._lease_lost(session_id)
                    retention, last_prune = self._apply_parameters(retention, last_prune)
                if scheduler is not None:
                    scheduler.refresh()
            except StoreUnavailableError as error:
                self.logger.error("database unreachable, retrying: %s", error.message)
        if self._lost.is_set():
            return self._lease_lost(session_id)
        if scheduler is not None:
            scheduler.stop()
        if not self.app.end_host_session(session_id, self.pid):
            self.logger.warning("the service had been taken over; recorded the lost lease")
            return EXIT_LEASE_LOST
        self.logger.info("service stopped on station %s", self.app.station)
        return EXIT_STOPPED

    def _lease_lost(self, session_id: UUID) -> int:
        self.stopping.set()
        self.app.record_lease_lost(session_id, self.pid)
        self.logger.warning("the service no longer belongs to this host (lease lost); stopping")
        return EXIT_LEASE_LOST

    def _apply_parameters(self, retention: int, last_prune: datetime) -> tuple[int, datetime]:
        current = self.app.view().log_retention_days
        if current != retention or self.app.clock.now() - last_prune >= PRUNE_EVERY:
            if current != retention:
                self.logger.info("log retention is now %d days", current)
            return current, self._prune()
        return retention, last_prune

    def _prune(self) -> datetime:
        deleted = self.app.prune_logs()
        if deleted:
            self.logger.info("deleted %d log entries older than the retention", deleted)
        return self.app.clock.now()
