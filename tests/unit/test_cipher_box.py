"""The station's AES-GCM box for partner credentials."""

from __future__ import annotations

import base64
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from engine.adapters.cipher_box import CipherBox, CipherKeyError

CREDENTIAL = "api-key-Żółć-7f3a9c2b"
AAD = "company-7/esklep"
WRONG_KEY = (
    "the stored credential cannot be decrypted with this station's key, or it was altered "
    "or stored for another company or partner (copy SOA_HOME/cipher.key from the station "
    "that stored it, or set SOA_CIPHER_KEY)"
)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_credential_comes_back_and_is_not_in_its_token(tmp_path: Path) -> None:
    box = CipherBox.from_home(tmp_path, None)

    token = box.encrypt(CREDENTIAL, AAD)

    assert token.startswith("v1:")
    assert CREDENTIAL not in token
    assert box.decrypt(token, AAD) == CREDENTIAL
    assert box.decrypt(box.encrypt("")) == ""


def test_each_encryption_uses_a_fresh_nonce() -> None:
    box = CipherBox.from_key(new_key())

    tokens = {box.encrypt(CREDENTIAL) for _ in range(50)}
    nonces = {base64.urlsafe_b64decode(token[3:])[:12] for token in tokens}

    # Check: every token and every nonce differs
    assert len(tokens) == len(nonces) == 50
    assert {box.decrypt(token) for token in tokens} == {CREDENTIAL}


@pytest.mark.parametrize("other_aad", ["", "company-7/detal", "company-8/esklep"])
def test_a_credential_is_bound_to_its_associated_data(other_aad: str) -> None:
    box = CipherBox.from_key(new_key())
    token = box.encrypt(CREDENTIAL, AAD)

    with pytest.raises(CipherKeyError) as caught:
        box.decrypt(token, other_aad)

    assert str(caught.value) == WRONG_KEY


def test_a_tampered_token_is_refused() -> None:
    box = CipherBox.from_key(new_key())
    sealed = bytearray(base64.urlsafe_b64decode(box.encrypt(CREDENTIAL, AAD)[3:]))

    for index in (0, 12, len(sealed) - 1):  # the nonce, the ciphertext, the tag
        altered = bytearray(sealed)
        altered[index] ^= 0x01
        with pytest.raises(CipherKeyError) as caught:
            box.decrypt("v1:" + base64.urlsafe_b64encode(bytes(altered)).decode(), AAD)
        assert str(caught.value) == WRONG_KEY


@pytest.mark.parametrize("token", ["", "v2:AAAA", "v1:not base64!", "v1:AAAA", "gAAAAABfernet"])
def test_what_is_not_a_token_is_refused_saying_so(token: str) -> None:
    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_key(new_key()).decrypt(token)

    assert str(caught.value) == (
        "the stored credential is not a cipher token (expected 'v1:' then URL-safe base64); "
        "enter the credential again"
    )


def test_another_key_cannot_decrypt_and_the_message_says_how_to_fix_it(tmp_path: Path) -> None:
    key = new_key()
    token = CipherBox.from_key(key).encrypt(CREDENTIAL, AAD)

    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_key(new_key()).decrypt(token, AAD)

    message = str(caught.value)
    assert message == WRONG_KEY
    assert CREDENTIAL not in message and key not in message
    assert CipherBox.from_home(tmp_path, key).decrypt(token, AAD) == CREDENTIAL


def test_the_key_file_is_made_on_first_encryption_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "soa-home"
    box = CipherBox.from_home(home, None)
    assert not home.exists()

    token = box.encrypt(CREDENTIAL, AAD)

    key = (home / "cipher.key").read_bytes().strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert CipherBox.from_home(home, None).decrypt(token, AAD) == CREDENTIAL
    CipherBox.from_home(home, None).encrypt("other")
    assert (home / "cipher.key").read_bytes().strip() == key
    # Check: the file's text is also a valid SOA_CIPHER_KEY
    assert CipherBox.from_home(tmp_path / "elsewhere", key.decode()).decrypt(token, AAD) == CREDENTIAL
    assert [path.name for path in home.iterdir()] == ["cipher.key"]


@posix_only
def test_the_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "soa-home"

    CipherBox.from_home(home, None).encrypt(CREDENTIAL)

    assert stat.S_IMODE(os.stat(home / "cipher.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


def test_decrypting_without_a_key_file_neither_makes_one_nor_reveals_anything(
    tmp_path: Path,
) -> None:
    token = CipherBox.from_home(tmp_path / "a", None).encrypt(CREDENTIAL)

    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_home(tmp_path / "b", None).decrypt(token)

    assert str(caught.value) == WRONG_KEY
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "key",
    [
        "short",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),  # an AES-128 key
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        "Ą" * 44,
        "not*base64*at*all*but*forty*four*characters",
    ],
)
def test_a_malformed_cipher_key_setting_is_refused_saying_what_is_expected(
    tmp_path: Path, key: str
) -> None:
    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_home(tmp_path, key)

    message = str(caught.value)
    assert message.startswith("SOA_CIPHER_KEY is not a cipher key (expected 32 random bytes "
                              "in URL-safe base64, 44 characters; make one with: python -c ")
    assert "base64.urlsafe_b64encode(os.urandom(32))" in message
    assert key not in message
    assert "\n" not in message
    assert not tmp_path.joinpath("cipher.key").exists()


def test_the_setting_is_used_in_place_of_the_key_file(tmp_path: Path) -> None:
    key = f"  {new_key()}\n"
    box = CipherBox.from_home(tmp_path, key)

    token = box.encrypt(CREDENTIAL, AAD)

    assert CipherBox.from_key(key).decrypt(token, AAD) == CREDENTIAL
    assert not tmp_path.joinpath("cipher.key").exists()


def test_an_empty_or_spoilt_key_file_is_named_in_the_message(tmp_path: Path) -> None:
    (tmp_path / "cipher.key").write_text("\n")
    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_home(tmp_path, None).encrypt(CREDENTIAL)
    assert str(caught.value) == (
        f"the key file {tmp_path / 'cipher.key'} is empty; restore it from a backup or the "
        "station that stored the credentials"
    )

    (tmp_path / "cipher.key").write_text("abc")
    with pytest.raises(CipherKeyError) as caught:
        CipherBox.from_home(tmp_path, None).encrypt(CREDENTIAL)
    assert str(caught.value).startswith(f"the key file {tmp_path / 'cipher.key'} is not a cipher key")


def test_threads_share_one_key_file(tmp_path: Path) -> None:
    home = tmp_path / "soa-home"
    box = CipherBox.from_home(home, None)
    tokens: list[str] = []

    def encrypt() -> None:
        tokens.append(box.encrypt(CREDENTIAL, AAD))

    threads = [threading.Thread(target=encrypt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    fresh = CipherBox.from_home(home, None)
    assert [fresh.decrypt(token, AAD) for token in tokens] == [CREDENTIAL] * 8
