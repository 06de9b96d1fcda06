from __future__ import annotations

import pytest

from engine.domain.status_texts import status_text

CASES = [
    ("not_configured", None, "A", "pl", "Usługa nie jest skonfigurowana."),
    ("stopped", "S1", "A", "pl", "Usługa skonfigurowana na stanowisku S1 jest aktualnie zatrzymana."),
    ("running", "S1", "S1", "pl", "Usługa jest uruchomiona na stanowisku S1."),
    (
        "running", "S1", "A", "pl",
        "Usługa jest uruchomiona na stanowisku S1. Możesz ją zatrzymać tylko na tym stanowisku.",
    ),
    ("not_configured", None, "A", "en", "The service is not configured."),
    ("stopped", "S1", "A", "en", "The service configured on station S1 is currently stopped."),
    ("running", "S1", "S1", "en", "The service is running on station S1."),
    (
        "running", "S1", "A", "en",
        "The service is running on station S1. You can stop it only on that station.",
    ),
]


@pytest.mark.parametrize(("state", "station", "asking", "lang", "expected"), CASES)
def test_the_four_texts_exactly(
    state: str, station: str | None, asking: str, lang: str, expected: str
) -> None:
    assert status_text(state, station, asking, lang) == expected  # type: ignore[arg-type]
