"""Logging in and out, and the guards of every page and form.

Contract: every page but ``/login`` depends on :func:`require_login`; without the token it
raises :class:`LoginRequired`, answered by :func:`to_login` with a redirect to the login
that comes back to the page asked for. ``POST /login`` keeps a right token in the cookie
:data:`~engine.service_host.api.auth.TOKEN_COOKIE` (HttpOnly, SameSite=Strict, Secure over
HTTPS, :data:`SESSION_SECONDS`); ``POST /logout`` deletes it. A form is accepted only by
:func:`check_form`: it carries the page's CSRF value and, when the browser names an
origin, comes from this one.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from engine.service_host.api.auth import TOKEN_COOKIE, is_authenticated, token_matches
from engine.service_host.api.dashboard.rendering import csrf_value, render, safe_next

SESSION_SECONDS = 12 * 3600
"""How long the login cookie lasts: a working day."""

public = APIRouter(include_in_schema=False)
"""The pages served without the token: the login and the logout."""


class LoginRequired(Exception):
    """Signals a dashboard page asked for without a valid token."""


def require_login(request: Request) -> None:
    """The dependency of every page but the login's.

    :raises LoginRequired: without the token (answered with a redirect to the login page).
    """
    if not is_authenticated(request):
        raise LoginRequired


def to_login(request: Request, error: Exception) -> Response:
    """To the login, and after it back to the page asked for (a form's post: the overview)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = target if request.method == "GET" else "/"
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def check_form(request: Request, csrf: str) -> Response | None:
    """None for a form of this dashboard, else the 403 page refusing it."""
    if same_origin(request) and hmac.compare_digest(csrf.encode(), csrf_value(request).encode()):
        return None
    return render(request, "message.html", 403, title="Form refused", message=(
        "This form was not sent by this dashboard's page; reload the page and try again."))


@public.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if is_authenticated(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", next=safe_next(next), error=None)


@public.post("/login")
def login(request: Request, token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    if not same_origin(request):
        return render(request, "login.html", 403, next="/",
                      error="This form was not sent by this dashboard's page.")
    if not token_matches(token.strip(), request.app.state.token):
        return render(request, "login.html", 401, next=safe_next(next),
                      error="That is not the API token. 'soa api-token' prints it.")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@public.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    refused = check_form(request, csrf)
    if refused is not None:
        return refused
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="strict")
    return response
