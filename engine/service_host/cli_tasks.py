"""``soa companies``, ``soa tasks`` and ``soa runs``: thin commands over the task and run
services (they parse arguments and print; the services compute and decide)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from engine.domain.task_definition import CATCH_UP_POLICIES
from engine.domain.task_run import RUN_STATUSES
from engine.scheduling.schedule import ScheduleSpec
from engine.service_host.cli_support import (
    EXIT_OK,
    context,
    key_value_params,
    local_time,
    new_table,
    parse_as_of,
    print_fields,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from rich.table import Table

    from engine.ports.read_models import RunView

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


def _spec(every: str | None, daily: str | None, weekly: str | None, monthly: str | None,
          cron: str | None, business_days: bool | None, tz: str | None) -> ScheduleSpec:
    return ScheduleSpec(every=every, daily=daily, weekly=weekly, monthly=monthly, cron=cron,
                        business_days=business_days, timezone=tz)


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
    table = new_table("name", "database", "tasks", "added")
    for company in listed:
        table.add_row(company.name, company.database_url, str(company.task_count),
                      local_time(company.added_at))
    print_table(table)
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
    task_id = context().tasks.add_task(
        kind, company=company, name=name,
        schedule=_spec(every, daily, weekly, monthly, cron, business_days, tz),
        catch_up=catch_up, max_attempts=max_attempts, backoff_seconds=backoff,
        timeout_seconds=timeout, params=key_value_params(params),
    )
    if as_json:
        print_json({"id": str(task_id)})
    else:
        click.echo(str(task_id))
    return EXIT_OK


@tasks.command("list")
@click.option("--company", help="Only this company's tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_list(company: str | None, as_json: bool) -> int:
    """List the tasks."""
    listed = context().tasks.tasks(company)
    if as_json:
        print_json([summary.as_json() for summary in listed])
        return EXIT_OK
    table = new_table("id", "company", "kind", "name", "schedule", "state", "next run")
    for summary in listed:
        task = summary.task
        table.add_row(str(task.id)[:8], task.company, task.kind, task.name,
                      task.schedule.describe(), task.state, local_time(summary.next_run))
    print_table(table)
    return EXIT_OK


@tasks.command("show")
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_show(task: str, as_json: bool) -> int:
    """Show the task TASK (its id or the first 4+ characters of it)."""
    summary = context().tasks.task(task)
    data = summary.as_json()
    if as_json:
        print_json(data)
        return EXIT_OK
    print_fields({**data, "schedule": summary.task.schedule.describe()})
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
    spec = _spec(every, daily, weekly, monthly, cron, business_days, tz)
    changed = context().tasks.edit_task(
        task, name=name, schedule=None if spec.is_empty else spec, catch_up=catch_up,
        max_attempts=max_attempts,
        backoff_seconds=backoff, timeout_seconds=timeout, clear_timeout=no_timeout,
        params=key_value_params(params) if params else None,
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
@click.option("--as-of", callback=parse_as_of, help="Act as of this instant instead of now "
              "(ISO 8601; Polish time without an offset); recorded on the run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"run_id\": ...}.")
def tasks_run_now(task: str, as_of: datetime | None, as_json: bool) -> int:
    """Run TASK now, as an occurrence of its own (after a running one of it ends)."""
    run_id = context().runs.run_now(task, as_of=as_of)
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
    listed = context().runs.runs(task=task, status=status, limit=limit)
    if as_json:
        print_json([run.as_json() for run in listed])
        return EXIT_OK
    print_table(_runs_table(listed))
    return EXIT_OK


def _runs_table(listed: list[RunView]) -> Table:
    table = new_table("id", "task", "kind", "company", "scheduled for", "status", "attempts",
                      "finished", "error")
    for run in listed:
        table.add_row(str(run.id)[:8], str(run.task_id)[:8], run.kind, run.company,
                      local_time(run.scheduled_for) + (" (manual)" if run.manual else ""),
                      run.status, str(run.attempts), local_time(run.finished_at),
                      run.error or "")
    return table


@runs.command("show")
@click.argument("run")
@click.option("--as-of", "as_of", callback=parse_as_of, metavar="DATETIME",
              help="The run and its history as they were then (ISO 8601; Polish time "
              "without an offset).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the event history.")
def runs_show(run: str, as_of: datetime | None, as_json: bool) -> int:
    """Show RUN (its id or a prefix) with its full event history."""
    if as_of is not None:
        from engine.service_host.cli_audit import audit_service

        view, history = audit_service(context()).run_as_of(run, as_of)
    else:
        view, history = context().runs.run(run)
    if as_json:
        print_json({**view.as_json(), "history": [entry.as_json() for entry in history]})
        return EXIT_OK
    print_table(_runs_table([view]))
    table = new_table("time", "event", "details")
    for entry in history:
        details = ", ".join(f"{key}={value}" for key, value in entry.details.items())
        table.add_row(local_time(entry.time), entry.event, details)
    print_table(table)
    return EXIT_OK
