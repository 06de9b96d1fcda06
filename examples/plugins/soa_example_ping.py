"""An example operation plugin: records each run once in the company's database ("pings").

Installed for the demo by putting this folder on PYTHONPATH (the *.dist-info folder
declares the entry point); a real plugin is a package with the same entry point in
its pyproject.toml (see docs/plugins.md).

It follows the operation contract: the host builds it once, giving it its ports
(``OperationPorts``: the clock and a logger), and each attempt gets a ``RunContext``
whose ``resources.database`` is the company database's pooled engine, so the plugin
never opens a database or a client itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text

from engine.operations import OperationPorts, RunContext


class Ping:
    """Writes one row per run, keyed by the run id: doing it again changes nothing."""

    kind = "example_ping"
    params_model = None

    def __init__(self, ports: OperationPorts) -> None:
        self.clock = ports.clock
        self.logger = ports.logger

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        engine = ctx.resources.database.sql_engine()
        with engine.begin() as connection:
            connection.execute(text(
                "CREATE TABLE IF NOT EXISTS pings (run_id VARCHAR(36) PRIMARY KEY, "
                "company VARCHAR(100), scheduled_for VARCHAR(40), pinged_at VARCHAR(40))"
            ))
            done = connection.execute(
                text("SELECT count(*) FROM pings WHERE run_id = :run_id"), {"run_id": ctx.run_id}
            ).scalar_one()
            if not done:
                connection.execute(text(
                    "INSERT INTO pings VALUES (:run_id, :company, :scheduled_for, :pinged_at)"
                ), {"run_id": ctx.run_id, "company": ctx.company,
                    "scheduled_for": ctx.scheduled_for.isoformat(),
                    "pinged_at": self.clock.now().isoformat()})
        self.logger.info("ping for %s (run %s)", ctx.company, ctx.run_id)
        return {"pings": 0 if done else 1}
