"""The log list: one entry per operation of the service, kept for the retention period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from engine.adapters.schema import log_entries
from engine.domain.service_configuration import ServiceConfiguration
from engine.domain.station_ownership import StationOwnership
from engine.domain.task_definition import MISSED_COUNT_LIMIT, TaskDefinition
from engine.domain.task_run import TaskRun
from engine.ports.read_models import LogStatus
from engine.projections.runner import NumberedEvent, Projection

WARNINGS_SHOWN = 5
"""A log entry lists at most this many of a run's warnings."""
RUN_OUTCOMES = (TaskRun.Succeeded, TaskRun.Failed, TaskRun.Abandoned, TaskRun.Skipped)
COMPANY_EVENTS = (*RUN_OUTCOMES, TaskDefinition.CatchUpApplied)
LOGGED_EVENTS: tuple[type[Any], ...] = (
    *COMPANY_EVENTS, ServiceConfiguration.Event, StationOwnership.Event,
)
"""The classes of every event :func:`_describe` may describe."""


def _describe_run_outcome(event: Any) -> tuple[LogStatus, str] | None:
    """Return the status and message of a run outcome event, if ``event`` is one."""
    match event:
        case TaskRun.Succeeded():
            done = ", ".join(f"{name}={count}" for name, count in sorted(event.counts.items()))
            text = (
                f"Run succeeded on attempt {event.attempt} in {event.duration_seconds:.2f} s: "
                f"{done or 'nothing to do'}"
            )
            warnings = list(getattr(event, "warnings", ()) or ())
            if not warnings:
                return "ok", text
            shown = "; ".join(warnings[:WARNINGS_SHOWN])
            more = len(warnings) - WARNINGS_SHOWN
            return "warning", f"{text}; warnings: {shown}" + (
                f" (and {more} more)" if more > 0 else "")
        case TaskRun.Failed():
            return "error", (
                f"Run failed after {event.attempts} attempt(s): {event.error_class}: "
                f"{event.error_message}"
            )
        case TaskRun.Abandoned() if event.final:
            return "error", f"Run abandoned on attempt {event.attempt}: {event.reason}"
        case TaskRun.Skipped():
            return "warning", f"Run skipped: {event.reason}"
        case TaskDefinition.CatchUpApplied():
            limit = " (the limit on replayed occurrences cut the rest)" if event.bounded else ""
            missed = (
                f"more than {MISSED_COUNT_LIMIT}" if event.missed > MISSED_COUNT_LIMIT
                else str(event.missed)
            )
            return ("warning" if event.bounded else "ok"), (
                f"Catch-up ({event.policy}): {missed} missed occurrence(s), "
                f"{event.replayed} run{limit}"
            )
    return None


def _describe(event: Any) -> tuple[str, LogStatus, str] | None:
    """Return the operation, status and message that ``event`` adds to the log, if any."""
    outcome = _describe_run_outcome(event)
    if outcome is not None:
        return event.kind, outcome[0], outcome[1]
    match event:
        case ServiceConfiguration.Configured():
            return "configured", "ok", f"Service configured with account {event.account}"
        case ServiceConfiguration.AccountChanged():
            return (
                "account_changed", "ok",
                f"Account changed from {event.previous_account} to {event.account}",
            )
        case ServiceConfiguration.LogRetentionChanged():
            return (
                "log_retention_changed", "ok",
                f"Log retention changed from {event.previous_days} to {event.days} days",
            )
        case StationOwnership.Assigned() if event.previous_station is not None:
            return (
                "moved", "ok",
                f"Service moved from station {event.previous_station} to station {event.station}",
            )
        case StationOwnership.Started():
            return "started", "ok", f"Service started (process {event.pid} on {event.host})"
        case StationOwnership.Stopped():
            return "stopped", "ok", "Service stopped"
        case StationOwnership.Crashed():
            heartbeat = event.last_heartbeat or "never"
            return (
                "crashed", "error",
                f"Host process {event.pid} ended without stopping the service "
                f"(last heartbeat: {heartbeat})",
            )
        case StationOwnership.LeaseLost():
            return (
                "lease_lost", "warning",
                f"Host process {event.pid} lost its lease (the service is now on station "
                f"{event.owner or 'none'}) and stopped itself",
            )
    return None


class LogList(Projection):
    """``soa_log_entries``: rows older than the retention are deleted and never shown."""

    name = "log_list"
    tables = (log_entries,)

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        rows = []
        for notification_id, event in events:
            if not isinstance(event, LOGGED_EVENTS):  # most events are not logged
                continue
            described = _describe(event)
            if described is not None:
                operation, status, message = described
                is_run = isinstance(event, RUN_OUTCOMES)
                has_company = isinstance(event, COMPANY_EVENTS)
                rows.append({
                    "notification_id": notification_id, "time": event.timestamp,
                    "station": event.station, "operation": operation, "status": status,
                    "message": message, "company": event.company if has_company else None,
                    "run_id": str(event.originator_id) if is_run else None,
                })
        if rows:
            connection.execute(insert(log_entries), rows)
