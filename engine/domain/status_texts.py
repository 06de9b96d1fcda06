"""The four status texts, exactly as the ERP shows them (Polish) and in English."""

from __future__ import annotations

from typing import Literal

State = Literal["not_configured", "stopped", "running"]

_TEXTS = {
    "pl": {
        "not_configured": "Usługa nie jest skonfigurowana.",
        "stopped": "Usługa skonfigurowana na stanowisku {station} jest aktualnie zatrzymana.",
        "running_here": "Usługa jest uruchomiona na stanowisku {station}.",
        "running_elsewhere": (
            "Usługa jest uruchomiona na stanowisku {station}. "
            "Możesz ją zatrzymać tylko na tym stanowisku."
        ),
    },
    "en": {
        "not_configured": "The service is not configured.",
        "stopped": "The service configured on station {station} is currently stopped.",
        "running_here": "The service is running on station {station}.",
        "running_elsewhere": (
            "The service is running on station {station}. You can stop it only on that station."
        ),
    },
}


def status_text(state: State, station: str | None, asking_station: str, lang: str) -> str:
    """Return the status text for ``state`` as seen from ``asking_station``."""
    texts = _TEXTS[lang]
    if state == "not_configured":
        return texts["not_configured"]
    if state == "stopped":
        return texts["stopped"].format(station=station)
    key = "running_here" if station == asking_station else "running_elsewhere"
    return texts[key].format(station=station)
