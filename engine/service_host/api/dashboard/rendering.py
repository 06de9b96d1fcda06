"""Rendering the dashboard's pages: the Jinja2 templates of ``api/templates``, times in
Europe/Warsaw, the language of the status text and the one-line messages a button leaves
for the next page.

Contract: :func:`render` answers every page with :data:`SECURITY_HEADERS`, the pending
message (then forgotten) and the form value :func:`csrf_value`; :func:`redirect` answers a
button with 303 to a path of this site only, carrying its message in the cookie
:data:`FLASH_COOKIE` (60 s, HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from engine.service_host.api.auth import is_authenticated

if TYPE_CHECKING:
    from engine.service_host.bootstrap import ApplicationServices

FILES = Path(__file__).resolve().parent.parent
"""The API package, holding ``templates/`` and ``static/``."""
ZONE = ZoneInfo("Europe/Warsaw")
LANGUAGES = ("pl", "en")
LANG_COOKIE = "soa_lang"
FLASH_COOKIE = "soa_flash"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def services_of(request: Request) -> ApplicationServices:
    return request.app.state.services  # type: ignore[no-any-return]


def local_time(moment: datetime | None) -> str:
    """``moment`` as Warsaw wall-clock time, to the second."""
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def detail_text(value: Any) -> str:
    """A field of an event for people: instants in Warsaw time, other values as JSON."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value) if "T" in value else None
        except ValueError:
            moment = None
        return local_time(moment) if moment and moment.tzinfo else value
    return json.dumps(value, ensure_ascii=False)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FILES / "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.filters["detail"] = detail_text
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    return env


templates = Jinja2Templates(env=_environment())


def csrf_value(request: Request) -> str:
    """The value every form of the dashboard carries: an HMAC of the token."""
    key = str(request.app.state.token).encode()
    return hmac.new(key, b"soa-dashboard-form", hashlib.sha256).hexdigest()


def language(request: Request) -> str:
    """The language of the status text: ``?lang=``, else the cookie, else the setting's."""
    for given in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if given in LANGUAGES:
            return str(given)
    return str(services_of(request).settings.lang)


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
    """The page ``template`` with ``context``, the pending message (then forgotten) and
    the language switch."""
    lang = language(request)

    def url_with(**changes: Any) -> str:
        params = {**request.query_params, **changes}
        kept = {key: value for key, value in params.items() if value not in (None, "")}
        return request.url.path + ("?" + urlencode(kept) if kept else "")

    response = templates.TemplateResponse(request, template, {
        "lang": lang, "flash": _read_flash(request), "csrf": csrf_value(request),
        "signed_in": is_authenticated(request), "url_with": url_with,
        "station": services_of(request).settings.station, "nav": "", **context,
    }, status_code=code, headers=SECURITY_HEADERS)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="strict")
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                            httponly=True)
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        return {"kind": "error" if data["kind"] == "error" else "ok", "text": str(data["text"])}
    except (ValueError, KeyError, TypeError):
        return None


def redirect(request: Request, to: str, *, text: str = "", error: bool = False) -> Response:
    """303 to the local path ``to`` with the one-line message ``text`` for the next page."""
    response = RedirectResponse(safe_next(to), status_code=303)
    if text:
        payload = json.dumps({"kind": "error" if error else "ok", "text": text})
        value = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="strict")
    return response


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target
