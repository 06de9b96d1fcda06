"""Read models fed from the event log with a tracked position, in SQL tables.

Each projection applies every event exactly once: the position is advanced by a
compare-and-set in the same transaction as the projection's rows.
:class:`SqlReadModels` offers them to the application layer as the
:class:`engine.ports.ReadModels` port. Names are loaded on first use.
"""

from __future__ import annotations

from engine.lazy_exports import lazy_exports as _lazy_exports

_WHERE = {
    "CompanyList": "companies",
    "LogList": "log_list",
    "NotificationLog": "runner",
    "Projection": "runner",
    "ProjectionRunner": "runner",
    "RunList": "runs",
    "ServiceViewProjection": "service_view",
    "SqlReadModels": "read_models",
    "TaskList": "tasks",
    "PROJECTION_NAMES": "read_models",
    "all_projections": "read_models",
}

__all__, __getattr__ = _lazy_exports(__name__, _WHERE)
