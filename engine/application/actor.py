"""Who is acting: the actor every event records as its cause (``caused_by``).

Entry points name the actor; the domain asks :func:`current_actor` when it triggers an
event (this module is its actor source, see :mod:`engine.domain.cause`):

- the CLI: ``cli:<OS user>@<station>``, for the whole command (:func:`cli_actor`);
- the host: ``host:<session id>@<station>``, once its session began, also as the
  process default (:func:`set_process_actor`), so the threads it starts (scheduler,
  attempts, group commit) record it too;
- the HTTP API, per request: ``with acting_as(api_actor(client, station)):``.

:func:`acting_as` holds for the current thread or task (a context variable); a thread
that never entered one sees the process default, and None before any was set.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from engine.domain.cause import set_actor_source

Actor = str | Callable[[], str]
"""An actor, or a function that names it when first asked (so a command can name its
station only once the settings are read)."""

_acting: ContextVar[Actor | None] = ContextVar("soa_actor", default=None)
_process_actor: str | None = None


def current_actor() -> str | None:
    """The actor of the current context, else the process default, else None."""
    actor = _acting.get()
    if actor is None:
        return _process_actor
    return actor if isinstance(actor, str) else actor()


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Record ``actor`` as the cause of the events triggered inside (this thread or task)."""
    token = _acting.set(actor)
    try:
        yield
    finally:
        _acting.reset(token)


def set_process_actor(actor: str | None) -> str | None:
    """Make ``actor`` the default of every thread that is not acting as another; return
    the previous default."""
    global _process_actor
    previous, _process_actor = _process_actor, actor
    return previous


def cli_actor(station: str) -> str:
    """``cli:<OS user>@<station>``."""
    return f"cli:{_os_user()}@{station}"


def host_actor(session_id: UUID, station: str) -> str:
    """``host:<session id>@<station>``."""
    return f"host:{session_id}@{station}"


def api_actor(client: str, station: str) -> str:
    """``api:<client>@<station>``: the API client (its address or name) and the station
    it asked as."""
    return f"api:{client}@{station}"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "unknown"


set_actor_source(current_actor)
