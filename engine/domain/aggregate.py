"""The base of the engine's aggregates: every event records who caused it.

An event already records when it happened (``timestamp``, eventsourcing's). The base
adds ``caused_by``: the actor the application layer names for the command, such as
``cli:anna@BIURO`` or ``host:<session id>@BIURO``, or None where nobody was named.
The domain does not know the actors; it asks the source the application layer sets
through :mod:`engine.domain.cause`, at the moment the event is triggered.

Events stored before ``caused_by`` existed are version 1 of their class; they load
through :meth:`Aggregate.Event.upcast_v1_v2`, with ``caused_by`` None.
"""

from __future__ import annotations

from typing import Any

import eventsourcing.domain as library

from engine.domain.cause import current_cause


class Aggregate(library.Aggregate):
    """An eventsourcing aggregate whose events say who caused them."""

    class Event(library.Aggregate.Event):
        """An event of an engine aggregate (version 2: with ``caused_by``)."""

        caused_by: str | None
        """The actor that caused the event (``cli:``, ``host:`` or ``api:``), or None."""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 events were stored before anyone was recorded as their cause."""
            state["caused_by"] = None

    class Created(Event, library.Aggregate.Created):
        """The event that creates an engine aggregate."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("caused_by", current_cause())
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("caused_by", current_cause())
        return super()._create(event_class, **kwargs)
