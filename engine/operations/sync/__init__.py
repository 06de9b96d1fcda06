"""The seven partner synchronisations, built-in task kinds ``sync_<partner>`` on the
shared core of :mod:`engine.operations.sync.core` (contracts: docs/partners/)."""

from __future__ import annotations

HANDLERS: dict[str, str] = {
    "sync_wszystkopl": "engine.operations.sync.wszystkopl:WszystkoplSync",
}
"""Built-in kind → ``module:class`` of its handler, imported on first use."""
