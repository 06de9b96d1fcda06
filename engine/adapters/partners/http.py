"""The resilient JSON-over-HTTP client every partner adapter uses (contracts:
``docs/partners``; common rules: bearer auth, ``Idempotency-Key`` on writes,
``{"error": "..."}`` answers, 429 with ``Retry-After``).

Errors, one line each, never holding a token, a header or a body:

==========================  ==================================================
class                       meaning
==========================  ==================================================
``PartnerRequestError``     the partner refused the request (a 4xx other than
                            408 and 429, a 401 after re-authorising, an answer
                            that is not JSON); sending it again will not help
``PartnerUnavailableError`` every attempt failed on 429, 408, 5xx or a
                            transport error (connection refused or reset,
                            timeout); the same request may succeed later
==========================  ==================================================
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random as random_module
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx

from engine.adapters.http_clients import user_agent
from engine.domain.errors import SoaError

MAX_RETRY_AFTER = 120.0
"""The longest a ``Retry-After`` answer makes the client wait, in seconds."""
MAX_ERROR_CHARS = 200
MAX_IDEMPOTENCY_KEY = 200
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 429})

log = logging.getLogger(__name__)

AuthHeaders = Callable[[], Mapping[str, str]]


class PartnerRequestError(SoaError):
    """Signals that a partner refused a request; sending it again would not help."""

    def __init__(
        self, message: str, *, partner: str, method: str, path: str, status: int | None
    ) -> None:
        super().__init__(message)
        self.partner = partner
        self.method = method
        self.path = path
        self.status = status


class PartnerUnavailableError(SoaError):
    """Signals that every attempt of a request failed on a transient cause; it may
    succeed later (writes with the same idempotency key)."""

    def __init__(
        self, message: str, *, partner: str, method: str, path: str, attempts: int
    ) -> None:
        super().__init__(message)
        self.partner = partner
        self.method = method
        self.path = path
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class PartnerHttpStats:
    """What a :class:`PartnerHttp` did since it was made.

    ``attempts``: requests sent (or tried); ``retries``: attempts after the first of a
    call; ``throttled``: 429 answers; ``failures``: calls that raised.
    """

    attempts: int = 0
    retries: int = 0
    throttled: int = 0
    failures: int = 0


def json_dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON; ``Decimal`` values become strings (``"12.30"``),
    dates and times ISO 8601 strings.

    :raises TypeError: if ``body`` holds anything else JSON cannot encode.
    :raises ValueError: if it holds a NaN or infinite float.
    """
    return json.dumps(
        body, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    ).encode()


