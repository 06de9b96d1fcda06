"""The ``/api`` endpoints: each parses its request, calls one application service (the
same the CLI calls) and returns its JSON (the same the CLI prints with ``--json``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from engine.domain.errors import NotFoundError
from engine.ports.read_models import LogStatus
from engine.scheduling.schedule import ScheduleSpec
from engine.service_host.api.auth import require_token
from engine.service_host.api.status_cache import StatusCache

if TYPE_CHECKING:
    from engine.service_host.bootstrap import ApplicationServices

MAX_PAGE = 1000
NEXT_OFFSET_HEADER = "X-Next-Offset"
"""Set on a page of a list when more entries follow: the ``offset`` of the next page."""




class ErrorBody(BaseModel):
    """Every refusal: one line that says what is wrong and what is allowed."""

    error: str


class FieldError(BaseModel):
    field: str = Field(description="Where: body.days, query.limit, ...")
    message: str


class InvalidBody(ErrorBody):
    """A refusal; for a request that does not fit the schema, one entry per bad field."""

    fields: list[FieldError] = Field(default_factory=list)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "Another station's (the service runs there)."},
    404: {"model": ErrorBody, "description": "No such company, task or run."},
    409: {"model": ErrorBody, "description": "Not now (already so, in use, changed meanwhile)."},
    422: {"model": InvalidBody, "description": "Refused by a rule, or malformed."},
    503: {"model": ErrorBody, "description": "The database cannot be used."},
}

health = APIRouter(tags=["health"])
api = APIRouter(prefix="/api", dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many, newest first.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Skip this many newest.")]


def services(request: Request) -> ApplicationServices:
    return request.app.state.services  # type: ignore[no-any-return]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_text(value: object) -> object:
    """Refuse numbers, and text that reads as one (``1e-9``, ``-12.5``), which pydantic
    would take as Unix times: the API speaks ISO 8601."""
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        raise ValueError("is not an ISO 8601 date and time, such as 2026-12-31T06:00:00+01:00")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
"""An ISO 8601 instant with its time zone (``Z`` or an offset)."""


def page(response: Response, items: list[Any], limit: int, offset: int) -> list[Any]:
    """The first ``limit`` of ``items`` (fetched one more than asked for), with the next
    page's offset in a header when there is one."""
    if len(items) > limit:
        response.headers[NEXT_OFFSET_HEADER] = str(offset + limit)
    return items[:limit]


# -- health, status, logs, configuration ------------------------------------------------


@health.get("/api/health")
def get_health(request: Request) -> dict[str, Any]:
    """Whether the API answers (no token needed)."""
    return {"status": "ok", "station": request.app.state.services.settings.station}


@api.get("/status")
async def get_status(
    request: Request,
    station: Annotated[str | None, Query(max_length=64, description="The station asking.")]
    = None,
    lang: Annotated[Literal["pl", "en"] | None, Query()] = None,
) -> dict[str, Any]:
    """The same JSON as ``soa status --json``, the text as ``station`` sees it; at most
    a quarter of a second old (the ERP asks many times a minute)."""
    cache: StatusCache = request.app.state.status_cache
    return await cache.status(lang or services(request).settings.lang, station)


