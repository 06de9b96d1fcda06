"""A test operation, installed for the tests as a plugin (entry point ``soa.operations``).

Each call is written to a SQLite file; its effect is written once per run id
(the idempotency key), as a real operation's effects must be.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping

from pydantic import BaseModel

from engine.operations.contract import RunContext


class ProbeParams(BaseModel):
    ledger: str
    sleep: float = 0.0
    fail_attempts: int = 0


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS calls (run_id TEXT, attempt INTEGER, scheduled_for TEXT)"
    )
    connection.execute(
        "CREATE TABLE IF NOT EXISTS effects (run_id TEXT PRIMARY KEY, scheduled_for TEXT)"
    )
    return connection


class Probe:
    kind = "probe"
    params_model = ProbeParams

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        params: ProbeParams = ctx.params
        connection = _connect(params.ledger)
        scheduled = ctx.scheduled_for.isoformat()
        connection.execute("INSERT INTO calls VALUES (?, ?, ?)", (ctx.run_id, ctx.attempt, scheduled))
        deadline = time.monotonic() + params.sleep
        while time.monotonic() < deadline and not ctx.is_cancelled():
            time.sleep(0.01)
        if ctx.is_cancelled():
            raise TimeoutError("cancelled")
        if ctx.attempt <= params.fail_attempts:
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
        applied = connection.execute(
            "INSERT OR IGNORE INTO effects VALUES (?, ?)", (ctx.run_id, scheduled)
        ).rowcount
        connection.close()
        return {"effects": applied}