def partner_client(
    base_url: str,
    *,
    timeout: float = 30.0,
    pool: int = 10,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A pooled HTTP/1.1 client for one partner at ``base_url`` (such as
    ``http://127.0.0.1:8900/esklep``; request paths are appended to it): at most ``pool``
    connections, ``timeout`` seconds per read, write and pool wait, 10 s to connect.
    ``transport`` (for tests: an ``httpx.MockTransport``) replaces the pool.

    :raises ValueError: if ``timeout`` or ``pool`` is not positive.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
    if pool < 1:
        raise ValueError(f"pool must be at least 1 connection, not {pool!r}")
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        transport=transport,
        headers={"User-Agent": user_agent(), "Accept": "application/json"},
        http1=True,
        http2=False,
        follow_redirects=False,
    )


class PartnerHttp:
    """Sends JSON requests to one partner through ``client`` (injected: its base URL,
    pool, timeouts and transport are the caller's), retrying what may succeed later.

    A call is tried up to ``max_attempts`` times: again after a 429, 408 or 5xx answer
    or a transport error, after a pause drawn uniformly from 0 to
    ``min(backoff_max, backoff_base * 2 ** (failures - 1))`` (full jitter), and at
    least ``Retry-After`` (seconds or an HTTP date, at most :data:`MAX_RETRY_AFTER`)
    when the partner gives one. A 401 calls ``on_unauthorized`` (if given) once and
    tries again, outside that budget. ``auth()`` gives the headers to add (such as
    ``Authorization``) and is asked on every attempt, so a refreshed token is used.

    With ``rate_limit`` (requests per second), calls from all threads using this
    object are spaced at least ``1 / rate_limit`` seconds apart (a token bucket of one
    token); use one object per partner. Thread-safe.

    Messages and logs name the partner, the method, the path without its query and the
    status only: never a header, a token or a body.
    """

    def __init__(
        self,
        client: httpx.Client,
        partner: str,
        *,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rate_limit: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: random_module.Random | None = None,
        auth: AuthHeaders | None = None,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        """:raises ValueError: if an option is out of range."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts!r}")
        if not (backoff_base >= 0 and backoff_max >= backoff_base):
            raise ValueError(
                f"backoff must have 0 <= backoff_base <= backoff_max, not {backoff_base!r} "
                f"and {backoff_max!r}"
            )
        if rate_limit is not None and not (rate_limit > 0 and math.isfinite(rate_limit)):
            raise ValueError(f"rate_limit must be positive requests per second or None, "
                             f"not {rate_limit!r}")
        self._client = client
        self.partner = partner
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._random = random if random is not None else random_module.Random()
        self._auth = auth
        self._on_unauthorized = on_unauthorized
        self._bucket = _TokenBucket(rate_limit, clock, sleep) if rate_limit else None
        self._stats_lock = threading.Lock()
        self._stats = PartnerHttpStats()

    @property
    def stats(self) -> PartnerHttpStats:
        """The counts so far (a snapshot)."""
        with self._stats_lock:
            return self._stats

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The JSON answer to ``GET path`` (relative to the client's base URL) with
        ``params`` as its query; None for an empty answer.

        :raises PartnerRequestError: if the partner refuses it.
        :raises PartnerUnavailableError: if every attempt failed.
        """
        return self._call("GET", path, params=params, content=None, headers={})

    def send(self, method: str, path: str, body: Any, *, idempotency_key: str) -> Any:
        """The JSON answer to ``method path`` with ``body`` (encoded by
        :func:`json_dumps`) and ``Idempotency-Key: idempotency_key``, the same on every
        attempt, so that the partner does the work once; None for an empty answer.

        :raises ValueError: if ``method`` is not a write or ``idempotency_key`` is not 1
            to 200 printable ASCII characters.
        :raises PartnerRequestError: if the partner refuses it.
        :raises PartnerUnavailableError: if every attempt failed (sending it again with
            the same key is safe).
        """
        method = method.upper()
        if method not in WRITE_METHODS:
            raise ValueError(f"send takes a write method ({', '.join(sorted(WRITE_METHODS))}), "
                             f"not {method!r}; use get to read")
        if not (
            0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
            and idempotency_key.isascii()
            and idempotency_key.isprintable()
        ):
            raise ValueError(
                f"an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters, "
                f"such as company-7/offers/2026-12-03; got {len(idempotency_key)} characters"
            )
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        return self._call(method, path, params=None, content=json_dumps(body), headers=headers)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> Any:
        where = f"{self.partner} {method} {_shown_path(path)}"
        budget = self._max_attempts
        attempt = failed = 0
        reauthorized = False
        while True:
            attempt += 1
            if self._bucket is not None:
                self._bucket.take()
            secrets = dict(self._auth()) if self._auth is not None else {}
            self._count(attempts=1, retries=1 if attempt > 1 else 0)
            try:
                response = self._client.request(
                    method, path, params=params, content=content, headers={**secrets, **headers}
                )
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
                raise self._refused(where, method, path, _cause(error, secrets)) from None
            except httpx.TransportError as error:
                cause = _cause(error, secrets)
                retry_after = None
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise self._refused(where, method, path, _cause(error, secrets)) from None
            else:
                status = response.status_code
                if response.is_success:
                    return self._answer(response, where, method, path)
                if status == 401 and self._on_unauthorized is not None and not reauthorized:
                    reauthorized = True
                    budget += 1
                    log.info("%s: 401, authorising again", where)
                    self._on_unauthorized()
                    continue
                if status == 429:
                    self._count(throttled=1)
                cause = f"{_status(response)}: {_redacted(_error_text(response), secrets)}"
                if status not in RETRYABLE_STATUSES and not response.is_server_error:
                    self._count(failures=1)
                    raise PartnerRequestError(
                        f"{where} refused: {cause}",
                        partner=self.partner, method=method, path=_shown_path(path),
                        status=status,
                    )
                retry_after = _retry_after(response)
            failed += 1
            if attempt >= budget:
                self._count(failures=1)
                raise PartnerUnavailableError(
                    f"{where} failed after {attempt} attempts; the last: {cause}",
                    partner=self.partner, method=method, path=_shown_path(path),
                    attempts=attempt,
                )
            pause = self._pause(failed, retry_after)
            log.info("%s: %s; attempt %d of %d in %.1f s", where, cause, attempt + 1, budget,
                     pause)
            self._sleep(pause)

    def _answer(self, response: httpx.Response, where: str, method: str, path: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            self._count(failures=1)
            raise PartnerRequestError(
                f"{where} answered {_status(response)} with a body that is not JSON",
                partner=self.partner, method=method, path=_shown_path(path),
                status=response.status_code,
            ) from None

    def _refused(self, where: str, method: str, path: str, cause: str) -> PartnerRequestError:
        """A request that cannot be done at all (a bad URL or header, an undecodable
        answer), counted as a failure."""
        self._count(failures=1)
        return PartnerRequestError(
            f"{where} cannot be done: {cause}",
            partner=self.partner, method=method, path=_shown_path(path), status=None,
        )

    def _pause(self, failed: int, retry_after: float | None) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** min(failed - 1, 62))
        pause = self._random.uniform(0.0, ceiling)
        if retry_after is not None:
            pause = max(pause, retry_after)
        return pause

    def _count(
        self, *, attempts: int = 0, retries: int = 0, throttled: int = 0, failures: int = 0
    ) -> None:
        with self._stats_lock:
            now = self._stats
            self._stats = PartnerHttpStats(
                attempts=now.attempts + attempts,
                retries=now.retries + retries,
                throttled=now.throttled + throttled,
                failures=now.failures + failures,
            )


class _TokenBucket:
    """Spaces takers ``1 / rate`` seconds apart across threads: each reserves the next
    free moment under the lock, then sleeps until it outside the lock."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = -math.inf

    def take(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + self._interval
        if start > now:
            self._sleep(start - now)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds from now (0 to :data:`MAX_RETRY_AFTER`), None if absent
    or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _error_text(response: httpx.Response) -> str:
    """The partner's ``error`` text (one line, shortened), never the body otherwise: a
    body may echo personal data."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    text = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(text, str) or not text.strip():
        return "(no error text)"
    return _first_line(text)[:MAX_ERROR_CHARS]


def _cause(error: Exception, secrets: Mapping[str, str]) -> str:
    detail = _first_line(str(error))
    name = type(error).__name__
    return _redacted(f"{name}: {detail}" if detail else name, secrets)


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def _shown_path(path: str) -> str:
    """``path`` without query, fragment or credentials, fit to be shown."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    scheme, separator, rest = bare.partition("://")
    if separator:
        authority, slash, tail = rest.partition("/")
        bare = f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{tail}"
    return bare


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""


def _redacted(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every header value given by ``auth`` (and its last word: the
    token of ``Bearer <token>``) replaced by ``***``."""
    for value in secrets.values():
        for secret in {value, value.split()[-1] if value.split() else ""}:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")
