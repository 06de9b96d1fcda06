"""The domain: aggregates and value objects of the service.

Imports only the standard library, ``eventsourcing.domain`` and the schedule value object
(:mod:`engine.scheduling.schedule`); never adapters, projections or the service host.
Names are loaded on first use.
"""

from __future__ import annotations

from engine.lazy_exports import lazy_exports as _lazy_exports

_WHERE = {
    "ServiceAccount": "account",
    "Company": "company",
    "company_id": "company",
    "ConflictError": "errors",
    "DomainError": "errors",
    "NotFoundError": "errors",
    "NotPermittedError": "errors",
    "SoaError": "errors",
    "LogRetention": "log_retention",
    "ServiceConfiguration": "service_configuration",
    "StationName": "station",
    "StationOwnership": "station_ownership",
    "status_text": "status_texts",
    "RetryPolicy": "task_definition",
    "TaskDefinition": "task_definition",
    "TaskRun": "task_run",
    "run_id_for": "task_run",
}

__all__, __getattr__ = _lazy_exports(__name__, _WHERE)
