from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import Soa
from tests.e2e.ledger import Ledger
from tests.support import PASSWORD


@pytest.fixture
def soa(soa_home: Path, database_url: str | None) -> Iterator[Soa]:
    """The ``soa`` command on a fresh store, with a quick heartbeat (1 s) and lease (3 s)."""
    command = Soa(soa_home, database_url, {"SOA_HEARTBEAT_SECONDS": "1", "SOA_LEASE_SECONDS": "3"})
    yield command
    command.kill_hosts()


PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")


@pytest.fixture
def scheduling(soa: Soa) -> tuple[Soa, Ledger]:
    """The service configured on BIURO with company 'Firma A' and the probe plugin installed
    (tests/plugins on PYTHONPATH); returns the command and what the probe writes into the
    company's database."""
    soa.extra_env["PYTHONPATH"] = PLUGINS
    soa.configure("BIURO", PASSWORD)
    company = soa.json("BIURO", "companies", "add", "Firma A")
    return soa, Ledger(company["database_url"])
