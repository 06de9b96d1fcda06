"""The ``soa`` command: a thin entry point over the application services.

It parses arguments, calls one use case and prints; it imports what a command needs
when the command runs, so that ``soa status`` stays quick. Exit codes: 0 done,
1 failure, 2 bad input or refused. Every refusal is one line on stderr that says what
is wrong and what is allowed; nothing is recorded then.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click
import pydantic

from engine.domain.errors import DomainError, SoaError
from engine.ports.read_models import LOG_STATUSES
from engine.ports.store import StoreUnavailableError
from engine.service_host.cli_support import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REFUSED,
    Context,
    LazyGroup,
    context,
    local_time,
    new_table,
    parse_instant,
    print_fields,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from engine.service_host.process import Outcome

LANGS = click.Choice(["pl", "en"])


@click.group(
    cls=LazyGroup,
    lazy={
        "companies": "engine.service_host.cli_tasks:companies",
        "tasks": "engine.service_host.cli_tasks:tasks",
        "runs": "engine.service_host.cli_tasks:runs",
        "erp": "engine.service_host.cli_erp:erp",
        "simulate": "engine.service_host.cli_simulate:simulate",
        "sync": "engine.service_host.cli_sync:sync",
        "ksef": "engine.service_host.cli_ksef:ksef",
        "replay": "engine.service_host.cli_audit:replay",
        "history": "engine.service_host.cli_audit:history",
        "export": "engine.service_host.cli_audit:export",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--station", help="This station's name [env SOA_STATION; default: host name].")
@click.option("--db", "database_url", help="Store URL [env SOA_DATABASE_URL; default: SQLite "
              "file under SOA_HOME].")
@click.option("--lang", type=LANGS, help="Language of the status text [env SOA_LANG; pl].")
@click.pass_context
def cli(ctx: click.Context, station: str | None, database_url: str | None,
        lang: str | None) -> None:
    """SOA Engine: the automatic operations service."""
    from engine.application.actor import acting_as, cli_actor

    overrides = {"station": station, "database_url": database_url, "lang": lang}
    current = ctx.obj = Context({key: value for key, value in overrides.items()
                                 if value is not None})
    # Events of this command record cli:<OS user>@<station> (named when first asked).
    ctx.with_resource(acting_as(lambda: cli_actor(current.settings.station)))


@cli.command()
@click.option("--lang", type=LANGS, help="Language of the text (overrides the global --lang).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(lang: str | None, as_json: bool) -> int:
    """Show whether the service is configured and running, and on which station."""
    current = context()
    result = current.app.status(lang or current.settings.lang)
    if as_json:
        print_json(result.as_json())
    else:
        click.echo(result.text)
        for warning in result.warnings:
            click.echo(f"warning: {warning}")
    return EXIT_OK


@cli.group()
def configure() -> None:
    """Configure the service (not in the cloud edition)."""


@configure.command("account")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def configure_account(name: str, password_stdin: bool) -> int:
    """Set the Windows account NAME (DOMAIN\\user or COMPUTER\\user) the service runs under.

    The password is asked for every time and never stored.
    """
    app = context().app
    app.check_can_set_account(name)
    password = _read_password(name, password_stdin)
    app.set_account(name, password)
    click.echo(f"account set to {name} on station {app.station}")
    return EXIT_OK


def _read_password(account: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise DomainError("no terminal to ask for the password on; pass it with --password-stdin")
    return str(click.prompt(f"Password for {account}", hide_input=True, default="",
                            show_default=False))


@configure.command("log-retention")
@click.argument("days", type=int)
def configure_log_retention(days: int) -> int:
    """Delete log entries older than DAYS days (5 to 30; default 10)."""
    changed = context().app.set_log_retention(days)
    click.echo(f"log retention {'set to' if changed else 'already was'} {days} days")
    return EXIT_OK


@configure.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def configure_show(as_json: bool) -> int:
    """Show the configuration (never a password: none is kept)."""
    data = context().app.configuration().as_json()
    if as_json:
        print_json(data)
    else:
        print_fields(data)
    return EXIT_OK


@cli.command("api-token")
def api_token_command() -> int:
    """Print the bearer token of the HTTP API and dashboard (made at first use)."""
    from engine.service_host.bootstrap import api_token

    click.echo(api_token(context().settings))
    return EXIT_OK


@cli.command()
def start() -> int:
    """Start the service on this station in the background; return once it runs."""
    from engine.service_host.process import start_background

    current = context()
    return _report(start_background(current.app, current.settings))


@cli.command()
def stop() -> int:
    """Stop the service running on this station; return once it has stopped."""
    from engine.service_host.process import stop_background

    current = context()
    return _report(stop_background(current.app, current.settings))


def _report(outcome: Outcome) -> int:
    """Print the outcome of a start or stop (failures on stderr); return its exit code."""
    (click.echo if outcome.exit_code == EXIT_OK else _echo_error)(outcome.message)
    return outcome.exit_code


@cli.command()
def host() -> int:
    """Run the service in the foreground (for systemd or a Windows service manager)."""
    from engine.service_host.bootstrap import host_api, scheduler_factory
    from engine.service_host.host import ServiceHost

    current = context()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logger = logging.getLogger("soa.host")
    current.app.check_can_start()
    service_host = ServiceHost(
        current.app, heartbeat_seconds=current.settings.heartbeat_seconds, logger=logger,
        refresh_seconds=current.settings.refresh_seconds,
        scheduler_factory=scheduler_factory(current.services, logger),
        api=host_api(current.services, logger),
    )
    service_host.install_signal_handlers()
    try:
        return service_host.run()
    finally:
        current.services.close()


def _parse_since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    return parse_instant(value, example="2026-11-28 or 2026-11-28T10:00:00+01:00", zone=UTC,
                         zone_text="UTC")


@cli.command()
@click.option("--since", callback=_parse_since, help="Only entries from this time on (ISO 8601).")
@click.option("--status", "status_", type=click.Choice(LOG_STATUSES), help="Only this status.")
@click.option("--operation", help="Only this operation (e.g. started, crashed).")
@click.option("--company", help="Only this company.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def logs(since: datetime | None, status_: Any, operation: str | None, company: str | None,
         limit: int, as_json: bool) -> int:
    """List what the service did, newest first (entries older than the retention are gone)."""
    entries = context().app.logs(
        since=since, status=status_, operation=operation, company=company, limit=limit
    )
    if as_json:
        print_json([entry.as_json() for entry in entries])
        return EXIT_OK
    table = new_table("time", "station", "operation", "status", "message", "company", "run id")
    for entry in entries:
        table.add_row(
            local_time(entry.time), entry.station or "", entry.operation, entry.status,
            entry.message, entry.company or "", entry.run_id or "",
        )
    print_table(table)
    return EXIT_OK


def _echo_error(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def _fail(message: str, exit_code: int) -> NoReturn:
    _echo_error(message)
    sys.exit(exit_code)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _settings_error(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    name = "SOA_" + ".".join(str(part) for part in first["loc"]).upper()
    return f"setting {name}: {first['msg']}"


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; never show a traceback for user input."""
    try:
        result = cli.main(args=argv, prog_name="soa", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        _fail(_one_line(click.ClickException(error.format_message())) + hint, EXIT_REFUSED)
    except click.Abort:
        _fail("aborted", EXIT_FAILURE)
    except click.ClickException as error:
        _fail(_one_line(error), EXIT_FAILURE)
    except DomainError as error:
        _fail(error.message, EXIT_REFUSED)
    except pydantic.ValidationError as error:
        _fail(_settings_error(error), EXIT_REFUSED)
    except StoreUnavailableError as error:
        _fail(f"the database cannot be used: {error.message}", EXIT_FAILURE)
    except SoaError as error:
        _fail(error.message, EXIT_FAILURE)
    except OSError as error:
        _fail(_one_line(error), EXIT_FAILURE)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
