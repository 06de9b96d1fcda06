"""The FastAPI application of the host: the ``/api`` endpoints, ``/metrics`` and the
dashboard, over the host's application services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request, Response

from engine.adapters.metrics_prometheus import CONTENT_TYPE, EngineMetrics
from engine.service_host.api import dashboard, routes
from engine.service_host.api.auth import require_token
from engine.service_host.api.errors import install_error_handlers
from engine.service_host.api.middleware import AroundRequests
from engine.service_host.api.status_cache import StatusCache

if TYPE_CHECKING:
    from engine.service_host.bootstrap import ApplicationServices

API_VERSION = "1"


def create_app(
    services: ApplicationServices, *, token: str, metrics: EngineMetrics | None = None
) -> FastAPI:
    """The HTTP application over ``services``; requests need ``token`` (but health, the
    login page and static files)."""
    app = FastAPI(
        title="SOA Engine API",
        version=API_VERSION,
        description="Status, logs, configuration, companies, tasks, runs and company data "
        "of the automatic operations service. Send 'Authorization: Bearer <token>' (the "
        "token is printed by 'soa api-token').",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; serve neither
        redoc_url=None,
    )
    app.state.services = services
    app.state.token = token
    app.state.metrics = metrics or EngineMetrics()
    app.state.status_cache = StatusCache(services.service)
    install_error_handlers(app)
    app.include_router(routes.health)
    app.include_router(routes.api)
    dashboard.install(app)

    @app.get("/metrics", dependencies=[Depends(require_token)], include_in_schema=False)
    def get_metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)

    app.add_middleware(AroundRequests, metrics=app.state.metrics,
                       station=services.settings.station)

    return app
