"""The API's status cache: fresh answers reused, stale ones served only while a newer
one is computed, errors never kept."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from engine.domain.errors import DomainError
from engine.service_host.api.status_cache import StatusCache


class Answer:
    def __init__(self, number: int) -> None:
        self.number = number

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number}


class CountingService:
    """Answers with the number of the call; ``gate`` holds a call until set."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def status(self, lang: str, *, station: str | None = None) -> Answer:
        self.gate.wait(5)
        self.calls += 1
        if self.fail:
            raise DomainError(f"station {station!r} is not a station name")
        return Answer(self.calls)


def cache_of(service: CountingService, fresh: float, stale: float) -> StatusCache:
    return StatusCache(service, fresh_seconds=fresh, stale_seconds=stale)  # type: ignore[arg-type]


def test_fresh_answer_is_reused_per_language_and_station() -> None:
    service = CountingService()
    cache = cache_of(service, fresh=60, stale=120)

    async def ask() -> list[dict[str, Any]]:
        return [await cache.status("pl", None), await cache.status("pl", None),
                await cache.status("en", None), await cache.status("pl", "KASA")]

    assert asyncio.run(ask()) == [{"number": 1}, {"number": 1}, {"number": 2}, {"number": 3}]


def test_stale_answer_is_served_while_a_new_one_is_computed_then_replaced() -> None:
    service = CountingService()
    cache = cache_of(service, fresh=0.05, stale=5)

    async def scenario() -> tuple[dict[str, Any], ...]:
        first = await cache.status("pl", None)
        await asyncio.sleep(0.1)
        service.gate.clear()  # the refresh hangs in its thread
        started = time.monotonic()
        while_refreshing = await cache.status("pl", None)
        assert time.monotonic() - started < 0.5
        service.gate.set()
        await asyncio.sleep(0.2)
        return first, while_refreshing, await cache.status("pl", None)

    assert asyncio.run(scenario()) == ({"number": 1}, {"number": 1}, {"number": 2})


def test_too_old_answer_waits_and_errors_are_not_kept() -> None:
    service = CountingService()
    cache = cache_of(service, fresh=0.01, stale=0.02)

    async def scenario() -> None:
        await cache.status("pl", None)
        await asyncio.sleep(0.05)
        service.fail = True
        with pytest.raises(DomainError):
            await cache.status("pl", None)
        service.fail = False
        assert await cache.status("pl", None) == {"number": 3}

    asyncio.run(scenario())
