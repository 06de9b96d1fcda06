"""The dashboard: server-rendered pages over the same application services as the CLI
and the ``/api`` endpoints; it adds no rules of its own.

Pages need the API token, kept after ``/login`` in the HttpOnly, SameSite=Strict cookie
:data:`~engine.service_host.api.auth.TOKEN_COOKIE`; without it they redirect to the login.
Buttons are POST forms, refused (403) unless they carry the page's CSRF value (an HMAC of
the token) and, when the browser names one, come from this origin. Each answers with a
redirect (POST/redirect/GET) and a one-line message in a short-lived cookie: what was done,
or the service's refusal as the CLI prints it. Times are shown in Europe/Warsaw time.

Modules: :mod:`.login` (login, logout, the page and form guards), :mod:`.pages` (the GET
pages), :mod:`.actions` (the buttons), :mod:`.rendering` (templates, times, messages).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from engine.service_host.api.dashboard import actions, pages
from engine.service_host.api.dashboard.login import LoginRequired, public, to_login
from engine.service_host.api.dashboard.rendering import FILES

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages and its ``/static`` files from ``app``."""
    app.include_router(public)
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(directory=FILES / "static"), name="static")
    app.add_exception_handler(LoginRequired, to_login)
