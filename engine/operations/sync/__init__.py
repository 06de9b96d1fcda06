"""The seven partner synchronisations, built-in task kinds ``sync_<partner>`` on the
shared core of :mod:`engine.operations.sync.core` (contracts: docs/partners/)."""

from __future__ import annotations

HANDLERS: dict[str, str] = {
    "sync_wszystkopl": "engine.operations.sync.wszystkopl:WszystkoplSync",
    "sync_esklep": "engine.operations.sync.esklep:EsklepSync",
    "sync_detal": "engine.operations.sync.detal:DetalSync",
    "sync_mobile": "engine.operations.sync.mobile:MobileSync",
    "sync_xl": "engine.operations.sync.xl:XlSync",
    "sync_hrm": "engine.operations.sync.hrm:HrmSync",
    "sync_apfino": "engine.operations.sync.apfino:ApfinoSync",
}
"""Built-in kind → ``module:class`` of its handler, imported on first use."""
