"""The password is never stored, logged or printed: searched for everywhere it could leak."""

from __future__ import annotations

import subprocess

from sqlalchemy.engine import make_url

from tests.e2e.cli import Soa
from tests.support import PASSWORD


def encodings(secret: str) -> list[bytes]:
    return [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("latin-1", "ignore")]


def test_password_is_nowhere(soa: Soa) -> None:
    outputs = []
    outputs.append(soa.run("BIURO", "configure", "account", "FIRMA\\soa", "--password-stdin",
                           stdin=PASSWORD + "\n"))
    outputs.append(soa.run("KASA", "configure", "account", "FIRMA\\", "--password-stdin",
                           stdin=PASSWORD + "\n"))
    soa.start("BIURO")
    outputs.append(soa.run("KASA", "configure", "account", "FIRMA\\soa", "--password-stdin",
                           stdin=PASSWORD + "\n"))
    outputs.append(soa.run("BIURO", "configure", "account", "FIRMA\\soa2", "--password-stdin",
                           stdin=PASSWORD + "\n"))
    for args in (["status", "--json"], ["configure", "show", "--json"], ["logs", "--json"]):
        outputs.append(soa.run("BIURO", *args))
    soa.ok("BIURO", "stop")

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
