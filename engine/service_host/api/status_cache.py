"""The status as the API answers it: computed by the service at most every
:data:`FRESH_SECONDS` per station and language and shared by the requests meanwhile;
while a newer one is being computed, requests get the last one if it is younger than
:data:`STALE_SECONDS`, so a slow store query never holds the answers up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from engine.application.service import ServiceApplication

FRESH_SECONDS = 0.25
"""How long an answer is reused as it is: a status query costs several store queries,
and the ERP asks from many stations many times a minute."""
STALE_SECONDS = 1.0
"""How old an answer may be at most: older, the request waits for a new one."""
MAX_KEYS = 1000

Key = tuple[str, str | None]


class StatusCache:
    """``ServiceApplication.status(...).as_json()`` per (language, station). One
    computation at a time per key, in a worker thread; errors are never kept (the
    request that waits for the computation gets them)."""

    def __init__(self, service: ServiceApplication, *, fresh_seconds: float = FRESH_SECONDS,
                 stale_seconds: float = STALE_SECONDS) -> None:
        self._service = service
        self._fresh_seconds = fresh_seconds
        self._stale_seconds = stale_seconds
        self._answers: dict[Key, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._refreshing: dict[Key, asyncio.Task[None]] = {}

    async def status(self, lang: str, station: str | None) -> dict[str, Any]:
        key = (lang, station)
        cached = self._answers.get(key)
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < self._fresh_seconds:
                return cached[1]
            if age < self._stale_seconds:
                if key not in self._refreshing:
                    task = asyncio.create_task(self._refresh_quietly(key))
                    self._refreshing[key] = task
                    task.add_done_callback(lambda _: self._refreshing.pop(key, None))
                return cached[1]
        return await self._refresh(key)

    async def _refresh(self, key: Key) -> dict[str, Any]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._answers.get(key)
            if cached is not None and time.monotonic() - cached[0] < self._fresh_seconds:
                return cached[1]
            answer = await run_in_threadpool(self._compute, *key)
            if len(self._answers) >= MAX_KEYS:  # stations are few; never grow without end
                self._answers.clear()
            self._answers[key] = (time.monotonic(), answer)
            return answer

    async def _refresh_quietly(self, key: Key) -> None:
        try:
            await self._refresh(key)
        except Exception:  # the next request past STALE_SECONDS computes it and gets it
            self._answers.pop(key, None)

    def _compute(self, lang: str, station: str | None) -> dict[str, Any]:
        return self._service.status(lang, station=station).as_json()
