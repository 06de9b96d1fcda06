"""``soa replay``, ``soa history`` and ``soa export``: thin commands over the audit
service (:mod:`engine.application.audit`). DATETIME is ISO 8601; without an offset it
is Polish time."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from engine.service_host.cli_support import (
    EXIT_FAILURE,
    EXIT_OK,
    Context,
    context,
    local_time,
    new_table,
    parse_as_of,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from engine.application.audit import AuditService, HistoryView, Progress
    from engine.service_host.bootstrap import ApplicationServices

NEW_FILE = click.Path(dir_okay=False, writable=True, path_type=Path)


def audit_service(current: Context) -> AuditService:
    """The audit service of the command's store."""
    return audit_service_of(current.services)


def audit_service_of(services: ApplicationServices) -> AuditService:
    """The audit service over ``services``' store: its replays read the event table in
    bulk, rebuild into scratch SQLite files, and a big rebuild takes a second process."""
    from engine.adapters.event_log_sql import SqlEventLog, open_event_log
    from engine.adapters.event_store import EVENTS_TABLE
    from engine.application.audit import AuditService
    from engine.projections.replay import SqlReplays

    log = SqlEventLog(services.sql_engine, services.store.app.mapper, events_table=EVENTS_TABLE)
    replays = SqlReplays(services.sql_engine, log, open_log=functools.partial(
        open_event_log, services.settings.store_url, EVENTS_TABLE))
    return AuditService(
        read_models=services.read_models, runs=lambda: services.runs, store=services.store,
        replays=replays, clock=services.clock, station=services.settings.station,
        failure_warning_threshold=services.settings.failure_warning_threshold,
    )


@contextmanager
def progress_bar(description: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr, when stderr is a terminal (gone when done)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Bar("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
             TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(position: int, last: int) -> None:
            bar.update(task, completed=position, total=last)

        yield advance


@click.command()
@click.option("--check", is_flag=True, help="Compare the rebuilt tables with the live ones, "
              "row by row; exit 1 on any difference.")
@click.option("--output", type=NEW_FILE, help="Keep the rebuilt tables in this new SQLite file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def replay(check: bool, output: Path | None, as_json: bool) -> int:
    """Rebuild every projection from the event store into fresh tables (the live ones are
    not touched); with --check, print each way the live tables differ."""
    with progress_bar("replaying events") as progress:
        report = audit_service(context()).replay(check=check, output=output, progress=progress)
    if as_json:
        print_json(report.as_json())
        return EXIT_FAILURE if report.differences else EXIT_OK
    rows = sum(report.rows.values())
    kept = f"; kept in {output}" if output else ""
    if not check:
        click.echo(f"replayed {report.events} events (up to event {report.position}) into "
                   f"fresh tables: {rows} rows{kept}")
        return EXIT_OK
    for difference in report.differences:
        click.echo(difference.describe())
    checked = max((report.checked_at or {}).values(), default=report.position)
    if report.differences:
        click.echo(f"{len(report.differences)} difference(s) between the live tables and "
                   f"the replay of {report.events} events (up to event {checked}){kept}")
        return EXIT_FAILURE
    click.echo(f"the live tables match the replay of {report.events} events (up to event "
               f"{checked}): {rows} rows compared{kept}")
    return EXIT_OK


@click.command()
@click.option("--as-of", "as_of", required=True, callback=parse_as_of, metavar="DATETIME",
              help="The instant (ISO 8601; Polish time without an offset).")
@click.option("--lang", type=click.Choice(["pl", "en"]), help="Language of the status text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(as_of: datetime, lang: str | None, as_json: bool) -> int:
    """Show the configuration, ownership, companies, tasks and status text as the events
    recorded them up to DATETIME."""
    current = context()
    with progress_bar("replaying events") as progress:
        view = audit_service(current).history(as_of, lang=lang or current.settings.lang,
                                              progress=progress)
    if as_json:
        print_json(view.as_json())
    else:
        _print_history(view)
    return EXIT_OK


def _print_history(view: HistoryView) -> None:
    status = view.status
    click.echo(f"as of {local_time(view.instant)} ({view.events} events)")
    click.echo(status.text)
    running = (f"running since {local_time(status.host.since)} (process {status.host.pid})"
               if status.host else status.state.replace("_", " "))
    click.echo(f"account: {view.account or '-'}; log retention: {view.log_retention_days} "
               f"days; station: {status.station or '-'}, {running}")
    for warning in status.warnings:
        click.echo(f"warning: {warning}")
    companies = new_table("company", "id", "database", "tasks", "added")
    for company in view.companies:
        companies.add_row(company.name, str(company.id)[:8], company.database_url,
                          str(company.task_count), local_time(company.added_at))
    print_table(companies)
    tasks = new_table("task", "id", "kind", "company", "schedule", "state", "failures")
    for task in view.tasks:
        tasks.add_row(task.name, str(task.id)[:8], task.kind, task.company,
                      task.schedule.describe(), task.state, str(task.consecutive_failures))
    print_table(tasks)


@click.command()
@click.option("--since", required=True, callback=parse_as_of, metavar="DATETIME",
              help="From this instant on (ISO 8601; Polish time without an offset).")
@click.option("--until", required=True, callback=parse_as_of, metavar="DATETIME",
              help="Until before this instant.")
@click.option("--output", type=NEW_FILE, help="Write to this new file (default: stdout).")
def export(since: datetime, until: datetime, output: Path | None) -> int:
    """Print the events that happened from --since until before --until as JSON Lines:
    position, time, aggregate, event type, caused_by and fields (secrets redacted)."""
    service = audit_service(context())
    if output is None:
        service.export(_writer(sys.stdout), since=since, until=until)
        return EXIT_OK
    if output.exists():
        from engine.domain.errors import DomainError

        raise DomainError(f"{output} exists; give a new file for the export")
    with output.open("x", encoding="utf-8") as file, progress_bar("exporting") as progress:
        written = service.export(_writer(file), since=since, until=until, progress=progress)
    click.echo(f"exported {written} events to {output}")
    return EXIT_OK


def _writer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")

    return write
