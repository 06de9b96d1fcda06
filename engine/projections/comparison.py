"""Comparing the live projection tables with rebuilt ones (:class:`ScratchModels`), row
by row, at the same event position: ``soa replay --check``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from engine.adapters.schema import (
    companies,
    log_entries,
    projection_positions,
    runs,
    service_view,
    tasks,
)
from engine.adapters.sql import translating_store_errors
from engine.domain.errors import SoaError
from engine.projections.read_models import PROJECTION_NAMES
from engine.projections.runner import NotificationLog
from engine.projections.scratch import ScratchModels, replay

COMPARED: tuple[tuple[Table, str], ...] = (
    (service_view, "id"),
    (companies, "id"),
    (tasks, "id"),
    (runs, "id"),
    (log_entries, "notification_id"),
)
"""Each projection table with the key its rows are matched on. Every other column is
compared, except a log entry's ``id`` (a counter of the table, not of the events)."""
NOT_COMPARED = {(log_entries.name, "id")}


class ReplayError(SoaError):
    """Signals that the live tables cannot be compared (a projection went backwards)."""


@dataclass(frozen=True)
class Difference:
    """One way a live table differs from the replay: a row only on one side, or one
    column of a row with two values."""

    table: str
    key: str
    column: str | None = None
    live: Any = None
    replayed: Any = None
    only_in: str | None = None
    """``live`` or ``replay`` for a row on one side only."""

    def describe(self) -> str:
        where = f"{self.table} {self.key}"
        if self.only_in == "live":
            return f"{where}: in the live table, not in the replay"
        if self.only_in == "replay":
            return f"{where}: in the replay, not in the live table"
        return f"{where}: {self.column} is {self.live!r} live, {self.replayed!r} replayed"

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table, "key": self.key, "column": self.column,
            "live": _jsonable(self.live), "replayed": _jsonable(self.replayed),
            "only_in": self.only_in,
        }


@translating_store_errors
def compare_with_live(
    live: Engine, log: NotificationLog, scratch: ScratchModels, *,
    log_cutoff: Callable[[int], datetime],
) -> tuple[dict[str, int], list[Difference]]:
    """Compare the live projection tables with the scratch ones, row by row.

    In one snapshot of the live database it reads each projection's position, first
    brings the scratch projection to the same position (the live tables may have moved
    on since the replay), then deletes the replayed log entries older than
    ``log_cutoff(retention days)`` (as the live list does), and compares every row of
    the live tables with a key, and every log entry from the cutoff on. Returns the
    positions compared at and the differences.

    :raises ReplayError: if a live projection is behind the replay (it was rebuilt
        meanwhile).
    """
    with _snapshot(live) as connection:
        positions = {
            row.name: int(row.position)
            for row in connection.execute(select(projection_positions))
        }
        targets = {name: positions.get(name, 0) for name in PROJECTION_NAMES}
        behind = [name for name in targets if targets[name] < scratch.positions[name]]
        if behind:
            raise ReplayError(
                f"the live projection {behind[0]} is at event {targets[behind[0]]}, behind "
                f"the replay at {scratch.positions[behind[0]]} (rebuilt meanwhile?); "
                "check again"
            )
        replay(log, scratch, stop=targets)
        cutoff = log_cutoff(scratch.read_models.service_view().log_retention_days)
        scratch.read_models.delete_log_entries_before(cutoff)
        differences: list[Difference] = []
        with scratch.engine.connect() as replayed:
            for compared, key in COMPARED:
                live_rows = _ordered(connection, compared, key, cutoff)
                replayed_rows = _ordered(replayed, compared, key, cutoff)
                differences.extend(_merge(compared, key, live_rows, replayed_rows))
    return targets, differences


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one state of the database until it is closed."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ",
                                         postgresql_readonly=True)
            with connection.begin():
                yield connection
            return
        connection.exec_driver_sql("BEGIN")  # pysqlite opens no transaction for reads
        try:
            yield connection
        finally:
            connection.rollback()


def _ordered(connection: Connection, compared: Table, key: str, cutoff: datetime
             ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The table's rows as (key, the other columns), in the byte order of their keys."""
    key_column = compared.c[key]
    text_key = key_column.type.python_type is str
    query = select(compared).order_by(
        key_column.collate("C") if text_key and connection.dialect.name == "postgresql"
        else key_column
    )
    if compared is log_entries:
        query = query.where(log_entries.c.time >= cutoff)
    columns = [column.name for column in compared.columns
               if column.name != key and (compared.name, column.name) not in NOT_COMPARED]
    for row in connection.execute(query.execution_options(yield_per=5_000)).mappings():
        yield row[key], {name: row[name] for name in columns}


def _merge(compared: Table, key: str, live: Iterator[tuple[Any, dict[str, Any]]],
           replayed: Iterator[tuple[Any, dict[str, Any]]]) -> Iterator[Difference]:
    """The differences of two row streams ordered by key."""
    live_row, replayed_row = next(live, None), next(replayed, None)
    while live_row is not None or replayed_row is not None:
        if replayed_row is None or (live_row is not None and live_row[0] < replayed_row[0]):
            assert live_row is not None
            yield Difference(compared.name, f"{key}={live_row[0]}", only_in="live")
            live_row = next(live, None)
        elif live_row is None or replayed_row[0] < live_row[0]:
            yield Difference(compared.name, f"{key}={replayed_row[0]}", only_in="replay")
            replayed_row = next(replayed, None)
        else:
            for name, value in live_row[1].items():
                if value != replayed_row[1][name]:
                    yield Difference(compared.name, f"{key}={live_row[0]}", column=name,
                                     live=value, replayed=replayed_row[1][name])
            live_row, replayed_row = next(live, None), next(replayed, None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
