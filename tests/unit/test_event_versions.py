"""Event versions: every event says who caused it; events of version 1 load through the
upcaster; ``docs/events.md`` documents every event class and field."""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import Mapper, StoredEvent

from engine.adapters.soa_store import memory_soa_store
from engine.application.actor import (
    acting_as,
    api_actor,
    cli_actor,
    current_actor,
    host_actor,
    set_process_actor,
)
from engine.domain.aggregate import Aggregate
from engine.domain.company import Company
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership
from engine.domain.task_definition import TaskDefinition
from engine.domain.task_run import TaskRun

AGGREGATES = (ServiceConfiguration, StationOwnership, Company, TaskDefinition, TaskRun)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def event_classes() -> list[type[Any]]:
    """Every event class the aggregates record (eventsourcing also defines a ``Created``
    on those whose creation event has another name; it is never recorded)."""
    return [value for aggregate in AGGREGATES for name, value in vars(aggregate).items()
            if isinstance(value, type) and issubclass(value, Aggregate.Event)
            and value is not aggregate.Event
            and (name != "Created" or aggregate in (ServiceConfiguration, StationOwnership))]


def mapper() -> Mapper[Any]:
    """The mapper of the engine's store (its transcodings)."""
    return memory_soa_store().mapper


@pytest.fixture(autouse=True)
def no_process_actor() -> Any:
    previous = set_process_actor(None)
    yield
    set_process_actor(previous)


def test_every_event_class_is_version_2_with_caused_by() -> None:
    classes = event_classes()
    assert len(classes) == 31
    for cls in classes:
        assert cls.class_version == 2, cls
        assert "caused_by" in {field.name for field in dataclasses.fields(cls)}, cls


def test_events_record_the_actor_of_the_context_they_are_triggered_in() -> None:
    with acting_as(cli_actor("BIURO")):
        run = TaskRun(task_id=uuid4(), company="Firma A", kind="probe",
                      scheduled_for=datetime(2026, 12, 1, tzinfo=UTC), manual=True,
                      max_attempts=1)
        session = uuid4()
        with acting_as(host_actor(session, "BIURO")):
            run.start("BIURO", 1, session)
        run.succeed({}, 0.1)
    run_ = TaskRun(task_id=uuid4(), company="Firma A", kind="probe",
                   scheduled_for=datetime(2026, 12, 2, tzinfo=UTC), manual=True, max_attempts=1)
    # Check: the creation, the nested actor, back to the outer one; None outside any.
    assert [event.caused_by for event in run.pending_events] == [
        cli_actor("BIURO"), f"host:{session}@BIURO", cli_actor("BIURO"),
    ]
    assert cli_actor("BIURO").startswith("cli:") and cli_actor("BIURO").endswith("@BIURO")
    assert run_.pending_events[0].caused_by is None


def test_the_process_actor_reaches_threads_that_name_none_and_a_lazy_actor_is_named_late(
) -> None:
    set_process_actor(host_actor(uuid4(), "KASA"))
    seen: list[str | None] = []
    with acting_as(lambda: api_actor("10.0.0.7", "BIURO")):
        seen.append(current_actor())
        thread = threading.Thread(target=lambda: seen.append(current_actor()))
        thread.start()
        thread.join()
    assert seen[0] == "api:10.0.0.7@BIURO"
    assert seen[1] is not None and seen[1].startswith("host:") and seen[1].endswith("@KASA")


def test_a_stored_event_of_version_1_loads_with_caused_by_none() -> None:
    # A Started event as the previous release stored it: no class_version, no caused_by.
    session = uuid4()
    state = (
        '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T08:00:00+00:00"},'
        '"attempt":1,"station":"BIURO","pid":42,'
        f'"session_id":{{"_type_":"uuid_hex","_data_":"{session.hex}"}}}}'
    ).encode()
    stored = StoredEvent(originator_id=uuid4(), originator_version=2,
                         topic="engine.domain.task_run:TaskRun.Started", state=state)
    event = mapper().to_domain_event(stored)
    assert isinstance(event, TaskRun.Started)
    assert event.caused_by is None and event.session_id == session and event.attempt == 1


def test_a_new_event_is_stored_as_version_2_and_reads_back_equal() -> None:
    with acting_as("cli:anna@BIURO"):
        company = Company(name="Firma A", database_url="sqlite:////tmp/a.db")
    the_mapper = mapper()
    stored = the_mapper.to_stored_event(company.pending_events[0])
    assert b'"class_version":2' in stored.state and b'"caused_by":"cli:anna@BIURO"' in stored.state
    assert the_mapper.to_domain_event(stored) == company.pending_events[0]


def documented() -> dict[str, tuple[int, set[str]]]:
    """``### Aggregate.Event (version N)`` headings and the backticked names of the
    fields table under each."""
    found: dict[str, tuple[int, set[str]]] = {}
    current: str | None = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `(\w+\.\w+)` \(version (\d+)\)", line)
        if heading:
            current = heading[1]
            found[current] = (int(heading[2]), set())
        elif current and line.startswith("| `"):
            found[current][1].add(line.split("`")[1])
    return found


def test_docs_events_md_documents_every_event_class_and_field() -> None:
    docs = documented()
    for cls in event_classes():
        name = cls.__qualname__
        assert name in docs, f"{name} is not in docs/events.md"
        version, fields = docs[name]
        assert version == cls.class_version, name
        declared = {field.name for field in dataclasses.fields(cls)} - BASE_FIELDS
        assert fields == declared, (name, fields ^ declared)
