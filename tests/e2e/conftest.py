from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import Soa


@pytest.fixture
def soa(soa_home: Path, database_url: str | None) -> Iterator[Soa]:
    """The ``soa`` command on a fresh store, with a quick heartbeat (1 s) and lease (3 s)."""
    command = Soa(soa_home, database_url, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3"})
    yield command
    command.kill_hosts()
