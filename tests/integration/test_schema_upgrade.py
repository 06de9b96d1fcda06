"""A store written before a column was added is brought up to the current schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select, text, update

from engine.adapters.schema import SCHEMA_VERSION, schema_version
from tests.support import PASSWORD, open_services


def test_a_version_1_store_gains_the_api_url_column_and_keeps_its_rows(
    soa_home: Path, database_url: str | None
) -> None:
    services = open_services(soa_home, database_url, "BIURO")
    services.service.set_account("FIRMA\\soa", PASSWORD)
    session = services.service.begin_host_session(4242, "vm", "http://127.0.0.1:9999")
    engine = services.sql_engine
    assert services.service.status().api_url == "http://127.0.0.1:9999"
    # Make it a store of version 1: no api_url column.
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE soa_service_view DROP COLUMN api_url"))
        connection.execute(update(schema_version).values(version=1))
    services.close()

    reopened = open_services(soa_home, database_url, "BIURO")
    columns = {column["name"] for column in inspect(reopened.sql_engine).get_columns(
        "soa_service_view")}
    assert "api_url" in columns
    with reopened.sql_engine.connect() as connection:
        assert connection.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION
    view = reopened.service.view()
    assert view.session_id == session and view.pid == 4242 and view.account == "FIRMA\\soa"
    assert view.api_url is None  # the column is new; a rebuild brings it back from the events
    reopened.service.rebuild_projections()
    assert reopened.service.view().api_url == "http://127.0.0.1:9999"
    reopened.close()
