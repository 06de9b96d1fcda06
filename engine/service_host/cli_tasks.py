"""``soa companies``, ``soa tasks`` and ``soa runs``: thin commands over TaskService."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from engine.domain.errors import DomainError
from engine.domain.task_definition import CATCH_UP_POLICIES
from engine.domain.task_run import RUN_STATUSES
from engine.projections.runs import RunView
from engine.projections.tasks import TaskView
from engine.scheduling.occurrences import next_occurrence
from engine.scheduling.schedule import Schedule, parse_schedule
from engine.service_host.cli_support import EXIT_OK, context, print_json

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration such as 30s, 10m, 2h or 1d, in seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        match = DURATION.match(str(value))
        if not match or float(match[1]) <= 0:
            self.fail(f"{value!r} is not a duration; expected a positive number with s, m, h "
                      "or d, such as 30s, 10m or 2h", param, ctx)
        return float(match[1]) * UNIT_SECONDS[match[2]]


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DomainError(f"--param {pair!r} is not KEY=VALUE")
        params[key.strip()] = value
    return params


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


# -- companies ----------------------------------------------------------------------------

@click.group()
def companies() -> None:
    """Company databases the automatic operations act on."""


@companies.command("add")
@click.argument("name")
@click.option("--db", "database_url", help="The company database URL [default: a SQLite file "
              "under SOA_HOME/companies].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def companies_add(name: str, database_url: str | None, as_json: bool) -> int:
    """Register the company NAME."""
    company = context().tasks.add_company(name, database_url)
    if as_json:
        print_json(company.as_json())
    else:
        click.echo(f"company {company.name} added ({company.database_url})")
    return EXIT_OK


@companies.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def companies_list(as_json: bool) -> int:
    """List the companies."""
    listed = context().tasks.companies()
    if as_json:
        print_json([company.as_json() for company in listed])
        return EXIT_OK
    table = Table("name", "database", "tasks", "added")
    for company in listed:
        table.add_row(company.name, company.database_url, str(company.task_count),
                      _local(company.added_at))
    Console(width=160).print(table)
    return EXIT_OK


@companies.command("remove")
@click.argument("name")
def companies_remove(name: str) -> int:
    """Remove the company NAME (refused while tasks use it)."""
    context().tasks.remove_company(name)
    click.echo(f"company {name.strip()} removed")
    return EXIT_OK


# -- tasks --------------------------------------------------------------------------------

def _schedule_options(func: Any, *, editing: bool = False) -> Any:
    zone_default = "" if editing else " [default: Europe/Warsaw]"
    options = [
        click.option("--every", help="Every N seconds, minutes or hours: 30s, 5m, 2h."),
        click.option("--daily", help="Daily at HH:MM."),
        click.option("--weekly", help="Weekly on days at a time: mon,thu@07:00."),
        click.option("--monthly", help="Monthly on a day (or last) at a time: 1@06:00."),
        click.option("--cron", help="A 5-field crontab expression: '0 6 * * 1-5'."),
        click.option("--business-days/--all-days", default=None,
                     help="Only Monday to Friday without Polish public holidays, or every day."),
        click.option("--tz", help=f"Time zone of the schedule{zone_default}."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings_options(func: Any, *, editing: bool = False) -> Any:
    def default(text: str) -> str:
        return "" if editing else f" [default: {text}]"

    options = [
        click.option("--catch-up", type=click.Choice(CATCH_UP_POLICIES),
                     help="Missed occurrences after downtime: all, latest or skip"
                     f"{default('by kind')}."),
        click.option("--max-attempts", type=click.IntRange(1, 100),
                     help=f"Attempts per run{default('3')}."),
        click.option("--backoff", type=Duration(), help="First retry delay, doubling each "
                     f"time, with jitter{default('30s')}."),
        click.option("--timeout", type=Duration(), help="Cancel an attempt after this long."),
        click.option("--param", "params", multiple=True, help="A parameter of the kind: "
                     "KEY=VALUE (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def tasks() -> None:
    """Recurring automatic operations."""


@tasks.command("add")
@click.argument("kind")
@click.option("--company", required=True, help="The company it acts on.")
@click.option("--name", required=True, help="A name for people.")
@_schedule_options
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"id\": ...}.")
def tasks_add(kind: str, company: str, name: str, every: str | None, daily: str | None,
              weekly: str | None, monthly: str | None, cron: str | None,
              business_days: bool | None, tz: str | None, catch_up: str | None,
              max_attempts: int | None, backoff: float | None, timeout: float | None,
              params: tuple[str, ...], as_json: bool) -> int:
    """Define a task of KIND; print its id."""
    service = context().tasks
    schedule = parse_schedule(
        every=every, daily=daily, weekly=weekly, monthly=monthly, cron=cron,
        business_days=bool(business_days), timezone=tz or "Europe/Warsaw",
        anchor=service.clock.now().replace(microsecond=0) if every else None,
    )
    from engine.domain.task_definition import RetryPolicy

    task_id = service.add_task(
        kind, company=company, name=name, schedule=schedule, catch_up=catch_up,
        retry=RetryPolicy(max_attempts or 3, backoff or 30.0), timeout_seconds=timeout,
        params=_params(params),
    )
    if as_json:
        print_json({"id": str(task_id)})
    else:
        click.echo(str(task_id))
    return EXIT_OK


def _next_run(task: TaskView, now: datetime) -> datetime | None:
    if not task.is_active:
        return None
    return next_occurrence(Schedule.from_dict(task.schedule), max(now, task.schedule_from))


@tasks.command("list")
@click.option("--company", help="Only this company's tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_list(company: str | None, as_json: bool) -> int:
    """List the tasks."""
    service = context().tasks
    listed = service.tasks(company)
    now = service.clock.now()
    if as_json:
        print_json([
            {**task.as_json(), "next_run": _iso(_next_run(task, now))} for task in listed
        ])
        return EXIT_OK
    table = Table("id", "company", "kind", "name", "schedule", "state", "next run")
    for task in listed:
        table.add_row(str(task.id)[:8], task.company, task.kind, task.name,
                      Schedule.from_dict(task.schedule).describe(), task.state,
                      _local(_next_run(task, now)))
    Console(width=160).print(table)
    return EXIT_OK


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@tasks.command("show")
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_show(task: str, as_json: bool) -> int:
    """Show the task TASK (its id or the first 4+ characters of it)."""
    service = context().tasks
    view = service.task(task)
    data = {**view.as_json(), "next_run": _iso(_next_run(view, service.clock.now()))}
    if as_json:
        print_json(data)
        return EXIT_OK
    table = Table(show_header=False, box=None)
    data["schedule"] = Schedule.from_dict(view.schedule).describe()
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    Console(width=160).print(table)
    return EXIT_OK


@tasks.command("edit")
@click.argument("task")
@click.option("--name", help="A new name.")
@lambda func: _schedule_options(func, editing=True)
@lambda func: _settings_options(func, editing=True)
@click.option("--no-timeout", is_flag=True, help="Remove the timeout.")
def tasks_edit(task: str, name: str | None, every: str | None, daily: str | None,
               weekly: str | None, monthly: str | None, cron: str | None,
               business_days: bool | None, tz: str | None, catch_up: str | None,
               max_attempts: int | None, backoff: float | None, timeout: float | None,
               params: tuple[str, ...], no_timeout: bool) -> int:
    """Change settings of TASK; a running host picks them up within seconds."""
    service = context().tasks
    current = Schedule.from_dict(service.task(task).schedule)
    schedule = None
    if any(value is not None for value in (every, daily, weekly, monthly, cron)):
        schedule = parse_schedule(
            every=every, daily=daily, weekly=weekly, monthly=monthly, cron=cron,
            business_days=bool(business_days) if business_days is not None
            else current.business_days and every is None,
            timezone=tz or current.timezone,
            anchor=service.clock.now().replace(microsecond=0) if every else None,
        )
    elif tz is not None or business_days is not None:
        schedule = dataclasses.replace(
            current, timezone=tz or current.timezone,
            business_days=current.business_days if business_days is None else business_days,
        )
    changed = service.edit_task(
        task, name=name, schedule=schedule, catch_up=catch_up, max_attempts=max_attempts,
        backoff_seconds=backoff, timeout_seconds=timeout, clear_timeout=no_timeout,
        params=_params(params) if params else None,
    )
    click.echo("task changed" if changed else "nothing to change")
    return EXIT_OK


def _state_command(action: str, done: str) -> click.Command:
    @click.argument("task")
    def command(task: str) -> int:
        changed = context().tasks.set_task_state(task, action)
        click.echo(f"task {done}" if changed else f"task was already {done}")
        return EXIT_OK

    command.__doc__ = {
        "enable": "Enable TASK: it runs again from now on (missed occurrences are not run).",
        "disable": "Disable TASK: it does not run until enabled.",
        "pause": "Pause TASK: its runs are held until resumed.",
        "resume": "Resume TASK: occurrences missed while paused follow its catch-up policy.",
    }[action]
    return click.command(action)(command)


for _action, _done in (("enable", "enabled"), ("disable", "disabled"), ("pause", "paused"),
                       ("resume", "resumed")):
    tasks.add_command(_state_command(_action, _done))


@tasks.command("remove")
@click.argument("task")
def tasks_remove(task: str) -> int:
    """Remove TASK; its runs stay in the history."""
    context().tasks.remove_task(task)
    click.echo("task removed")
    return EXIT_OK


@tasks.command("run-now")
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"run_id\": ...}.")
def tasks_run_now(task: str, as_json: bool) -> int:
    """Run TASK now, as an occurrence of its own (after a running one of it ends)."""
    run_id = context().tasks.run_now(task)
    if as_json:
        print_json({"run_id": str(run_id)})
    else:
        click.echo(str(run_id))
    return EXIT_OK


# -- runs ---------------------------------------------------------------------------------

@click.group()
def runs() -> None:
    """Occurrences of tasks and their outcomes."""


@runs.command("list")
@click.option("--task", help="Only this task's runs (its id or a prefix).")
@click.option("--status", type=click.Choice(RUN_STATUSES), help="Only runs in this status.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_list(task: str | None, status: str | None, limit: int, as_json: bool) -> int:
    """List runs, newest first."""
    listed = context().tasks.runs(task=task, status=status, limit=limit)
    if as_json:
        print_json([run.as_json() for run in listed])
        return EXIT_OK
    Console(width=160).print(_runs_table(listed))
    return EXIT_OK


def _runs_table(listed: list[RunView]) -> Table:
    table = Table("id", "task", "kind", "company", "scheduled for", "status", "attempts",
                  "finished", "error")
    for run in listed:
        table.add_row(str(run.id)[:8], str(run.task_id)[:8], run.kind, run.company,
                      _local(run.scheduled_for) + (" (manual)" if run.manual else ""),
                      run.status, str(run.attempts), _local(run.finished_at), run.error or "")
    return table


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the event history.")
def runs_show(run: str, as_json: bool) -> int:
    """Show RUN (its id or a prefix) with its full event history."""
    view, history = context().tasks.run(run)
    if as_json:
        print_json({**view.as_json(), "history": [entry.as_json() for entry in history]})
        return EXIT_OK
    console = Console(width=160)
    console.print(_runs_table([view]))
    table = Table("time", "event", "details")
    for entry in history:
        details = ", ".join(f"{key}={value}" for key, value in entry.details.items())
        table.add_row(_local(entry.time), entry.event, details)
    console.print(table)
    return EXIT_OK
