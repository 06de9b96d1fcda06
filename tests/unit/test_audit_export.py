"""``soa export``: one JSON object per event, secrets never in clear, a half-open range."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from engine.application.actor import acting_as
from engine.application.audit import REDACTED, AuditService, exported
from engine.domain.company import Company
from engine.domain.errors import DomainError
from engine.domain.task_definition import RetryPolicy, TaskDefinition
from engine.scheduling.schedule import ScheduleSpec

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def task_with_secrets() -> TaskDefinition:
    company = Company(name="Firma A", database_url="sqlite:////tmp/a.db")
    return TaskDefinition.define(
        company_id=company.id, company=company.name, kind="probe", name="Zadanie",
        schedule=ScheduleSpec(every="1h").new(now=NOW), catch_up="all",
        retry=RetryPolicy(), timeout_seconds=None, at=NOW,
        params={"smtp": {"user": "soa", "password": "Tajne-1", "api_token": "tok-2"},
                "report_url": "https://soa:Tajne-3@erp.example/api", "hosts": ["a", "b"]},
    )


def test_an_exported_event_names_where_when_what_and_who_and_hides_secrets() -> None:
    with acting_as("cli:anna@BIURO"):
        task = task_with_secrets()
    event = task.pending_events[0]
    record = exported(7, event)
    line = json.dumps(record, default=str)
    # Check: no secret in clear, anywhere in the line.
    for secret in ("Tajne-1", "tok-2", "Tajne-3"):
        assert secret not in line
    assert record["fields"]["params"]["smtp"] == {
        "user": "soa", "password": REDACTED, "api_token": REDACTED,
    }
    assert record["fields"]["params"]["report_url"] == f"https://soa:{REDACTED}@erp.example/api"
    assert record["fields"]["params"]["hosts"] == ["a", "b"]
    assert {key: record[key] for key in (
        "position", "aggregate_id", "aggregate_type", "aggregate_version", "event_type",
        "class_version", "caused_by",
    )} == {
        "position": 7, "aggregate_id": str(task.id), "aggregate_type": "TaskDefinition",
        "aggregate_version": 1, "event_type": "Defined", "class_version": 2,
        "caused_by": "cli:anna@BIURO",
    }
    assert record["time"] == event.timestamp.isoformat()
    assert "caused_by" not in record["fields"] and "originator_topic" not in record["fields"]


class Timeline:
    """A ``Replays`` that only lists events (what ``export`` uses)."""

    def __init__(self, events: list[Any]) -> None:
        self.numbered = list(enumerate(events, start=1))

    def head(self) -> int:
        return len(self.numbered)

    def events(self, *, stop: int, progress: Any = None) -> Iterator[tuple[int, Any]]:
        for position, event in self.numbered:
            if progress is not None:
                progress(position, stop)
            yield position, event


def test_export_writes_the_events_from_since_until_before_until() -> None:
    company = Company(name="Firma A", database_url="sqlite:////tmp/a.db")
    for _ in range(5):
        time.sleep(0.002)  # distinct timestamps
        company.attach_task(uuid4())
    events = list(company.pending_events)
    times = [event.timestamp for event in events]
    service = AuditService(read_models=None, runs=None, store=None,  # type: ignore[arg-type]
                           replays=Timeline(events), clock=None, station="BIURO")  # type: ignore[arg-type]
    lines: list[str] = []
    progress: list[tuple[int, int]] = []
    written = service.export(lines.append, since=times[1], until=times[4],
                             progress=lambda *at: progress.append(at))
    assert written == 3
    assert [json.loads(line)["aggregate_version"] for line in lines] == [2, 3, 4]
    assert progress[-1] == (6, 6)
    with pytest.raises(DomainError, match="is not before"):
        service.export(lines.append, since=times[2], until=times[2])
    assert service.export(lines.append, since=NOW - timedelta(days=3650),
                          until=NOW - timedelta(days=3000)) == 0
