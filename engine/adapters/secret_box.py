"""Short secrets (mail passwords, the SMS token) encrypted with the station's key.

The key is the setting ``SOA_SECRET_KEY`` (a Fernet key) when given, else the file
``SOA_HOME/secret.key``, created on first use readable by its owner only. Every station
that reads a company's secrets needs the same key. No message ever contains a secret
or the key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.adapters.private_files import read_or_create
from engine.domain.errors import SoaError

KEY_FILE = "secret.key"

_WRONG_KEY = (
    "the stored secret cannot be decrypted with this station's key (copy "
    "SOA_HOME/secret.key from the station that stored it, or set SOA_SECRET_KEY)"
)


class SecretKeyError(SoaError):
    """Signals a secret that this station's key cannot decrypt, or an unusable key."""


class SecretBox:
    """Encrypts and decrypts short texts with one Fernet key, loaded on first use."""

    def __init__(self, load_key: Callable[[bool], bytes | None]) -> None:
        """``load_key(create)`` returns the key; None if there is none and ``create`` is
        false."""
        self._load_key = load_key
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_key(cls, key: str | bytes) -> SecretBox:
        """A box on ``key`` (a Fernet key).

        :raises SecretKeyError: if ``key`` is not a Fernet key.
        """
        raw = key.encode() if isinstance(key, str) else key
        _fernet(raw, "the secret key")
        return cls(lambda create: raw)

    @classmethod
    def from_home(cls, home: Path, key: str | None) -> SecretBox:
        """A box on ``key`` (the setting SOA_SECRET_KEY) if given, else on
        ``home/secret.key``, created (mode 0600, ``home`` 0700) when a secret is first
        encrypted."""
        if key:
            raw = key.strip().encode()
            _fernet(raw, "SOA_SECRET_KEY")
            return cls(lambda create: raw)
        path = home / KEY_FILE

        def load(create: bool) -> bytes | None:
            return _read_or_create(path, create)

        return cls(load)

    def encrypt(self, text: str) -> str:
        """``text`` encrypted (a different token each time)."""
        fernet = self._get(create=True)
        assert fernet is not None
        return fernet.encrypt(text.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The text ``token`` encrypts.

        :raises SecretKeyError: if this box's key did not encrypt it.
        """
        fernet = self._get(create=False)
        if fernet is None:
            raise SecretKeyError(_WRONG_KEY)
        try:
            return fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretKeyError(_WRONG_KEY) from None

    def _get(self, *, create: bool) -> Fernet | None:
        with self._lock:
            if self._fernet is None:
                raw = self._load_key(create)
                if raw is None:
                    return None
                self._fernet = _fernet(raw, "the secret key")
            return self._fernet


def _fernet(raw: bytes, what: str) -> Fernet:
    try:
        return Fernet(raw)
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{what} is not a Fernet key (32 url-safe base64-encoded bytes, such as "
            "Fernet.generate_key() gives)"
        ) from None


def _read_or_create(path: Path, create: bool) -> bytes | None:
    raw = read_or_create(path, Fernet.generate_key, create=create)
    if raw is None:
        return None
    _check_key_file(path, raw)
    return raw


def _check_key_file(path: Path, raw: bytes) -> None:
    if not raw:
        raise SecretKeyError(f"the key file {path} is empty; restore it from a backup or "
                             "the station that stored the secrets")
    _fernet(raw, f"the key file {path}")


