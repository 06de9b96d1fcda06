from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from engine.adapters.soa_store import memory_soa_store
from engine.domain.company import (
    Company,
    CompanyError,
    CompanyInUseError,
    CompanyRemovedError,
    InvalidCompanyNameError,
    company_id,
)


def test_a_name_is_taken_once_case_insensitively() -> None:
    store = memory_soa_store()
    store.save(Company(name="Firma A", database_url="sqlite:///a.db"))
    assert company_id(" firma a ") == company_id("FIRMA A")
    # Check that a second company of the same name cannot be recorded.
    with pytest.raises(IntegrityError):
        store.save(Company(name="FIRMA A", database_url="sqlite:///b.db"))


def test_removal_is_refused_while_tasks_use_it() -> None:
    company = Company(name="Firma A", database_url="sqlite:///a.db")
    task = uuid4()
    company.attach_task(task)
    with pytest.raises(CompanyInUseError, match="used by 1 task"):
        company.remove()
    company.detach_task(task)
    company.remove()
    with pytest.raises(CompanyRemovedError):
        company.attach_task(uuid4())
    company.readd("sqlite:///c.db")
    assert not company.removed and company.database_url == "sqlite:///c.db"
    with pytest.raises(CompanyError, match="already exists"):
        company.readd("sqlite:///d.db")


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\tname"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidCompanyNameError):
        company_id(name)
