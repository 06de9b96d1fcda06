"""How errors become HTTP answers: JSON ``{"error": one line}``, and for a request that
does not fit the schema also ``"fields"`` (one entry per bad field).

The status follows the error hierarchy of :mod:`engine.domain.errors`: 404 not found,
409 conflict, 403 not permitted (another station's), 422 any other refusal, 503 store
unavailable. Anything else is a bug: 500, logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from engine.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    NotPermittedError,
    SoaError,
)
from engine.ports.store import StoreUnavailableError

logger = logging.getLogger("soa.api")


def status_of(error: SoaError) -> int:
    """The HTTP status of an engine error."""
    match error:
        case NotFoundError():
            return 404
        case ConflictError():
            return 409
        case NotPermittedError():
            return 403
        case DomainError():
            return 422
        case StoreUnavailableError():
            return 503
    return 500


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    """One ``{"field", "message"}`` per bad field; ``field`` is a dotted path from the
    part of the request (``body.days``, ``query.limit``)."""
    return [
        {"field": ".".join(str(part) for part in item.get("loc", ())),
         "message": str(item.get("msg", "invalid"))}
        for item in error.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SoaError)
    async def engine_error(request: Request, error: SoaError) -> JSONResponse:
        status = status_of(error)
        if status >= 500 and not isinstance(error, StoreUnavailableError):
            logger.error("%s %s failed: %s", request.method, request.url.path, error.message)
        return error_response(status, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = field_errors(error)
        first = fields[0] if fields else {"field": "request", "message": "invalid"}
        return error_response(422, f"{first['field']}: {first['message']}", fields=fields)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400:  # a body that is not JSON: bad input like any other
            message = "body: not valid JSON (send a JSON object with Content-Type: " \
                "application/json)"
            return error_response(422, message, fields=[{"field": "body", "message": message}])
        return error_response(error.status_code, str(error.detail),
                              headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error ({type(error).__name__}); see the host's log")
