"""The station's box for short secrets (mail passwords, the SMS token)."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from engine.adapters.secret_box import SecretBox, SecretKeyError

SECRET = "Hasło-do-poczty-83!"
WRONG_KEY = ("the stored secret cannot be decrypted with this station's key (copy "
             "SOA_HOME/secret.key from the station that stored it, or set SOA_SECRET_KEY)")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def test_a_secret_comes_back_and_is_not_in_its_token(tmp_path: Path) -> None:
    box = SecretBox.from_home(tmp_path, None)

    first, second = box.encrypt(SECRET), box.encrypt(SECRET)

    assert SECRET not in first
    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == SECRET


def test_the_key_file_is_made_on_first_encryption_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "soa-home"
    box = SecretBox.from_home(home, None)
    assert not home.exists()

    token = box.encrypt(SECRET)

    key = (home / "secret.key").read_bytes()
    Fernet(key)  # a valid key
    assert SecretBox.from_home(home, None).decrypt(token) == SECRET
    SecretBox.from_home(home, None).encrypt("other")
    assert (home / "secret.key").read_bytes() == key
    assert [path.name for path in home.iterdir()] == ["secret.key"]


@posix_only
def test_the_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "soa-home"

    SecretBox.from_home(home, None).encrypt(SECRET)

    assert stat.S_IMODE(os.stat(home / "secret.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


def test_decrypting_without_a_key_file_neither_makes_one_nor_reveals_anything(
    tmp_path: Path,
) -> None:
    token = SecretBox.from_home(tmp_path / "a", None).encrypt(SECRET)
    box = SecretBox.from_home(tmp_path / "b", None)

    with pytest.raises(SecretKeyError) as caught:
        box.decrypt(token)

    assert str(caught.value) == WRONG_KEY
    assert not (tmp_path / "b").exists()


def test_another_key_cannot_decrypt(tmp_path: Path) -> None:
    token = SecretBox.from_home(tmp_path / "a", None).encrypt(SECRET)
    other = SecretBox.from_home(tmp_path / "b", None)
    other.encrypt("makes b's key")

    with pytest.raises(SecretKeyError) as caught:
        other.decrypt(token)

    assert str(caught.value) == WRONG_KEY
    assert SECRET not in str(caught.value) and token not in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        other.decrypt("not a token at all ąę")


def test_the_setting_replaces_the_key_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()

    token = SecretBox.from_home(tmp_path / "a", key).encrypt(SECRET)

    assert SecretBox.from_home(tmp_path / "b", f" {key}\n").decrypt(token) == SECRET
    assert Fernet(key.encode()).decrypt(token.encode()).decode() == SECRET
    assert not (tmp_path / "a").exists()
    assert SecretBox.from_key(key).decrypt(token) == SECRET


def test_a_malformed_setting_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_home(tmp_path, "too-short-secret-key")

    assert str(caught.value).startswith("SOA_SECRET_KEY is not a Fernet key")
    assert "too-short-secret-key" not in str(caught.value)


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("garbage")
    box = SecretBox.from_home(tmp_path, None)

    with pytest.raises(SecretKeyError, match=r"secret\.key is not a Fernet key"):
        box.encrypt(SECRET)


def test_concurrent_first_uses_share_one_key(tmp_path: Path) -> None:
    boxes = [SecretBox.from_home(tmp_path, None) for _ in range(8)]
    tokens: list[str] = []
    barrier = threading.Barrier(len(boxes))

    def encrypt(box: SecretBox) -> None:
        barrier.wait()
        tokens.append(box.encrypt(SECRET))

    threads = [threading.Thread(target=encrypt, args=(box,)) for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    reader = SecretBox.from_home(tmp_path, None)
    assert [reader.decrypt(token) for token in tokens] == [SECRET] * len(boxes)
    assert [path.name for path in tmp_path.iterdir()] == ["secret.key"]
