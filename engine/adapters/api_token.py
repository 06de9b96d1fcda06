"""The HTTP API's bearer token: ``SOA_API_TOKEN``, or the file ``SOA_HOME/api-token``."""

from __future__ import annotations

import secrets
from pathlib import Path

from engine.adapters.private_files import read_or_create
from engine.domain.errors import SoaError

API_TOKEN_FILE = "api-token"
MIN_TOKEN_LENGTH = 16


class ApiTokenError(SoaError):
    """Signals a token that is too short to be safe."""


def api_token(home: Path, configured: str | None) -> str:
    """``configured`` if given, else the token in ``home/api-token``, created (mode 0600)
    at first use.

    :raises ApiTokenError: if the token has fewer than 16 characters.
    """
    if configured:
        token, where = configured.strip(), "SOA_API_TOKEN"
    else:
        path = home / API_TOKEN_FILE
        raw = read_or_create(path, lambda: secrets.token_urlsafe(32).encode("ascii"))
        assert raw is not None
        token, where = raw.decode("utf-8", "replace"), str(path)
    if len(token) < MIN_TOKEN_LENGTH:
        raise ApiTokenError(
            f"the API token in {where} has {len(token)} characters; it needs at least "
            f"{MIN_TOKEN_LENGTH} (delete the file to get a new one)"
        )
    return token
