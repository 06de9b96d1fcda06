"""What the test plugin ``probe`` wrote into the company database, and the checks that
tell a double execution from a legitimate retry."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from engine.domain.task_run import TaskRun


@dataclass(frozen=True)
class Call:
    run_id: str
    attempt: int
    scheduled_for: str
    pid: int
    at: float


@dataclass(frozen=True)
class Effect:
    run_id: str
    attempt: int
    scheduled_for: str
    pid: int
    at: float
    applied: bool


class Ledger:
    """The probe's tables in a company's SQLite database."""

    def __init__(self, database_url: str) -> None:
        database = make_url(database_url).database
        assert database, database_url
        self.path = Path(database)

    def _rows(self, table: str) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        with sqlite3.connect(self.path, timeout=60) as connection:
            try:
                return list(connection.execute(f"SELECT * FROM {table}"))
            except sqlite3.OperationalError:
                return []  # the probe has not run yet

    def calls(self) -> list[Call]:
        return [Call(*row) for row in self._rows("probe_calls")]

    def effects(self) -> list[Effect]:
        return [Effect(*row[:5], applied=bool(row[5])) for row in self._rows("probe_effects")]


def check_each_effect_once(ledger: Ledger, run_events: list[Any], succeeded: set[str]) -> None:
    """Fail on any sign that the engine executed a run twice:

    - an attempt (run id, attempt) called twice;
    - an effect written twice by one attempt, or by an attempt after an earlier one of the
      same run that was not abandoned (its host dead): two attempts both doing the work;
    - a run recorded ``Succeeded`` whose succeeding attempt wrote no effect.
    """
    calls = Counter((call.run_id, call.attempt) for call in ledger.calls())
    assert [key for key, count in calls.items() if count > 1] == []
    abandoned = {(str(event.originator_id), event.attempt) for event in run_events
                 if isinstance(event, TaskRun.Abandoned)}
    succeeded_attempt = {str(event.originator_id): event.attempt for event in run_events
                         if isinstance(event, TaskRun.Succeeded)}
    by_run: dict[str, list[int]] = {}
    for effect in ledger.effects():
        by_run.setdefault(effect.run_id, []).append(effect.attempt)
    for run_id, attempts in by_run.items():
        assert len(attempts) == len(set(attempts)), (run_id, attempts)
        for earlier in sorted(attempts)[:-1]:
            assert (run_id, earlier) in abandoned, (run_id, attempts)
    for run_id in succeeded:
        assert succeeded_attempt[run_id] in by_run.get(run_id, []), run_id
