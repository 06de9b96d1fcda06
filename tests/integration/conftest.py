"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.simulators.partners import PartnerSimulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[PartnerSimulator]:
    """The partner simulator on loopback, one per test module (tests reset it)."""
    with PartnerSimulator(0, seed=11) as started:
        yield started
