"""Who causes the events triggered now: the hook the application layer sets.

The domain does not know the actors (the CLI's user, a host session, an API client);
the application layer tells it where to ask, with :func:`set_actor_source`
(:mod:`engine.application.actor`). Kept apart from :mod:`engine.domain.aggregate` so
that naming an actor imports neither the aggregates nor eventsourcing.
"""

from __future__ import annotations

from collections.abc import Callable

ActorSource = Callable[[], "str | None"]


def _nobody() -> str | None:
    return None


_actor_source: ActorSource = _nobody


def set_actor_source(source: ActorSource | None) -> None:
    """Ask ``source`` who causes each event triggered from now on (None: nobody)."""
    global _actor_source
    _actor_source = source or _nobody


def current_cause() -> str | None:
    """Who causes an event triggered now, as the actor source says."""
    return _actor_source()
