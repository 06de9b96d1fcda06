"""PooledHttpClients: one client per name, built on first use, closed together."""

from __future__ import annotations

import threading
from importlib.metadata import PackageNotFoundError

import httpx
import pytest

from engine.adapters import http_clients
from engine.adapters.http_clients import PooledHttpClients, user_agent


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})


def pool() -> tuple[PooledHttpClients, Recorder]:
    recorder = Recorder()
    return PooledHttpClients(transport=httpx.MockTransport(recorder)), recorder


def test_one_client_per_name() -> None:
    clients, _ = pool()
    erp = clients.client("erp", base_url="https://erp.example/api/")
    assert clients.client("erp") is erp
    assert clients.client("erp", base_url="https://erp.example/api/") is erp
    assert clients.client("esklep", base_url="https://shop.example") is not erp
    clients.close()


def test_base_url_user_agent_and_timeouts_are_applied() -> None:
    clients, recorder = pool()
    client = clients.client("erp", base_url="https://erp.example/api/")
    assert client.get("orders", params={"page": 2}).json() == {"ok": True}
    [request] = recorder.requests
    assert str(request.url) == "https://erp.example/api/orders?page=2"
    assert request.headers["User-Agent"] == user_agent()
    assert user_agent().startswith("soa-engine/") and user_agent() != "soa-engine/"
    assert client.timeout == httpx.Timeout(30.0, connect=10.0)
    clients.close()


def test_timeouts_can_be_configured() -> None:
    clients = PooledHttpClients(
        timeout=httpx.Timeout(5.0), transport=httpx.MockTransport(Recorder())
    )
    assert clients.client("x").timeout == httpx.Timeout(5.0)
    clients.close()


def test_the_default_transport_has_the_pool_limits() -> None:
    clients = PooledHttpClients()
    client = clients.client("x", base_url="https://example.invalid")
    pool_ = client._transport._pool  # type: ignore[attr-defined]  # httpx 0.28 internals
    assert (pool_._max_connections, pool_._max_keepalive_connections) == (20, 10)
    clients.close()


def test_user_agent_falls_back_to_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(http_clients, "version", not_installed)
    assert user_agent() == "soa-engine/dev"


def test_close_closes_every_client_and_a_later_call_builds_a_new_one() -> None:
    clients, recorder = pool()
    erp = clients.client("erp", base_url="https://erp.example")
    shop = clients.client("shop", base_url="https://shop.example")
    clients.close()
    assert erp.is_closed and shop.is_closed
    with pytest.raises(RuntimeError):
        erp.get("/")

    again = clients.client("erp", base_url="https://erp.example")
    assert again is not erp and not again.is_closed
    assert again.get("/ping").status_code == 200
    assert str(recorder.requests[-1].url) == "https://erp.example/ping"
    clients.close()
    clients.close()  # twice is harmless


def test_a_client_closed_by_its_user_is_built_again() -> None:
    clients, _ = pool()
    first = clients.client("erp")
    first.close()
    assert clients.client("erp") is not first
    clients.close()


def test_another_base_url_for_the_same_name_is_refused() -> None:
    clients, _ = pool()
    clients.client("erp", base_url="https://erp.example")
    with pytest.raises(ValueError, match=r"'erp' was built with base_url 'https://erp\.example'"):
        clients.client("erp", base_url="https://other.example")
    clients.close()


def test_threads_asking_at_once_share_one_client() -> None:
    clients, _ = pool()
    barrier = threading.Barrier(16)
    got: list[httpx.Client] = []

    def ask() -> None:
        barrier.wait()
        got.append(clients.client("erp"))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 16 and len({id(client) for client in got}) == 1
    clients.close()
