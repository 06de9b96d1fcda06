"""Names people give: stations, companies, tasks."""

from __future__ import annotations

from engine.domain.errors import DomainError


def check_printable_name(
    name: str, *, what: str, max_length: int, error: type[DomainError]
) -> str:
    """Return ``name`` stripped of surrounding blanks.

    :raises error: if it is empty, longer than ``max_length`` characters or contains
        control characters; the message names ``what`` and says what is allowed.
    """
    stripped = name.strip()
    allowed = f"give 1 to {max_length} printable characters"
    if not stripped:
        raise error(f"{what} is empty; {allowed}")
    if len(stripped) > max_length:
        raise error(f"{what} {stripped[:20]!r}... is longer than {max_length} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in stripped):
        raise error(f"{what} {stripped!r} contains control characters; {allowed}")
    return stripped
