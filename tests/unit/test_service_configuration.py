from __future__ import annotations

import pytest

from engine.adapters.soa_store import memory_soa_store
from engine.domain.account import InvalidAccountError
from engine.domain.log_retention import InvalidLogRetentionError
from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration


def test_first_account_configures_then_changes_are_recorded_on_the_in_memory_store() -> None:
    store = memory_soa_store()
    configuration = ServiceConfiguration()
    configuration.set_account("CORP\\svc", "BIURO")
    store.save(configuration)
    reloaded = store.repository.get(SERVICE_CONFIGURATION_ID)
    reloaded.set_account("CORP\\other", "BIURO")
    store.save(reloaded)

    # Check the events and the state rebuilt from them.
    events = store.events.get(SERVICE_CONFIGURATION_ID)
    assert [type(event).__name__ for event in events] == [
        "Created", "Configured", "AccountChanged",
    ]
    final = store.repository.get(SERVICE_CONFIGURATION_ID)
    assert final.account == "CORP\\other"
    assert final.log_retention_days == 10


def test_log_retention_defaults_to_10_and_accepts_5_to_30() -> None:
    configuration = ServiceConfiguration()
    assert configuration.log_retention_days == 10
    assert configuration.set_log_retention(5, "A") is True
    assert configuration.set_log_retention(30, "A") is True
    # Check that setting the same value records nothing.
    pending = len(configuration.collect_events())
    assert configuration.set_log_retention(30, "A") is False
    assert configuration.collect_events() == []
    assert pending == 3


@pytest.mark.parametrize("days", [4, 31, 0, -1, True, "10"])
def test_log_retention_outside_5_to_30_is_refused_without_an_event(days: object) -> None:
    configuration = ServiceConfiguration()
    configuration.collect_events()
    with pytest.raises(InvalidLogRetentionError, match="allowed are 5 to 30"):
        configuration.set_log_retention(days, "A")  # type: ignore[arg-type]
    assert configuration.collect_events() == []
    assert configuration.log_retention_days == 10


def test_malformed_account_is_refused_without_an_event() -> None:
    configuration = ServiceConfiguration()
    configuration.collect_events()
    with pytest.raises(InvalidAccountError):
        configuration.set_account("no-backslash", "A")
    assert configuration.collect_events() == []
    assert configuration.account is None
