from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from pydantic import BaseModel

from engine.operations.contract import OperationPorts, RunContext
from engine.operations.registry import (
    BUILT_IN_KINDS,
    InvalidOperationError,
    InvalidParamsError,
    OperationRegistry,
    UnknownKindError,
)
from engine.ports.host import SystemClock


class EchoParams(BaseModel):
    times: int = 1
    label: str = "x"


class Echo:
    kind = "echo"
    params_model = EchoParams

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        return {"echoed": ctx.params.times}


class Bare:
    kind = "bare"
    params_model = None

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        return None


def registry() -> OperationRegistry:
    return OperationRegistry({"echo": Echo, "bare": Bare, "liar": Bare}, load_entry_points=False)


def test_thirteen_built_in_kinds_are_known_and_schedulable() -> None:
    assert len(BUILT_IN_KINDS) == 13
    assert set(BUILT_IN_KINDS) <= set(registry().kinds())
    for kind in BUILT_IN_KINDS:
        assert registry().get(kind).kind == kind
        # every parameter has a default: a task needs no --param
        assert registry().validate_params(kind, {}) is not None
    with pytest.raises(UnknownKindError, match="known kinds are bare, dunning"):
        registry().get("nope")
    assert registry().default_catch_up("recurring_invoices") == "all"
    assert registry().default_catch_up("sync_hrm") == "latest"
    assert registry().default_catch_up("ksef_send") == "latest"


def test_params_are_validated_by_the_kind_model_and_unknown_keys_refused() -> None:
    kinds = registry()
    assert kinds.validate_params("echo", {"times": "3"}) == {"times": 3, "label": "x"}
    with pytest.raises(InvalidParamsError, match="has no parameter colour; allowed are label, times"):
        kinds.validate_params("echo", {"colour": "red"})
    with pytest.raises(InvalidParamsError, match="parameter times"):
        kinds.validate_params("echo", {"times": "many"})
    with pytest.raises(InvalidParamsError, match="takes no parameters"):
        kinds.validate_params("bare", {"a": "1"})
    assert kinds.validate_params("bare", {}) == {}


def test_a_plugin_must_return_an_operation_of_its_own_kind() -> None:
    with pytest.raises(InvalidOperationError, match="does not return an operation"):
        registry().get("liar")


class NeedsPorts:
    kind = "needs_ports"
    params_model = None

    def __init__(self, ports: OperationPorts) -> None:
        self.ports = ports

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        return None


def test_the_registry_builds_an_operation_with_the_hosts_ports_when_it_asks_for_them() -> None:
    ports = OperationPorts(clock=SystemClock(), logger=logging.getLogger("test"))
    kinds = OperationRegistry({"needs_ports": NeedsPorts, "bare": Bare},
                              load_entry_points=False, ports=ports)
    built = kinds.get("needs_ports")
    assert isinstance(built, NeedsPorts) and built.ports is ports
    assert isinstance(kinds.get("bare"), Bare)  # an operation of release 0.1: no arguments


def test_a_factory_that_needs_ports_or_too_many_arguments_is_refused_clearly() -> None:
    without_ports = OperationRegistry({"needs_ports": NeedsPorts}, load_entry_points=False)
    with pytest.raises(InvalidOperationError, match="needs the host's OperationPorts"):
        without_ports.get("needs_ports")

    def two(ports: object, extra: object) -> Bare:
        return Bare()

    greedy = OperationRegistry({"bare": two}, load_entry_points=False)
    with pytest.raises(InvalidOperationError, match="takes 2 arguments; it must take none or one"):
        greedy.get("bare")
