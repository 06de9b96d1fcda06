"""The dashboard: server-rendered pages over the same application services as the CLI
and the ``/api`` endpoints; it adds no rules of its own.

Pages need the API token, kept after ``/login`` in the HttpOnly, SameSite=Strict cookie
:data:`~engine.service_host.api.auth.TOKEN_COOKIE`; without it they redirect to the login.
Buttons are POST forms, refused (403) unless they carry the page's CSRF value (an HMAC of
the token) and, when the browser names one, come from this origin. Each answers with a
redirect (POST/redirect/GET) and a one-line message in a short-lived cookie: what was done,
or the service's refusal as the CLI prints it. Times are shown in Europe/Warsaw time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast, get_args
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engine.domain.errors import SoaError
from engine.domain.task_run import RUN_STATUSES
from engine.ports.read_models import LogStatus
from engine.service_host.api.auth import TOKEN_COOKIE, is_authenticated, token_matches

if TYPE_CHECKING:
    from engine.application.tasks import TaskSummary
    from engine.ports.read_models import LogEntry, RunView
    from engine.service_host.bootstrap import ApplicationServices

HERE = Path(__file__).resolve().parent
ZONE = ZoneInfo("Europe/Warsaw")
PAGE_SIZE = 50
LANGUAGES = ("pl", "en")
LANG_COOKIE = "soa_lang"
FLASH_COOKIE = "soa_flash"
SESSION_SECONDS = 12 * 3600
"""How long the login cookie lasts: a working day."""
TASK_ACTIONS = ("run-now", "pause", "resume")
LOG_STATUSES: tuple[str, ...] = get_args(LogStatus)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

T = TypeVar("T")


class LoginRequired(Exception):
    """Signals a dashboard page asked for without a valid token."""


def require_login(request: Request) -> None:
    """The dependency of every page but the login's.

    :raises LoginRequired: without the token (answered with a redirect to the login page).
    """
    if not is_authenticated(request):
        raise LoginRequired


public = APIRouter(include_in_schema=False)
router = APIRouter(include_in_schema=False, dependencies=[Depends(require_login)])


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages and its ``/static`` files from ``app``."""
    app.include_router(public)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequired, _to_login)


def _to_login(request: Request, error: Exception) -> Response:
    """To the login, and after it back to the page asked for (a form's post: the overview)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = target if request.method == "GET" else "/"
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def services_of(request: Request) -> ApplicationServices:
    return request.app.state.services  # type: ignore[no-any-return]


# -- rendering ---------------------------------------------------------------------------


def local_time(moment: datetime | None) -> str:
    """``moment`` as Warsaw wall-clock time, to the second."""
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def detail_text(value: Any) -> str:
    """A field of an event for people: instants in Warsaw time, other values as JSON."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value) if "T" in value else None
        except ValueError:
            moment = None
        return local_time(moment) if moment and moment.tzinfo else value
    return json.dumps(value, ensure_ascii=False)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.filters["detail"] = detail_text
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    return env


templates = Jinja2Templates(env=_environment())


def csrf_value(request: Request) -> str:
    """The value every form of the dashboard carries: an HMAC of the token."""
    key = str(request.app.state.token).encode()
    return hmac.new(key, b"soa-dashboard-form", hashlib.sha256).hexdigest()


def language(request: Request) -> str:
    """The language of the status text: ``?lang=``, else the cookie, else the setting's."""
    for given in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if given in LANGUAGES:
            return str(given)
    return str(request.app.state.services.settings.lang)


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
    """The page ``template`` with ``context``, the pending message (then forgotten) and
    the language switch."""
    lang = language(request)

    def url_with(**changes: Any) -> str:
        params = {**request.query_params, **changes}
        kept = {key: value for key, value in params.items() if value not in (None, "")}
        return request.url.path + ("?" + urlencode(kept) if kept else "")

    response = templates.TemplateResponse(request, template, {
        "lang": lang, "flash": _read_flash(request), "csrf": csrf_value(request),
        "signed_in": is_authenticated(request), "url_with": url_with,
        "station": request.app.state.services.settings.station, "nav": "", **context,
    }, status_code=code, headers=SECURITY_HEADERS)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="strict")
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                            httponly=True)
    return response


def attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """What ``call`` returns, or the engine's one-line refusal instead."""
    try:
        return call(), None
    except SoaError as error:
        return None, error.message


# -- messages and forms ------------------------------------------------------------------


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        return {"kind": "error" if data["kind"] == "error" else "ok", "text": str(data["text"])}
    except (ValueError, KeyError, TypeError):
        return None


def redirect(request: Request, to: str, *, text: str = "", error: bool = False) -> Response:
    """303 to the local path ``to`` with the one-line message ``text`` for the next page."""
    response = RedirectResponse(safe_next(to), status_code=303)
    if text:
        payload = json.dumps({"kind": "error" if error else "ok", "text": text})
        value = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="strict")
    return response


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def check_form(request: Request, csrf: str) -> Response | None:
    """None for a form of this dashboard, else the 403 page refusing it."""
    if same_origin(request) and hmac.compare_digest(csrf.encode(), csrf_value(request).encode()):
        return None
    return render(request, "message.html", 403, title="Form refused", message=(
        "This form was not sent by this dashboard's page; reload the page and try again."))


# -- login -------------------------------------------------------------------------------


@public.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if is_authenticated(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", next=safe_next(next), error=None)


@public.post("/login")
def login(request: Request, token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    if not same_origin(request):
        return render(request, "login.html", 403, next="/",
                      error="This form was not sent by this dashboard's page.")
    if not token_matches(token.strip(), request.app.state.token):
        return render(request, "login.html", 401, next=safe_next(next),
                      error="That is not the API token. 'soa api-token' prints it.")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@public.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    refused = check_form(request, csrf)
    if refused is not None:
        return refused
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="strict")
    return response


# -- the overview and the task buttons ---------------------------------------------------


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


@router.post("/tasks/{task}/{action}")
def task_action(request: Request, task: str, action: str,
                csrf: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/",
                ) -> Response:
    """Run now, pause or resume the task, as ``soa tasks run-now|pause|resume`` does."""
    refused = check_form(request, csrf)
    if refused is not None:
        return refused
    services = services_of(request)
    if action not in TASK_ACTIONS:
        return render(request, "message.html", 404, title="Not found",
                      message=f"There is no task action {action!r}.")
    try:
        if action == "run-now":
            run_id = services.runs.run_now(task)
            text = f"run {run_id} recorded; the running host starts it"
        else:
            done = f"{action}d"
            changed = services.tasks.set_task_state(task, action)
            name = services.tasks.task(task).task.name
            text = f"task {name!r} {done}" if changed else f"task {name!r} was already {done}"
    except SoaError as error:
        return redirect(request, next, text=error.message, error=True)
    return redirect(request, next, text=text)


# -- runs --------------------------------------------------------------------------------


def offset_of(text: str | None) -> int:
    try:
        return max(0, min(int(text or 0), 10_000_000))
    except ValueError:
        return 0


def _task_names(services: ApplicationServices) -> dict[str, str]:
    names, _ = attempt(services.tasks.tasks)
    return {str(summary.task.id): summary.task.name for summary in names or []}


@router.get("/runs")
def runs(request: Request, task: str = "", status: str = "",
         offset: str = "") -> Response:
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


# -- logs --------------------------------------------------------------------------------


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


# -- a company's data --------------------------------------------------------------------


@router.get("/companies/{name:path}")
def company(request: Request, name: str) -> Response:
    services = services_of(request)
    invoices, invoices_error = attempt(lambda: services.erp.invoices(name))
    outbox, outbox_error = attempt(lambda: services.erp.outbox(name))
    errors = list(dict.fromkeys(e for e in (invoices_error, outbox_error) if e))
    return render(request, "company.html", name=name, invoices=invoices or [],
                  outbox=outbox or [], errors=errors)
