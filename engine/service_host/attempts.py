"""Running started attempts: a thread each, timeouts, cancellation, the outcome recorded."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from engine.application.runs import AttemptOutcome, RunService, StartedAttempt
from engine.domain.errors import DomainError
from engine.operations.contract import RunContext, counts_of

LEASE_UNSAFE_REASON = "the host could not confirm its lease before running the attempt"


@dataclass
class _Call:
    counts: dict[str, int] | None = None
    error: BaseException | None = None
    warnings: tuple[str, ...] = ()
    worker: threading.Thread | None = None
    """The operation's thread, when it outlived the timeout."""


class AttemptRunner:
    """Runs each started attempt in a daemon thread of its own and records its outcome.

    The operation runs in the attempt's thread when the task has no timeout, else in a
    thread of its own, waited for at most the timeout and then cancelled (a thread
    cannot be killed: it keeps its place until it ends). When the operation has ended,
    ``release_place()`` lets the next run start while the outcome waits to be written, so
    both share a commit; ``task_done(task_id)`` follows once the outcome is recorded.
    """

    def __init__(
        self,
        *,
        runs: RunService,
        may_run: Callable[[], bool],
        release_place: Callable[[], None],
        task_done: Callable[[UUID], None],
        logger: logging.Logger,
    ) -> None:
        self._runs = runs
        self._may_run = may_run
        self._release_place = release_place
        self._task_done = task_done
        self._logger = logger
        self._lock = threading.Lock()
        self._contexts: dict[UUID, RunContext] = {}
        self.outcomes_recorded = 0
        """Attempts whose outcome this runner recorded (for monitoring and measurements)."""

    def begin(self, started: StartedAttempt) -> None:
        threading.Thread(
            target=self._attempt, args=(started,), name=f"soa-run-{started.run.id}",
            daemon=True,
        ).start()

    def cancel_all(self) -> None:
        """Set the cancellation flag of every attempt still running."""
        with self._lock:
            for context in self._contexts.values():
                context.cancelled.set()

    def _attempt(self, started: StartedAttempt) -> None:
        held = [True]

        def release_place() -> None:
            if held[0]:
                held[0] = False
                self._release_place()

        try:
            self._run(started, release_place)
        except Exception:
            self._logger.exception("run %s: the attempt could not be recorded", started.run.id)
        finally:
            release_place()
            with self._lock:
                self._contexts.pop(started.run.id, None)
            self._task_done(started.task.id)

    def _run(self, started: StartedAttempt, release_place: Callable[[], None]) -> None:
        if not self._may_run():
            # Started was recorded, but the lease may have been lost meanwhile (the host
            # was suspended, say): another host may own the service now. Run nothing.
            self._runs.abandon_own_attempt(started, LEASE_UNSAFE_REASON)
            return
        begun = time.monotonic()
        call = self._call(started)
        timed_out = call.worker is not None
        outcome = AttemptOutcome(
            duration_seconds=time.monotonic() - begun, timed_out=timed_out,
            counts=None if timed_out else call.counts, error=None if timed_out else call.error,
            warnings=call.warnings,
        )
        recorded = self._runs.record_outcome(started, outcome)
        if call.worker is None:
            release_place()
        try:
            if not recorded.wait():
                self._logger.warning(
                    "run %s: outcome not recorded, changed by another host", started.run.id
                )
                return
            with self._lock:
                self.outcomes_recorded += 1
        finally:
            if call.worker is not None:
                # The cancelled operation keeps its place, and its task stays busy (one
                # run at a time), until it ends.
                call.worker.join()

    def _call(self, started: StartedAttempt) -> _Call:
        """Run the operation once; with a timeout, in a thread of its own, waited for at
        most that long (then cancelled and left to end by itself)."""
        call = _Call()
        try:
            operation, context = self._runs.prepare(started)
        except (DomainError, ValueError) as error:
            call.error = error
            return call
        with self._lock:
            self._contexts[started.run.id] = context

        def target() -> None:
            try:
                call.counts = counts_of(operation.run(context))
                call.warnings = tuple(context.warnings)
            except BaseException as error:  # an operation's failure fails the attempt
                call.error = error

        timeout = started.task.timeout_seconds
        if timeout is None:
            target()  # nothing to time out: the attempt's own thread runs it
            return call
        worker = threading.Thread(target=target, name=f"soa-op-{started.run.id}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            context.cancelled.set()
            call.worker = worker
        return call
