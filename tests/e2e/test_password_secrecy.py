"""The password is never stored, logged or printed: searched for everywhere it could leak."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.e2e.cli import Soa
from tests.e2e.conftest import PLUGINS
from tests.support import PASSWORD


def encodings(secret: str) -> list[bytes]:
    return [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("latin-1", "ignore")]


def test_password_is_nowhere(soa: Soa, tmp_path: Path) -> None:
    checked = tmp_path / "checked.txt"  # outside SOA_HOME
    soa.extra_env.update(PYTHONPATH=PLUGINS, SOA_TEST_CHECKED_FILE=str(checked),
                         SOA_CREDENTIAL_CHECKER="soa_test_checkers:RecordingChecker")
    outputs = []

    def configure(station: str, account: str, exit_code: int) -> None:
        result = soa.run(station, "configure", "account", account, "--password-stdin",
                         stdin=PASSWORD + "\n")
        assert result.returncode == exit_code, (account, result.stderr)
        outputs.append(result)

    configure("BIURO", "FIRMA\\soa", 0)
    configure("KASA", "FIRMA\\", 2)  # refused before the password is asked for
    soa.start("BIURO")
    configure("KASA", "FIRMA\\soa", 2)  # runs on BIURO: refused before the password
    configure("BIURO", "FIRMA\\soa2", 0)
    configure("BIURO", "FIRMA\\echo", 2)  # the checker fails with the password in its error
    for args in (["status", "--json"], ["configure", "show", "--json"], ["logs", "--json"]):
        outputs.append(soa.run("BIURO", *args))
    soa.ok("BIURO", "stop")

    # Check that the calls counted handed the password over to the credential check.
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert checked.read_text().splitlines() == [
        f"FIRMA\\soa {digest}", f"FIRMA\\soa2 {digest}", f"FIRMA\\echo {digest}",
    ]

    # Check every output of the commands.
    for result in outputs:
        assert PASSWORD not in result.stdout and PASSWORD not in result.stderr
    # Check every file under SOA_HOME: the SQLite store, its WAL and the host's log.
    files = [path for path in soa.home.rglob("*") if path.is_file()]
    assert any(path.name.startswith("host-") for path in files)
    for path in files:
        content = path.read_bytes()
        for needle in encodings(PASSWORD):
            assert needle not in content, path
    # Check every table of the PostgreSQL database.
    if soa.database_url:
        url = make_url(soa.database_url)
        dump = subprocess.run(
            ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", "--data-only", url.database or ""],
            capture_output=True, check=True,
        ).stdout
        assert b"soa_events" in dump
        for needle in encodings(PASSWORD):
            assert needle not in dump
