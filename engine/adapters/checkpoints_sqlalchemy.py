"""Run checkpoints in the ``soa_run_checkpoints`` table."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Engine, delete, insert, select

from engine.adapters.schema import run_checkpoints
from engine.adapters.sql import translating_store_errors
from engine.ports.runs import CheckpointStore, CheckpointStores


class SqlCheckpointStore(CheckpointStore):
    """The checkpoints of one run; each put commits before it returns."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self._engine = engine
        self._run_id = run_id

    @translating_store_errors
    def get(self, key: str) -> str | None:
        with self._engine.connect() as connection:
            value = connection.execute(
                select(run_checkpoints.c.value)
                .where(run_checkpoints.c.run_id == self._run_id)
                .where(run_checkpoints.c.key == key)
            ).scalar()
        return None if value is None else str(value)

    @translating_store_errors
    def put(self, key: str, value: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                delete(run_checkpoints)
                .where(run_checkpoints.c.run_id == self._run_id)
                .where(run_checkpoints.c.key == key)
            )
            connection.execute(
                insert(run_checkpoints).values(run_id=self._run_id, key=key, value=value)
            )


class SqlCheckpointStores(CheckpointStores):
    """Every run's checkpoints, in the store's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def for_run(self, run_id: UUID) -> CheckpointStore:
        return SqlCheckpointStore(self._engine, str(run_id))
