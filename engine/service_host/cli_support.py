"""What every ``soa`` command shares: global options, the opened engine, output helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from engine.application import ServiceApplication
from engine.service_host.bootstrap import Engine, build_engine
from engine.settings import Settings
from engine.tasks import TaskService

EXIT_OK, EXIT_FAILURE, EXIT_REFUSED = 0, 1, 2


@dataclass
class Context:
    """Global options; the engine is opened on first use."""

    overrides: dict[str, Any]
    _settings: Settings | None = None
    _engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings(**self.overrides)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings)
        return self._engine

    @property
    def app(self) -> ServiceApplication:
        return self.engine.service

    @property
    def tasks(self) -> TaskService:
        return self.engine.tasks


def context() -> Context:
    found = click.get_current_context().find_object(Context)
    assert found is not None
    return found


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