@api.get("/logs")
def get_logs(
    request: Request,
    response: Response,
    since: Annotated[Instant | None, Query(description="Only entries from then on.")] = None,
    status_: Annotated[LogStatus | None, Query(alias="status")] = None,
    operation: Annotated[str | None, Query(max_length=64)] = None,
    company: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Log entries, newest first, as ``soa logs --json``; header ``X-Next-Offset`` when
    more follow."""
    entries = services(request).service.logs(
        since=since, status=status_, operation=operation, company=company,
        limit=limit + 1, offset=offset,
    )
    return page(response, [entry.as_json() for entry in entries], limit, offset)


@api.get("/config")
def get_config(request: Request) -> dict[str, Any]:
    """The configuration as ``soa configure show --json`` (no password: none is kept)."""
    return services(request).service.configuration().as_json()


class LogRetention(StrictModel):
    days: int = Field(ge=5, le=30, description="Keep log entries this many days (5 to 30).")


@api.put("/config/log-retention")
def put_log_retention(request: Request, body: LogRetention) -> dict[str, Any]:
    """Allowed from any station; older entries are deleted at once."""
    changed = services(request).service.set_log_retention(body.days)
    return {"log_retention_days": body.days, "changed": changed}


class AccountChange(StrictModel):
    account: str = Field(max_length=300, description="DOMAIN\\user or COMPUTER\\user.")
    password: str = Field(max_length=1000, repr=False,
                          description="Checked, never stored or logged.")
    station: str | None = Field(default=None, max_length=64,
                                description="The station giving the command (default: "
                                "the host's).")


@api.put("/config/account")
def put_account(request: Request, body: AccountChange) -> dict[str, Any]:
    """Set the account the service runs under, with the CLI's station rules."""
    service = services(request).service_for(body.station)
    service.check_can_set_account(body.account)
    service.set_account(body.account, body.password)
    return {"account": service.view().account, "station": service.station}


# -- companies and tasks -----------------------------------------------------------------


@api.get("/companies")
def get_companies(request: Request) -> list[dict[str, Any]]:
    return [company.as_json() for company in services(request).tasks.companies()]


class NewCompany(StrictModel):
    name: str = Field(max_length=200)
    database_url: str | None = Field(default=None, max_length=2000)


@api.post("/companies", status_code=status.HTTP_201_CREATED)
def post_company(request: Request, body: NewCompany) -> dict[str, Any]:
    return services(request).tasks.add_company(body.name, body.database_url).as_json()


@api.delete("/companies/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_company(request: Request, name: str) -> None:
    services(request).tasks.remove_company(name)


class ScheduleFields(StrictModel):
    every: str | None = Field(default=None, max_length=50, examples=["30m"])
    daily: str | None = Field(default=None, max_length=200, examples=["06:00"])
    weekly: str | None = Field(default=None, max_length=200, examples=["mon,fri 07:30"])
    monthly: str | None = Field(default=None, max_length=200, examples=["1,15 06:00"])
    cron: str | None = Field(default=None, max_length=200, examples=["0 6 * * 1-5"])
    business_days: bool | None = None
    timezone: str | None = Field(default=None, max_length=100, examples=["Europe/Warsaw"])

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.model_dump())


Seconds = Annotated[float, Field(gt=0, le=10_000_000)]


class NewTask(StrictModel):
    kind: str = Field(max_length=64)
    company: str = Field(max_length=200)
    name: str = Field(max_length=200)
    schedule: ScheduleFields
    catch_up: str | None = Field(default=None, max_length=20)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    backoff_seconds: Seconds | None = None
    timeout_seconds: Seconds | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class TaskChange(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    schedule: ScheduleFields | None = None
    catch_up: str | None = Field(default=None, max_length=20)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    backoff_seconds: Seconds | None = None
    timeout_seconds: Seconds | None = Field(default=None, description="null clears it.")
    params: dict[str, Any] | None = None


@api.get("/tasks")
def get_tasks(
    request: Request, company: Annotated[str | None, Query(max_length=200)] = None
) -> list[dict[str, Any]]:
    return [summary.as_json() for summary in services(request).tasks.tasks(company)]


@api.post("/tasks", status_code=status.HTTP_201_CREATED)
def post_task(request: Request, body: NewTask) -> dict[str, Any]:
    tasks = services(request).tasks
    task_id = tasks.add_task(
        body.kind, company=body.company, name=body.name, schedule=body.schedule.spec(),
        catch_up=body.catch_up, max_attempts=body.max_attempts,
        backoff_seconds=body.backoff_seconds, timeout_seconds=body.timeout_seconds,
        params=body.params,
    )
    return tasks.task(str(task_id)).as_json()


@api.get("/tasks/{task}")
def get_task(request: Request, task: str) -> dict[str, Any]:
    """The task (its id or a prefix of at least 4 characters)."""
    return services(request).tasks.task(task).as_json()


@api.patch("/tasks/{task}")
def patch_task(request: Request, task: str, body: TaskChange) -> dict[str, Any]:
    """Change the fields given; ``"timeout_seconds": null`` clears the timeout."""
    tasks = services(request).tasks
    given = body.model_fields_set
    changed = tasks.edit_task(
        task, name=body.name, schedule=body.schedule.spec() if body.schedule else None,
        catch_up=body.catch_up, max_attempts=body.max_attempts,
        backoff_seconds=body.backoff_seconds, timeout_seconds=body.timeout_seconds,
        clear_timeout="timeout_seconds" in given and body.timeout_seconds is None,
        params=body.params,
    )
    return {**tasks.task(task).as_json(), "changed": changed}


@api.delete("/tasks/{task}", status_code=status.HTTP_204_NO_CONTENT)
def delete_task(request: Request, task: str) -> None:
    services(request).tasks.remove_task(task)


class RunNow(StrictModel):
    as_of: Instant | None = Field(
        default=None, description="The instant the operation acts as of (with a zone)."
    )


@api.post("/tasks/{task}/run", status_code=status.HTTP_202_ACCEPTED)
def post_run_now(
    request: Request, task: str, body: Annotated[RunNow | None, Body()] = None
) -> dict[str, Any]:
    """Record a run due now; the running host starts it. Returns its id."""
    run_id = services(request).runs.run_now(task, as_of=body.as_of if body else None)
    return {"run_id": str(run_id)}


def _task_state(request: Request, task: str, action: str) -> dict[str, Any]:
    tasks = services(request).tasks
    changed = tasks.set_task_state(task, action)
    return {**tasks.task(task).as_json(), "changed": changed}


@api.post("/tasks/{task}/pause")
def post_pause(request: Request, task: str) -> dict[str, Any]:
    return _task_state(request, task, "pause")


@api.post("/tasks/{task}/resume")
def post_resume(request: Request, task: str) -> dict[str, Any]:
    return _task_state(request, task, "resume")


@api.post("/tasks/{task}/enable")
def post_enable(request: Request, task: str) -> dict[str, Any]:
    return _task_state(request, task, "enable")


@api.post("/tasks/{task}/disable")
def post_disable(request: Request, task: str) -> dict[str, Any]:
    return _task_state(request, task, "disable")


# -- runs --------------------------------------------------------------------------------

@api.get("/runs")
def get_runs(
    request: Request,
    response: Response,
    task: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Runs, newest first, as ``soa runs list --json``."""
    listed = services(request).runs.runs(task=task, status=status_, limit=limit + 1,
                                         offset=offset)
    return page(response, [run.as_json() for run in listed], limit, offset)


@api.get("/runs/{run}")
def get_run(request: Request, run: str) -> dict[str, Any]:
    """The run with its event history, as ``soa runs show --json``."""
    view, history = services(request).runs.run(run)
    return {**view.as_json(), "history": [entry.as_json() for entry in history]}


# -- company data of the operations ------------------------------------------------------


@api.get("/companies/{company}/invoices")
def get_invoices(request: Request, company: str) -> list[dict[str, Any]]:
    return [invoice.as_json() for invoice in services(request).erp.invoices(company)]


@api.get("/companies/{company}/service-orders")
def get_service_orders(request: Request, company: str) -> list[dict[str, Any]]:
    return [order.as_json() for order in services(request).erp.service_orders(company)]


@api.get("/companies/{company}/dunning-history")
def get_dunning_history(request: Request, company: str) -> list[dict[str, Any]]:
    return [entry.as_json() for entry in services(request).erp.dunning_history(company)]


@api.get("/companies/{company}/outbox")
def get_outbox(
    request: Request, company: str,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
) -> list[dict[str, Any]]:
    return [entry.as_json() for entry in services(request).erp.outbox(company, status_)]


class PreviewRequest(StrictModel):
    kind: str = Field(max_length=64, examples=["recurring_invoices"])
    as_of: Instant | None = None
    params: dict[str, Any] = Field(default_factory=dict)


@api.post("/companies/{company}/preview")
def post_preview(request: Request, company: str, body: PreviewRequest) -> list[dict[str, Any]]:
    """What a run of ``kind`` as of ``as_of`` would do, as ``soa erp preview --json``;
    writes nothing."""
    return services(request).erp.preview(company, body.kind, as_of=body.as_of,
                                         params=body.params)


@api.get("/companies/{company}/sales-orders")
def get_sales_orders(request: Request, company: str) -> list[dict[str, Any]]:
    """Customer orders, as ``soa erp sales-orders --json``."""
    return [order.model_dump(mode="json") for order in services(request).erp.sales_orders(company)]


# -- partner synchronisations --------------------------------------------------------------

PartnerName = Literal["wszystkopl", "esklep", "detal", "mobile", "xl", "hrm", "apfino"]


@api.get("/companies/{company}/sync")
def get_sync_status(request: Request, company: str) -> list[dict[str, Any]]:
    """Each configured partner's state, as ``soa sync status --json`` (never a credential)."""
    return [status.as_json() for status in services(request).sync.statuses(company)]


class SyncConfigureRequest(StrictModel):
    url: str = Field(max_length=2000, examples=["https://sklep.example.pl/api"])
    credential: str | None = Field(default=None, max_length=4000,
                                   description="Stored encrypted; never returned.")
    settings: dict[str, str] = Field(default_factory=dict)
    batch_size: int | None = Field(default=None, ge=1, le=5000)
    rate_limit: float | None = Field(default=None, gt=0, le=10_000)


@api.put("/companies/{company}/sync/{partner}")
def put_sync_configure(request: Request, company: str, partner: PartnerName,
                       body: SyncConfigureRequest) -> dict[str, Any]:
    """Set how the company reaches ``partner``, as ``soa sync configure``."""
    sync = services(request).sync
    sync.configure(company, partner, url=body.url, credential=body.credential,
                   settings=body.settings, batch_size=body.batch_size,
                   rate_limit=body.rate_limit)
    return next(status.as_json() for status in sync.statuses(company)
                if status.partner == partner)


@api.post("/companies/{company}/sync/{partner}/reset")
def post_sync_reset(request: Request, company: str, partner: PartnerName) -> dict[str, Any]:
    """Ask for a full synchronisation of ``partner`` at its next run (``soa sync reset``)."""
    services(request).sync.reset(company, partner)
    return {"partner": partner, "full_requested": True}


# -- KSeF ------------------------------------------------------------------------------------

@api.get("/companies/{company}/ksef")
def get_ksef_status(request: Request, company: str) -> dict[str, Any]:
    """The KSeF connection (never a secret), counts per KSeF status and the invoices not
    accepted yet, as ``soa ksef status --json``."""
    return services(request).ksef.status(company)


class KsefConfigureRequest(StrictModel):
    environment: Literal["TEST", "DEMO", "PROD", "URL"]
    url: str | None = Field(default=None, max_length=2000,
                            description="Base URL, only with environment URL.")
    token: str | None = Field(default=None, max_length=4000,
                              description="A KSeF token; stored encrypted, never returned.")
    certificate: str | None = Field(default=None, max_length=20_000,
                                    description="Certificate (PEM) for the XAdES login.")
    private_key: str | None = Field(default=None, max_length=20_000, description=(
        "Its unencrypted private key (PEM); stored encrypted, never returned."))
    nip: str | None = Field(default=None, max_length=13)
    since: date | None = None
    enabled: bool = True


@api.put("/companies/{company}/ksef")
def put_ksef_configure(request: Request, company: str,
                       body: KsefConfigureRequest) -> dict[str, Any]:
    """Set how the company reaches KSeF, as ``soa ksef configure``; returns the settings
    without secrets."""
    settings = services(request).ksef.configure(
        company, environment=body.environment, url=body.url, token=body.token,
        certificate_pem=body.certificate, private_key_pem=body.private_key, nip=body.nip,
        since=body.since, enabled=body.enabled)
    return settings.as_json()


@api.get("/companies/{company}/ksef/invoices/{number:path}/upo")
def get_ksef_upo(request: Request, company: str, number: str) -> Response:
    """The UPO (XML) of an accepted invoice; 404 until KSeF accepted it."""
    submission = services(request).ksef.submission(company, number)
    if submission.upo is None:
        raise NotFoundError(f"invoice {number} has no UPO yet")
    return Response(submission.upo, media_type="application/xml")


@api.post("/companies/{company}/ksef/invoices/{number:path}/reopen")
def post_ksef_reopen(request: Request, company: str, number: str) -> dict[str, Any]:
    """Send a rejected invoice again at the next run, as ``soa ksef reopen``."""
    services(request).ksef.reopen(company, number)
    return {"invoice": number, "ksef_status": "pending"}


class KsefNumberBody(StrictModel):
    ksef_number: str = Field(max_length=64, examples=["5239384994-20261203-0A1B2C3D4E5F-7A"])


@api.post("/companies/{company}/ksef/invoices/{number:path}/record")
def post_ksef_record(request: Request, company: str, number: str,
                     body: KsefNumberBody) -> dict[str, Any]:
    """Record the KSeF number of an invoice sent to KSeF another way, as
    ``soa ksef record``."""
    return services(request).ksef.record_by_hand(company, number, body.ksef_number).as_json()


@api.get("/companies/{company}/ksef/invoices/{number:path}")
def get_ksef_invoice(request: Request, company: str, number: str) -> dict[str, Any]:
    """What KSeF answered about an invoice, as ``soa ksef show --json``."""
    return services(request).ksef.submission(company, number).as_json()
