"""Partner credentials (API keys, access and refresh tokens) encrypted with AES-GCM.

The key is the setting ``SOA_CIPHER_KEY`` (32 random bytes, URL-safe base64) when given,
else the file ``SOA_HOME/cipher.key`` (the same text), created on first encryption
readable by its owner only. Every station that reads a company's credentials needs the
same key.

A token is ``v1:`` then the URL-safe base64 of a random 12-byte nonce followed by the
ciphertext and its tag. Associated data (such as ``"<company id>/<partner>"``) binds a
token to its place: decrypting it with other associated data fails, so a credential
cannot be moved to another company or partner. No message ever contains a credential or
the key.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.adapters.private_files import read_or_create
from engine.domain.errors import SoaError

KEY_FILE = "cipher.key"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
VERSION = "v1:"

MAKE_KEY = (
    'python -c "import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)

_WRONG_KEY = (
    "the stored credential cannot be decrypted with this station's key, or it was altered "
    "or stored for another company or partner (copy SOA_HOME/cipher.key from the station "
    "that stored it, or set SOA_CIPHER_KEY)"
)
_NOT_A_TOKEN = (
    f"the stored credential is not a cipher token (expected {VERSION!r} then URL-safe "
    "base64); enter the credential again"
)


class CipherKeyError(SoaError):
    """Signals a credential that this station's key cannot decrypt, or an unusable key."""


class CipherBox:
    """Encrypts and decrypts short texts with one AES-256-GCM key, loaded on first use.

    Thread-safe.
    """

    def __init__(self, load_key: Callable[[bool], bytes | None]) -> None:
        """``load_key(create)`` returns the raw 32-byte key; None if there is none and
        ``create`` is false."""
        self._load_key = load_key
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_key(cls, key: str | bytes) -> CipherBox:
        """A box on ``key`` (32 bytes, URL-safe base64).

        :raises CipherKeyError: if ``key`` is not such a key.
        """
        raw = _decode_key(key, "the cipher key")
        return cls(lambda create: raw)

    @classmethod
    def from_home(cls, home: Path, key: str | None) -> CipherBox:
        """A box on ``key`` (the setting SOA_CIPHER_KEY) if given, else on
        ``home/cipher.key``, created (mode 0600, ``home`` 0700) when a credential is
        first encrypted.

        :raises CipherKeyError: if ``key`` is given but is not 32 bytes in URL-safe base64.
        """
        if key and key.strip():
            raw = _decode_key(key, "SOA_CIPHER_KEY")
            return cls(lambda create: raw)
        path = home / KEY_FILE

        def load(create: bool) -> bytes | None:
            return _read_or_create(path, create)

        return cls(load)

    def encrypt(self, text: str, aad: str = "") -> str:
        """``text`` encrypted under a fresh random nonce (a different token each time),
        bound to ``aad``.

        :raises CipherKeyError: if the key file is unusable.
        """
        aead = self._get(create=True)
        assert aead is not None
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, text.encode(), aad.encode())
        return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, aad: str = "") -> str:
        """The text ``token`` encrypts, given the same ``aad`` as when it was encrypted.

        :raises CipherKeyError: if ``token`` is not a token of this format, or this box's
            key (with ``aad``) did not encrypt it, or it was altered.
        """
        sealed = _unwrap(token)
        aead = self._get(create=False)
        if aead is None:
            raise CipherKeyError(_WRONG_KEY)
        try:
            return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad.encode()).decode()
        except (InvalidTag, UnicodeError):
            raise CipherKeyError(_WRONG_KEY) from None

    def _get(self, *, create: bool) -> AESGCM | None:
        with self._lock:
            if self._aead is None:
                raw = self._load_key(create)
                if raw is None:
                    return None
                self._aead = AESGCM(raw)
            return self._aead


def _unwrap(token: str) -> bytes:
    if not token.startswith(VERSION):
        raise CipherKeyError(_NOT_A_TOKEN)
    try:
        sealed = base64.b64decode(token[len(VERSION):], altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise CipherKeyError(_NOT_A_TOKEN) from None
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise CipherKeyError(_NOT_A_TOKEN)
    return sealed


def _decode_key(key: str | bytes, what: str) -> bytes:
    """The 32 raw bytes ``key`` encodes.

    :raises CipherKeyError: naming ``what`` and saying how to make a key.
    """
    text = key.strip() if isinstance(key, bytes) else key.strip().encode("ascii", "replace")
    try:
        raw = base64.b64decode(text, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise CipherKeyError(
            f"{what} is not a cipher key (expected 32 random bytes in URL-safe base64, "
            f"44 characters; make one with: {MAKE_KEY})"
        )
    return raw


def _new_key() -> bytes:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES))


def _read_or_create(path: Path, create: bool) -> bytes | None:
    text = read_or_create(path, _new_key, create=create)
    if text is None:
        return None
    if not text:
        raise CipherKeyError(f"the key file {path} is empty; restore it from a backup or "
                             "the station that stored the credentials")
    return _decode_key(text, f"the key file {path}")
