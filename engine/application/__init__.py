"""The application layer: the use cases every entry point calls (the CLI, the host,
the HTTP API, an embedding program).

- :class:`ServiceApplication` (:mod:`.service`): configuration, station ownership,
  status, log list, host sessions;
- :class:`TaskService` (:mod:`.tasks`): companies and task definitions;
- :class:`RunService` (:mod:`.runs`): manual runs, run queries, and every step a host
  takes to run an occurrence exactly once;
- :class:`UnitOfWork` (:mod:`.unit_of_work`): typed loads and saves, conflict mapping;
- :class:`HostLiveness` (:mod:`.liveness`): the one place that settles a dead host;
- :mod:`.errors`: the error hierarchy.

They depend on ports (:mod:`engine.ports`), never on adapters. Names are loaded on
first use, so a command imports only the use cases it calls.
"""

from __future__ import annotations

from engine.lazy_exports import lazy_exports as _lazy_exports

_WHERE = {
    "ConcurrentChangeError": "errors",
    "CloudEditionError": "errors",
    "InvalidRequestError": "errors",
    "HostLiveness": "liveness",
    "RecordedSession": "liveness",
    "AttemptOutcome": "runs",
    "HostSession": "runs",
    "RecordedOutcome": "runs",
    "RunHistoryEntry": "runs",
    "RunResources": "runs",
    "RunService": "runs",
    "StartedAttempt": "runs",
    "ConfigurationView": "service",
    "Connection": "service",
    "HostInfo": "service",
    "ServiceApplication": "service",
    "ServiceStatus": "service",
    "TaskService": "tasks",
    "TaskSummary": "tasks",
    "UnitOfWork": "unit_of_work",
}

__all__, __getattr__ = _lazy_exports(__name__, _WHERE)
