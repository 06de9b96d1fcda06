"""Read models fed from the event log with a tracked position.

Each projection applies every event exactly once: the position is advanced by a
compare-and-set in the same transaction as the projection's rows.
"""

from engine.projections.log_list import LogEntry, LogList
from engine.projections.runner import Projection, ProjectionRunner
from engine.projections.service_view import ServiceView, ServiceViewProjection
from engine.projections.status_texts import status_text


def all_projections() -> list[Projection]:
    """Every read model of the engine, fed by one :class:`ProjectionRunner`."""
    from engine.projections.companies import CompanyList
    from engine.projections.runs import RunList
    from engine.projections.tasks import TaskList

    return [ServiceViewProjection(), LogList(), CompanyList(), TaskList(), RunList()]


__all__ = [
    "LogEntry",
    "LogList",
    "Projection",
    "ProjectionRunner",
    "ServiceView",
    "ServiceViewProjection",
    "all_projections",
    "status_text",
]
