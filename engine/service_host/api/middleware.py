"""What happens around every request, as plain ASGI (no extra task or thread per
request): the API client is recorded as the cause of what the request records, and the
request is counted for ``/metrics``."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.adapters.metrics_prometheus import EngineMetrics
from engine.application.actor import acting_as, api_actor


class AroundRequests:
    """ASGI middleware: actor and metrics for each HTTP request of ``app``."""

    def __init__(self, app: ASGIApp, *, metrics: EngineMetrics, station: str) -> None:
        self.app = app
        self.metrics = metrics
        self.station = station

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        client: Any = scope.get("client")
        actor = api_actor(client[0] if client else "unknown", self.station)
        try:
            with acting_as(actor):
                await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")  # set by the router on the shared scope
            self.metrics.request_answered(
                scope["method"], getattr(route, "path", "unmatched"), status,
                time.perf_counter() - started,
            )
