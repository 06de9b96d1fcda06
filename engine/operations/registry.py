"""The registry of operation kinds: the twelve built-ins and installed plugins."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from engine.domain.errors import DomainError
from engine.domain.task_definition import CatchUp
from engine.operations.contract import Operation, OperationPorts

ENTRY_POINT_GROUP = "soa.operations"

# Built-in kinds and their default catch-up policy: recurring documents are
# all made up for; synchronisations and reminders need only the latest run.
BUILT_IN_KINDS: dict[str, CatchUp] = {
    "dunning": "latest",
    "recurring_invoices": "all",
    "recurring_orders": "all",
    "task_reminders": "latest",
    "invoice_mailing": "latest",
    "ksef_send": "latest",
    "sync_esklep": "latest",
    "sync_detal": "latest",
    "sync_mobile": "latest",
    "sync_xl": "latest",
    "sync_hrm": "latest",
    "sync_apfino": "latest",
    "sync_wszystkopl": "latest",
}
PLUGIN_DEFAULT_CATCH_UP: CatchUp = "latest"

OperationFactory = Callable[..., Operation]
"""Builds an operation: called with no argument, or with the :class:`OperationPorts`
when it takes one."""


class UnknownKindError(DomainError):
    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(
            f"operation kind {kind!r} is not known; known kinds are {', '.join(known)}"
        )


class KindNotAvailableError(DomainError):
    def __init__(self, kind: str) -> None:
        super().__init__(
            f"operation kind {kind!r} is built in but its handler is not available yet "
            "(it comes with the partner synchronisation work); it cannot be scheduled now"
        )


class InvalidParamsError(DomainError):
    """Signals task parameters that the kind's model refuses."""


class InvalidOperationError(DomainError):
    """Signals a plugin that does not fulfil the operation contract."""


class OperationRegistry:
    """Kinds by name; plugins come from the ``soa.operations`` entry points, read when a
    kind is first looked up.

    :param factories: extra kinds (built-in handlers, tests); they take precedence
        over entry points of the same name.
    :param ports: what an operation's factory receives if it takes an argument; the
        composition root gives the host's (a factory that needs them fails to build
        without).
    """

    def __init__(
        self,
        factories: Mapping[str, OperationFactory] | None = None,
        *,
        load_entry_points: bool = True,
        ports: OperationPorts | None = None,
    ) -> None:
        self._extra: dict[str, OperationFactory] = dict(factories or {})
        self._load_entry_points = load_entry_points
        self._loaded: dict[str, _Builder] | None = None
        self._ports = ports
        self._operations: dict[str, Operation] = {}

    @property
    def _factories(self) -> dict[str, _Builder]:
        """Every kind's builder: entry points first, the built-in handlers over them,
        the given factories over all."""
        if self._loaded is None:
            loaded: dict[str, _Builder] = {}
            if self._load_entry_points:
                from importlib.metadata import entry_points

                for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                    loaded[entry_point.name] = _entry_point_builder(entry_point.load)
            # A plugin cannot take a built-in kind's name: the built-in handler wins.
            for kind, target in _built_in_handlers().items():
                loaded[kind] = _entry_point_builder(_importer(target))
            for kind, factory in self._extra.items():
                loaded[kind] = _factory_builder(factory)
            self._loaded = loaded
        return self._loaded

    def kinds(self) -> list[str]:
        """Every kind name, built in or plugged in, sorted."""
        return sorted(set(BUILT_IN_KINDS) | set(self._factories))

    def get(self, kind: str) -> Operation:
        """Return the operation of ``kind``.

        :raises UnknownKindError, KindNotAvailableError, InvalidOperationError.
        """
        if kind in self._operations:
            return self._operations[kind]
        factory = self._factories.get(kind)
        if factory is None:
            if kind in BUILT_IN_KINDS:
                raise KindNotAvailableError(kind)
            raise UnknownKindError(kind, self.kinds())
        try:
            operation = factory(self._ports)
        except InvalidOperationError:
            raise
        except Exception as error:
            raise InvalidOperationError(
                f"the plugin for kind {kind!r} failed to load ({type(error).__name__}: {error})"
            ) from None
        if not isinstance(operation, Operation) or operation.kind != kind:
            raise InvalidOperationError(
                f"the plugin for kind {kind!r} does not return an operation with kind {kind!r}, "
                "params_model and run(ctx)"
            )
        self._operations[kind] = operation
        return operation

    def default_catch_up(self, kind: str) -> CatchUp:
        return BUILT_IN_KINDS.get(kind, PLUGIN_DEFAULT_CATCH_UP)

    def validate_params(self, kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``raw`` validated by the kind's model, as JSON-compatible values.

        :raises InvalidParamsError: for unknown keys or values the model refuses.
        """
        model = self.get(kind).params_model
        if model is None:
            if raw:
                raise InvalidParamsError(f"kind {kind!r} takes no parameters; got {sorted(raw)}")
            return {}
        known = {name for name, field in model.model_fields.items()} | {
            field.alias for field in model.model_fields.values() if field.alias
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidParamsError(
                f"kind {kind!r} has no parameter {', '.join(unknown)}; allowed are "
                f"{', '.join(sorted(model.model_fields)) or 'none'}"
            )
        try:
            return dict(model.model_validate(dict(raw)).model_dump(mode="json"))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "params"
            raise InvalidParamsError(
                f"parameter {where} of kind {kind!r}: {first['msg']}"
            ) from None


_Builder = Callable[[OperationPorts | None], Any]


def _built_in_handlers() -> dict[str, str]:
    from engine.operations.erp import HANDLERS as ERP_HANDLERS
    from engine.operations.sync import HANDLERS as SYNC_HANDLERS

    return {**ERP_HANDLERS, **SYNC_HANDLERS}


def _importer(target: str) -> Callable[[], Any]:
    """Imports ``module:attribute`` when called."""

    def load() -> Any:
        import importlib

        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    return load


def _factory_builder(factory: OperationFactory) -> _Builder:
    return lambda ports: _build(factory, ports)


def _entry_point_builder(load: Callable[[], Any]) -> _Builder:
    """Imports the entry point only when the kind is first used. A class or a factory
    function is called (with the ports if it takes an argument); an operation object is
    used as it is."""

    def build(ports: OperationPorts | None) -> Any:
        target = load()
        if isinstance(target, type) or (callable(target) and not hasattr(target, "run")):
            return _build(target, ports)
        return target

    return build


def _build(factory: Callable[..., Any], ports: OperationPorts | None) -> Any:
    """Call ``factory`` with no argument, or with ``ports`` if it takes one."""
    try:
        parameters = [
            parameter for parameter in inspect.signature(factory).parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            and parameter.default is parameter.empty
        ]
    except (TypeError, ValueError):  # a builtin without a signature: call it plainly
        parameters = []
    if not parameters:
        return factory()
    if len(parameters) > 1:
        raise InvalidOperationError(
            f"the operation factory {getattr(factory, '__name__', factory)!r} takes "
            f"{len(parameters)} arguments; it must take none or one (OperationPorts)"
        )
    if ports is None:
        raise InvalidOperationError(
            f"the operation factory {getattr(factory, '__name__', factory)!r} needs the "
            "host's OperationPorts, which this registry was not given"
        )
    return factory(ports)
