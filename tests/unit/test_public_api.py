"""Each package's ``__all__`` is what it offers: every name resolves, none is missing."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "engine.application",
    "engine.domain",
    "engine.operations",
    "engine.ports",
    "engine.projections",
    "engine.scheduling",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_resolves_once(name: str) -> None:
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert getattr(package, attribute) is not None, attribute


@pytest.mark.parametrize("name", PACKAGES)
def test_nothing_public_is_left_out_of_all(name: str) -> None:
    package = importlib.import_module(name)
    public = {
        attribute for attribute, value in vars(package).items()
        if not attribute.startswith("_") and not isinstance(value, types.ModuleType)
        and attribute not in ("annotations", "importlib", "Any")
    }
    assert public <= set(package.__all__)
