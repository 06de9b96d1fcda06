"""What every ``soa`` command shares: global options, the opened services, output."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

from engine.settings import Settings

if TYPE_CHECKING:
    from rich.table import Table

    from engine.application.erp import ErpService
    from engine.application.ksef import KsefService
    from engine.application.runs import RunService
    from engine.application.service import ServiceApplication
    from engine.application.sync import SyncService
    from engine.application.tasks import TaskService
    from engine.service_host.bootstrap import ApplicationServices

EXIT_OK, EXIT_FAILURE, EXIT_REFUSED = 0, 1, 2


@dataclass
class Context:
    """Global options; the store is opened on first use."""

    overrides: dict[str, Any]
    _settings: Settings | None = None
    _services: ApplicationServices | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings(**self.overrides)
        return self._settings

    @property
    def services(self) -> ApplicationServices:
        if self._services is None:
            from engine.service_host.bootstrap import build_services

            self._services = build_services(self.settings)
        return self._services

    @property
    def app(self) -> ServiceApplication:
        return self.services.service

    @property
    def tasks(self) -> TaskService:
        return self.services.tasks

    @property
    def runs(self) -> RunService:
        return self.services.runs

    @property
    def erp(self) -> ErpService:
        return self.services.erp

    @property
    def sync(self) -> SyncService:
        return self.services.sync

    @property
    def ksef(self) -> KsefService:
        return self.services.ksef


class LazyGroup(click.Group):
    """A command group whose subcommands in ``lazy`` (name → ``"module:attribute"``) are
    imported only when asked for, so that a command imports nothing of the others."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self._lazy.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            module, attribute = where.split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def context() -> Context:
    found = click.get_current_context().find_object(Context)
    assert found is not None
    return found


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def print_table(table: Table) -> None:
    from rich.console import Console

    Console(width=160).print(table)


def new_table(*columns: str, header: bool = True) -> Table:
    from rich.table import Table

    if header:
        return Table(*columns)
    return Table(show_header=False, box=None)


def print_fields(data: dict[str, Any]) -> None:
    """A two-column table of names and values."""
    table = new_table(header=False)
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    print_table(table)


def local_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def parse_instant(value: str, *, example: str, zone: tzinfo, zone_text: str) -> datetime:
    """``value`` in ISO 8601, in ``zone`` when it has no offset.

    :raises click.BadParameter: for anything else, naming an ``example``.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or time; expected ISO 8601 such as {example} "
            f"({zone_text} when no offset is given)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def parse_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: ``--as-of`` in ISO 8601; without an offset, Polish time."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo

    return parse_instant(value, example="2026-12-31 or 2026-12-31T06:00",
                         zone=ZoneInfo("Europe/Warsaw"), zone_text="Polish time")


def key_value_params(pairs: tuple[str, ...], option: str = "--param") -> dict[str, str]:
    """``--param KEY=VALUE`` options as a mapping.

    :raises DomainError: for an option without ``=`` or a key.
    """
    from engine.domain.errors import DomainError

    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DomainError(f"{option} {pair!r} is not KEY=VALUE")
        params[key.strip()] = value
    return params
