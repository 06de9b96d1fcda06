"""Bearer-token authentication: the ``Authorization: Bearer`` header, or the dashboard's
HttpOnly cookie that the login page sets."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

TOKEN_COOKIE = "soa_token"
"""The cookie the dashboard's login sets (HttpOnly, SameSite=Strict)."""


def token_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def presented_token(request: Request) -> str | None:
    """The token the request carries: the bearer header first, else the cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else None
    return request.cookies.get(TOKEN_COOKIE)


def is_authenticated(request: Request) -> bool:
    return token_matches(presented_token(request), request.app.state.token)


async def require_token(request: Request) -> None:
    """The dependency of every protected endpoint (async: no thread for a comparison).

    :raises HTTPException: 401 without the right token.
    """
    if not is_authenticated(request):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid API token is needed: send 'Authorization: Bearer <token>' (the token "
            "is printed by 'soa api-token')",
            headers={"WWW-Authenticate": "Bearer"},
        )
