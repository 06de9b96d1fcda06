"""The dashboard's pages (GET): the overview, the runs and a run, the log list and a
company's ERP data.

Contract: each page needs the login (:func:`~engine.service_host.api.dashboard.login.
require_login`) and only reads the application services, as the CLI's listing commands
do; a refusal of the service is shown on the page as its one-line message (a run that is
not found: 404). Lists come 50 a page, ``offset`` pages on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar, cast, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.domain.errors import SoaError
from engine.domain.task_run import RUN_STATUSES
from engine.ports.read_models import LogStatus
from engine.service_host.api.dashboard.login import require_login
from engine.service_host.api.dashboard.rendering import ZONE, language, render, services_of

if TYPE_CHECKING:
    from engine.application.tasks import TaskSummary
    from engine.ports.read_models import LogEntry, RunView
    from engine.service_host.bootstrap import ApplicationServices

PAGE_SIZE = 50
LOG_STATUSES: tuple[str, ...] = get_args(LogStatus)

T = TypeVar("T")

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_login)])


def attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """What ``call`` returns, or the engine's one-line refusal instead."""
    try:
        return call(), None
    except SoaError as error:
        return None, error.message


def offset_of(text: str | None) -> int:
    try:
        return max(0, min(int(text or 0), 10_000_000))
    except ValueError:
        return 0


@dataclass(frozen=True)
class TaskRow:
    summary: TaskSummary
    last_run: RunView | None
    failing: bool


def _task_rows(services: ApplicationServices) -> list[TaskRow]:
    threshold = services.settings.failure_warning_threshold
    rows = []
    for summary in services.tasks.tasks():
        latest = services.runs.runs(task=str(summary.task.id), limit=1)
        rows.append(TaskRow(summary, latest[0] if latest else None,
                            summary.task.consecutive_failures >= threshold))
    return rows


@router.get("/")
def overview(request: Request) -> Response:
    services = services_of(request)
    status, status_error = attempt(lambda: services.service.status(language(request)))
    configuration, _ = attempt(services.service.configuration)
    companies, companies_error = attempt(services.tasks.companies)
    rows, tasks_error = attempt(lambda: _task_rows(services))
    return render(request, "overview.html", nav="overview", status=status,
                  configuration=configuration, companies=companies or [], rows=rows or [],
                  errors=[e for e in (status_error, companies_error, tasks_error) if e])


def _task_names(services: ApplicationServices) -> dict[str, str]:
    names, _ = attempt(services.tasks.tasks)
    return {str(summary.task.id): summary.task.name for summary in names or []}


@router.get("/runs")
def runs(request: Request, task: str = "", status: str = "", offset: str = "") -> Response:
    services = services_of(request)
    start = offset_of(offset)
    listed, error = attempt(lambda: services.runs.runs(
        task=task.strip() or None, status=status or None, limit=PAGE_SIZE + 1, offset=start))
    return render(request, "runs.html", nav="runs", runs=(listed or [])[:PAGE_SIZE],
                  more=len(listed or []) > PAGE_SIZE, offset=start, page_size=PAGE_SIZE,
                  error=error, names=_task_names(services), task=task, status=status,
                  statuses=RUN_STATUSES)


@router.get("/runs/{run}")
def run_detail(request: Request, run: str) -> Response:
    services = services_of(request)
    found, error = attempt(lambda: services.runs.run(run))
    if found is None:
        return render(request, "message.html", 404, title="Run", message=error or "")
    view, history = found
    return render(request, "run.html", nav="runs", run=view, history=history,
                  task_name=_task_names(services).get(str(view.task_id)))


def since_of(text: str) -> datetime:
    """An instant typed in the filter: ISO 8601, in Warsaw time without an offset.

    :raises ValueError: for anything else.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=ZONE)


def _log_entries(services: ApplicationServices, since: str, status: str, operation: str,
                 company: str, offset: int) -> tuple[list[LogEntry], str | None]:
    """A page of entries (one more than shown, if there is one) or why not."""
    if status and status not in LOG_STATUSES:
        return [], f"log status {status!r} is not known; allowed are {', '.join(LOG_STATUSES)}"
    try:
        instant = since_of(since) if since.strip() else None
    except ValueError:
        return [], f"{since!r} is not a date or time; expected such as 2026-12-15T07:00"
    entries, error = attempt(lambda: services.service.logs(
        since=instant, status=cast("LogStatus | None", status or None),
        operation=operation.strip() or None, company=company.strip() or None,
        limit=PAGE_SIZE + 1, offset=offset))
    return entries or [], error


@router.get("/logs")
def logs(request: Request, since: str = "", status: str = "",
         operation: str = "", company: str = "", offset: str = "") -> Response:
    services = services_of(request)
    start = offset_of(offset)
    entries, error = _log_entries(services, since, status, operation, company, start)
    companies, _ = attempt(services.tasks.companies)
    return render(request, "logs.html", nav="logs", entries=entries[:PAGE_SIZE],
                  more=len(entries) > PAGE_SIZE, offset=start, page_size=PAGE_SIZE,
                  error=error, since=since, status=status, operation=operation,
                  company=company, companies=companies or [], statuses=LOG_STATUSES)


@router.get("/companies/{name:path}")
def company(request: Request, name: str) -> Response:
    """The company's partner synchronisations, customer orders, invoices, service orders,
    dunning history and outbox (as ``soa sync status`` and ``soa erp sales-orders|invoices|
    service-orders|dunning-history|outbox``); an unknown company's refusal once."""
    erp = services_of(request).erp
    sync, sync_error = attempt(partial(services_of(request).sync.statuses, name))
    sales_orders, sales_error = attempt(partial(erp.sales_orders, name))
    invoices, invoices_error = attempt(partial(erp.invoices, name))
    orders, orders_error = attempt(partial(erp.service_orders, name))
    dunning, dunning_error = attempt(partial(erp.dunning_history, name))
    outbox, outbox_error = attempt(partial(erp.outbox, name))
    errors = [sync_error, sales_error, invoices_error, orders_error, dunning_error,
              outbox_error]
    return render(request, "company.html", name=name, sync=sync or [],
                  sales_orders=sales_orders or [], invoices=invoices or [],
                  service_orders=orders or [], dunning=dunning or [], outbox=outbox or [],
                  errors=list(dict.fromkeys(error for error in errors if error)))
