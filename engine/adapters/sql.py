"""What every SQL adapter shares: database URLs, engines, and library errors as the
engine's own."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from engine.ports.store import InvalidDatabaseUrlError, StoreUnavailableError

SUPPORTED_URLS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")

IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
"""PostgreSQL ends a session idle inside a transaction this long, so a host that hangs
(or is suspended) mid-transaction cannot block the other stations for longer."""

P = ParamSpec("P")
R = TypeVar("R")


def parse_database_url(url: str, *, what: str = "database URL") -> URL:
    """Return ``url`` parsed.

    :raises InvalidDatabaseUrlError: unless it is a SQLite or psycopg 3 PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidDatabaseUrlError(
            f"{what} {_redacted(url)!r} is not a URL; expected {SUPPORTED_URLS}"
        ) from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise InvalidDatabaseUrlError(
            f"{what} scheme {parsed.drivername!r} is not supported; expected {SUPPORTED_URLS}"
        )
    return parsed


def _redacted(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


def with_session_options(url: str) -> str:
    """``url`` with the engine's PostgreSQL session options, unless it sets its own."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "options" in parsed.query:
        return url
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite connection waits for another process's lock before it gives up
(Python's default, 5 s, is short for a loaded machine with several processes)."""


def create_sql_engine(url: str) -> Engine:
    """A pooled engine on ``url`` (no connection is made yet)."""
    if make_url(url).get_backend_name() == "sqlite":
        return create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    return create_engine(with_session_options(url))


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise :class:`StoreUnavailableError` in place of SQLAlchemy's errors."""
    try:
        yield
    except SQLAlchemyError as error:
        raise StoreUnavailableError(first_line(error)) from error


def translating_store_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate an adapter method so that SQLAlchemy's errors leave it as
    :class:`StoreUnavailableError`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with store_errors():
            return method(*args, **kwargs)

    return wrapper
