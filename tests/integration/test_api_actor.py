"""What a request to the API records names the API client as its cause."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from engine.service_host.api.app import create_app
from tests.support import open_services

TOKEN = "actor-test-token-0123456789abcdef"


def test_events_of_an_api_request_are_caused_by_the_api_client(tmp_path: Path) -> None:
    services = open_services(tmp_path / "home", None, "BIURO")
    try:
        client = TestClient(create_app(services, token=TOKEN))
        answer = client.post("/api/companies", json={"name": "Firma X"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 201
        causes = [event.caused_by for _, event in services.store.events_after(
            0, limit=100, stop=1000)]
        assert causes == ["api:testclient@BIURO"]
    finally:
        services.close()
