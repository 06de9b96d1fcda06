"""A large event history recorded fast: for the replay tests and ``bench_replay.py``.

The events are the engine's own, made by its aggregates' methods (as the host makes
them) and saved many runs per transaction, which the host never does but which makes
a store of a million events in about a minute and a half on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from engine.domain.company import Company
from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration
from engine.domain.station_ownership import StationOwnership
from engine.domain.task_definition import RetryPolicy, TaskDefinition
from engine.domain.task_run import TaskRun
from engine.scheduling.schedule import ScheduleSpec

EVENTS_PER_TRANSACTION = 6_000
FIRST_OCCURRENCE = datetime(2026, 1, 1, tzinfo=UTC)


def record_history(store: Any, events: int, *, tasks: int = 100, station: str = "BENCH",
                   companies: int = 10, company_prefix: str = "Firma") -> int:
    """Record at least ``events`` events in ``store`` (an ``EventStore``): the service
    configured and started on ``station`` (unless it was), ``companies`` companies named
    ``<company_prefix> <n>`` with ``tasks`` tasks, then runs of those tasks: most succeed
    (3 events), one in ten fails for good (4 events), one in fifty is skipped (2 events).
    Returns how many were recorded."""
    session = uuid4()
    recorded = 0
    if store.get(SERVICE_CONFIGURATION_ID) is None:
        configuration, ownership = ServiceConfiguration(), StationOwnership()
        ownership.assign(station)
        configuration.set_account("FIRMA\\soa", station)
        ownership.start(station, session, 4242, "bench-host")
        recorded += _save(store, [configuration, ownership])
    owners = [Company(name=f"{company_prefix} {index}",
                      database_url=f"sqlite:////tmp/firma-{index}.db")
              for index in range(companies)]
    now = datetime.now(UTC)
    definitions = []
    for index in range(tasks):
        owner = owners[index % companies]
        task = TaskDefinition.define(
            company_id=owner.id, company=owner.name, kind="probe", name=f"Zadanie {index}",
            schedule=ScheduleSpec(every="1h").new(now=now), catch_up="latest",
            retry=RetryPolicy(1, 30.0), timeout_seconds=None, params={"n": index}, at=now,
        )
        owner.attach_task(task.id)
        definitions.append(task)
    recorded += _save(store, [*owners, *definitions])
    batch: list[TaskRun] = []
    pending = 0
    occurrence = 0
    while recorded + pending < events:
        task = definitions[occurrence % tasks]
        run = TaskRun(task_id=task.id, company=task.company, kind=task.kind,
                      scheduled_for=FIRST_OCCURRENCE + timedelta(minutes=occurrence),
                      manual=False, max_attempts=1)
        if occurrence % 50 == 49:
            run.skip("task disabled", station)
        else:
            run.start(station, 4242, session)
            if occurrence % 10 == 9:
                run.fail_attempt("RuntimeError", f"failure {occurrence}", 0.5, False, None)
            else:
                run.succeed({"done": occurrence % 7}, 0.01 * (occurrence % 13))
        batch.append(run)
        pending += len(run.pending_events)
        occurrence += 1
        if pending >= EVENTS_PER_TRANSACTION:
            recorded += _save(store, batch)
            batch, pending = [], 0
    return recorded + (_save(store, batch) if batch else 0)


def _save(store: Any, aggregates: list[Any]) -> int:
    count = sum(len(aggregate.pending_events) for aggregate in aggregates)
    store.save(*aggregates)
    return count
