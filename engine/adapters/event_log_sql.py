"""The notification log read in bulk straight from ``soa_events``: for replay and export.

:class:`EventsourcingStore.events_after` reads through eventsourcing's recorder (an ORM
query) and mapper; for a million events that costs more than the replay itself.
:class:`SqlEventLog` selects the same rows with one Core query per batch and decodes
them as the store's mapper does (:meth:`eventsourcing.persistence.Mapper.to_domain_event`:
the topic's class, the state through the store's own transcodings, ``class_version``
upcasting, the event built without calling its ``__init__``), keeping the UUIDs and
classes it has met. The store has no cipher and no compressor; a mapper with either is
refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    Mapper,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from eventsourcing.utils import resolve_topic
from sqlalchemy import Engine, bindparam, column, func, select, table

from engine.adapters.sql import translating_store_errors

NumberedEvent = tuple[int, Any]
UUIDS_KEPT = 100_000
"""Decoded UUIDs kept for reuse (a run's id recurs in each of its events)."""


class SqlEventLog:
    """Events after a notification id, in order, decoded (a ``NotificationLog``)."""

    def __init__(self, engine: Engine, mapper: Mapper[UUID], *,
                 events_table: str = "soa_events") -> None:
        if mapper.cipher is not None or mapper.compressor is not None:
            raise ValueError("stored events are enciphered or compressed; read them "
                             "through the store")
        self._engine = engine
        events = table(events_table, column("id"), column("originator_id"),
                       column("originator_version"), column("topic"), column("state"))
        self._select = (
            select(events.c.id, events.c.originator_id, events.c.originator_version,
                   events.c.topic, events.c.state)
            .where(events.c.id > bindparam("after"), events.c.id <= bindparam("stop"))
            .order_by(events.c.id)
            .limit(bindparam("limit"))
        )
        self._head = select(func.max(events.c.id))
        self._transcodings = dict(mapper.transcoder.names)  # type: ignore[attr-defined]
        self._uuid_hex = isinstance(self._transcodings.get("uuid_hex"), UUIDAsHex)
        self._datetime_iso = isinstance(self._transcodings.get("datetime_iso"), DatetimeAsISO)
        self._uuids: dict[Any, UUID] = {}
        self._classes: dict[str, Any] = {}
        self._decode = json.JSONDecoder(object_hook=self._decode_object).raw_decode

    @translating_store_errors
    def max_position(self) -> int:
        """The last notification id (0 for an empty store)."""
        with self._engine.connect() as connection:
            return int(connection.execute(self._head).scalar() or 0)

    @translating_store_errors
    def events_after(self, position: int, *, limit: int, stop: int) -> list[NumberedEvent]:
        """Up to ``limit`` events after notification ``position`` and at most at ``stop``."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                self._select, {"after": position, "stop": stop, "limit": limit}
            ).all()
        if len(self._uuids) > UUIDS_KEPT:
            self._uuids.clear()
        return [(row[0], self._event(row[1], row[2], row[3], row[4])) for row in rows]

    def _event(self, originator_id: Any, version: int, topic: str, state: Any) -> Any:
        cls = self._classes.get(topic)
        if cls is None:
            cls = self._classes[topic] = resolve_topic(topic)
        if not isinstance(state, str):
            state = bytes(state).decode("utf8")
        values: dict[str, Any] = self._decode(state)[0]
        values["originator_id"] = self._uuid(originator_id)
        values["originator_version"] = version
        class_version = getattr(cls, "class_version", 1)
        from_version = values.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(values)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", values)
        return event

    def _uuid(self, raw: Any) -> UUID:
        """An originator id as stored: a UUID (PostgreSQL), 16 bytes or text (SQLite)."""
        if isinstance(raw, UUID):
            return raw
        found = self._uuids.get(raw)
        if found is None:
            found = self._uuids[raw] = (
                UUID(raw) if isinstance(raw, str) else UUID(bytes=bytes(raw))
            )
        return found

    def _decode_object(self, value: dict[str, Any]) -> Any:
        if len(value) != 2 or "_type_" not in value or "_data_" not in value:
            return value
        name, data = value["_type_"], value["_data_"]
        if name == "uuid_hex" and self._uuid_hex:
            found = self._uuids.get(data)
            if found is None:
                found = self._uuids[data] = UUID(data)
            return found
        if name == "datetime_iso" and self._datetime_iso:
            return datetime.fromisoformat(data)
        transcoding = self._transcodings.get(name)
        if transcoding is None:
            raise TranscodingNotRegisteredError(
                f"data serialized with name {name!r} is not deserializable"
            )
        decode: Callable[[Any], Any] = transcoding.decode
        return decode(data)


def open_event_log(url: str, events_table: str = "soa_events") -> SqlEventLog:
    """A reader of the log of the store at ``url``, on an engine of its own (for another
    process: this function and its arguments can be pickled)."""
    from engine.adapters.soa_store import sql_soa_store
    from engine.adapters.sql import create_sql_engine

    engine = create_sql_engine(url)
    return SqlEventLog(engine, sql_soa_store(url, engine).mapper, events_table=events_table)
