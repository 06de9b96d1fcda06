"""Pooled ``httpx`` clients, one per name, shared by every run of the host."""

from __future__ import annotations

import threading
from importlib.metadata import PackageNotFoundError, version

import httpx

from engine.ports.outbound import HttpClients

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)


def user_agent() -> str:
    """``soa-engine/<installed version>``, or ``soa-engine/dev`` when not installed."""
    try:
        return f"soa-engine/{version('soa-engine')}"
    except PackageNotFoundError:
        return "soa-engine/dev"


class PooledHttpClients(HttpClients):
    """Builds each named client on first use and keeps it until :meth:`close`.

    A name's ``base_url`` is fixed by its first use: asking again with another
    non-empty one raises ``ValueError``. ``transport``, if given, is shared by every
    client (for tests: an ``httpx.MockTransport``); ``limits`` then do not apply.
    Thread-safe.
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._limits = limits
        self._transport = transport
        self._user_agent = user_agent()
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[str, httpx.Client]] = {}

    def client(self, name: str, *, base_url: str = "") -> httpx.Client:
        with self._lock:
            built = self._clients.get(name)
            if built is not None and not built[1].is_closed:
                first_base_url, client = built
                if base_url and base_url != first_base_url:
                    raise ValueError(
                        f"http client {name!r} was built with base_url {first_base_url!r}; "
                        f"it cannot be asked for with {base_url!r} (use another name)"
                    )
                return client
            client = httpx.Client(
                base_url=base_url,
                timeout=self._timeout,
                limits=self._limits,
                transport=self._transport,
                headers={"User-Agent": self._user_agent},
            )
            self._clients[name] = (base_url, client)
            return client

    def close(self) -> None:
        with self._lock:
            clients = [client for _, client in self._clients.values()]
            self._clients.clear()
        for client in clients:
            client.close()
