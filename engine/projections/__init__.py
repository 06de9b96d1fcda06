"""Read models fed from the event log with a tracked position, in SQL tables.

Each projection applies every event exactly once: the position is advanced by a
compare-and-set in the same transaction as the projection's rows.
:class:`SqlReadModels` offers them to the application layer as the
:class:`engine.ports.ReadModels` port.
"""

from engine.projections.companies import CompanyList
from engine.projections.log_list import LogList
from engine.projections.read_models import SqlReadModels, all_projections
from engine.projections.runner import NotificationLog, Projection, ProjectionRunner
from engine.projections.runs import RunList
from engine.projections.service_view import ServiceViewProjection
from engine.projections.tasks import TaskList

__all__ = [
    "CompanyList",
    "LogList",
    "NotificationLog",
    "Projection",
    "ProjectionRunner",
    "RunList",
    "ServiceViewProjection",
    "SqlReadModels",
    "TaskList",
    "all_projections",
]
