"""An example operation plugin: records each run once in a SQLite file ("pings").

Installed for the demo by putting this folder on PYTHONPATH (the *.dist-info folder
declares the entry point); a real plugin is a package with the same entry point in
its pyproject.toml (see docs/plugins.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from pydantic import BaseModel

from engine.operations import RunContext


class PingParams(BaseModel):
    ledger: str
    """The SQLite file the pings are written to."""


class Ping:
    """Writes one row per run, keyed by the run id: doing it again changes nothing."""

    kind = "example_ping"
    params_model = PingParams

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        params: PingParams = ctx.params
        with sqlite3.connect(params.ledger, timeout=30) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS pings (run_id TEXT PRIMARY KEY, company TEXT,"
                " scheduled_for TEXT)"
            )
            written = connection.execute(
                "INSERT OR IGNORE INTO pings VALUES (?, ?, ?)",
                (ctx.run_id, ctx.company, ctx.scheduled_for.isoformat()),
            ).rowcount
        return {"pings": written}
