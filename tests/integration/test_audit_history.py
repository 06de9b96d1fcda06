"""``soa history --as-of`` and ``soa runs show --as-of``: the service, its companies and
tasks, and a run, as the events recorded them at several instants; who caused what."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from engine.application.actor import (
    acting_as,
    api_actor,
    cli_actor,
    host_actor,
    set_process_actor,
)
from engine.domain.errors import NotFoundError
from engine.operations.registry import OperationRegistry
from engine.service_host.bootstrap import ApplicationServices
from engine.service_host.cli_audit import audit_service_of
from tests.integration.scheduling import Recorder, add_task, new_scheduler, settle
from tests.support import PASSWORD, MovableClock, open_services


@pytest.fixture
def services(soa_home: Path, database_url: str | None, clock: MovableClock
             ) -> Iterator[ApplicationServices]:
    recorder = Recorder()
    registry = OperationRegistry({"recorder": lambda: recorder}, load_entry_points=False)
    opened = open_services(soa_home, database_url, "BIURO", clock=clock, registry=registry)
    yield opened
    opened.close()


def instant() -> datetime:
    """Now, strictly after the events before it and before those after it."""
    time.sleep(0.003)
    now = datetime.now(UTC)
    time.sleep(0.003)
    return now


def test_history_shows_the_service_companies_and_tasks_at_each_instant(
    services: ApplicationServices, clock: MovableClock
) -> None:
    audit = audit_service_of(services)
    before = instant()
    with acting_as(cli_actor("BIURO")):
        services.service.set_account("FIRMA\\soa", PASSWORD)
    configured = instant()
    session = services.service.begin_host_session(4242, "pc-biuro")
    started = instant()
    services.tasks.add_company("Firma A")
    task_id = add_task(services, clock)
    defined = instant()
    services.tasks.set_task_state(str(task_id), "pause")
    services.service.set_log_retention(20)
    paused = instant()
    services.service.end_host_session(session, 4242)
    services.tasks.remove_task(str(task_id))
    services.tasks.remove_company("Firma A")
    removed = instant()

    at = {name: audit.history(moment, lang="en") for name, moment in (
        ("before", before), ("configured", configured), ("started", started),
        ("defined", defined), ("paused", paused), ("removed", removed))}
    assert at["before"].status.text == "The service is not configured."
    assert at["before"].account is None and at["before"].events == 0
    assert at["configured"].status.text == \
        "The service configured on station BIURO is currently stopped."
    assert at["configured"].account == "FIRMA\\soa" and at["configured"].companies == []
    assert at["started"].status.text == "The service is running on station BIURO."
    assert at["started"].status.host is not None and at["started"].status.host.pid == 4242
    assert at["started"].session_id == session
    assert [company.name for company in at["defined"].companies] == ["Firma A"]
    assert [(task.name, task.state) for task in at["defined"].tasks] == [("every 10m", "active")]
    assert [task.state for task in at["paused"].tasks] == ["paused"]
    assert at["paused"].log_retention_days == 20 and at["defined"].log_retention_days == 10
    assert at["removed"].status.state == "stopped"
    assert at["removed"].companies == [] and at["removed"].tasks == []
    # Check: the events counted grow with the instant; the JSON names what it shows.
    counts = [view.events for view in at.values()]
    assert counts == sorted(counts) and counts[-1] == services.store.max_position()
    document = json.loads(json.dumps(at["paused"].as_json()))
    assert document["ownership"] == {"station": "BIURO", "running": True,
                                     "session_id": str(session)}
    assert document["configuration"] == {"account": "FIRMA\\soa", "log_retention_days": 20}
    assert [task["state"] for task in document["tasks"]] == ["paused"]


def test_a_run_as_it_was_and_who_caused_each_of_its_events(
    services: ApplicationServices, clock: MovableClock
) -> None:
    audit = audit_service_of(services)
    services.tasks.add_company("Firma A")
    task_id = add_task(services, clock)
    before = instant()
    with acting_as(api_actor("10.0.0.7", "KASA")):
        run_id = services.runs.run_now(str(task_id))
    scheduled = instant()
    host = host_actor(uuid4(), "BIURO")
    previous = set_process_actor(host)  # as the host does: its scheduler's threads
    try:
        scheduler = new_scheduler(services)
        scheduler.refresh()
        settle(scheduler, services)
    finally:
        set_process_actor(previous)
    done = instant()

    view, history = audit.run_as_of(str(run_id)[:8], scheduled)
    assert view.status == "scheduled" and view.attempts == 0
    assert [(entry.event, entry.details["caused_by"]) for entry in history] == [
        ("Scheduled", "api:10.0.0.7@KASA")]
    view, history = audit.run_as_of(str(run_id), done)
    assert view.status == "succeeded" and view.counts == {"calls": 1}
    assert [(entry.event, entry.details["caused_by"]) for entry in history] == [
        ("Scheduled", "api:10.0.0.7@KASA"), ("Started", host), ("Succeeded", host)]
    assert (view, history) == (services.read_models.run(run_id),
                               services.runs.run(str(run_id))[1])
    with pytest.raises(NotFoundError, match=r"was recorded at .*, after"):
        audit.run_as_of(str(run_id), before)
    # Check: the export of the run's events names the same actors.
    lines: list[str] = []
    audit.export(lines.append, since=before, until=done)
    exported = [json.loads(line) for line in lines]
    assert [(record["event_type"], record["caused_by"]) for record in exported
            if record["aggregate_id"] == str(run_id)] == [
        ("Scheduled", "api:10.0.0.7@KASA"), ("Started", host), ("Succeeded", host)]
