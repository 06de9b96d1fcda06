"""A test operation, installed for the tests as a plugin (entry point ``soa.operations``).

It writes into the company's database, through the engine it is given
(``ctx.resources.database``), one row per call and one row per effect it performs,
never deduplicated, so that tests count what really happened:

- ``probe_calls``: run id, attempt, scheduled instant, host pid, wall time;
- ``probe_effects``: the same for each effect, and ``applied`` = 1 for the first effect of
  a run id (the idempotency key), 0 for a repeat that a real operation would skip.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping

from pydantic import BaseModel
from sqlalchemy import Engine, text

from engine.operations import OperationPorts, RunContext

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS probe_calls (run_id TEXT, attempt INTEGER, "
    "scheduled_for TEXT, pid INTEGER, at REAL)",
    "CREATE TABLE IF NOT EXISTS probe_effects (run_id TEXT, attempt INTEGER, "
    "scheduled_for TEXT, pid INTEGER, at REAL, applied INTEGER)",
)


class ProbeParams(BaseModel):
    sleep: float = 0.0
    """Seconds each attempt takes before its effect (cancellation ends it early)."""
    fail_attempts: int = 0
    """How many first attempts of a run fail on purpose."""


class Probe:
    kind = "probe"
    params_model = ProbeParams

    def __init__(self, ports: OperationPorts) -> None:
        self.clock = ports.clock
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def _prepared(self, engine: Engine, url: str) -> Engine:
        with self._lock:
            if url not in self._ready:
                with engine.begin() as connection:
                    if engine.dialect.name == "sqlite":
                        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                    for statement in _SCHEMA:
                        connection.exec_driver_sql(statement)
                self._ready.add(url)
        return engine

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        params: ProbeParams = ctx.params
        database = ctx.resources.database
        engine = self._prepared(database.sql_engine(), database.url)
        row = {"run_id": ctx.run_id, "attempt": ctx.attempt,
               "scheduled_for": ctx.scheduled_for.isoformat(), "pid": os.getpid()}
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO probe_calls VALUES (:run_id, :attempt, :scheduled_for, :pid, :at)"
            ), {**row, "at": time.time()})
        deadline = time.monotonic() + params.sleep
        while time.monotonic() < deadline and not ctx.is_cancelled():
            time.sleep(0.01)
        if ctx.is_cancelled():
            raise TimeoutError("cancelled")
        if ctx.attempt <= params.fail_attempts:
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO probe_effects SELECT :run_id, :attempt, :scheduled_for, :pid, :at, "
                "NOT EXISTS (SELECT 1 FROM probe_effects WHERE run_id = :run_id)"
            ), {**row, "at": time.time()})
        return {"effects": 1}
