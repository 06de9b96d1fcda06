"""Bad input and refusals: one line on stderr, exit code 2, nothing appended."""

from __future__ import annotations

import pytest

from tests.e2e.cli import Soa
from tests.support import PASSWORD

BAD_INPUT = [
    (["configure", "account", "no-backslash", "--password-stdin"], PASSWORD, "exactly one backslash"),
    (["configure", "account", "FIRMA\\", "--password-stdin"], PASSWORD, "empty user name"),
    (["configure", "account", "FIR*MA\\soa", "--password-stdin"], PASSWORD, "Windows forbids"),
    (["configure", "account", "FIRMA\\soa", "--password-stdin"], "", "must have a password"),
    (["configure", "account", "FIRMA\\soa"], "", "--password-stdin"),
    (["configure", "log-retention", "4"], "", "allowed are 5 to 30"),
    (["configure", "log-retention", "31"], "", "allowed are 5 to 30"),
    (["configure", "log-retention", "ten"], "", "is not a valid integer"),
    (["status", "--lang", "de"], "", "'pl', 'en'"),
    (["logs", "--status", "fatal"], "", "'ok', 'warning', 'error'"),
    (["logs", "--since", "yesterday"], "", "expected ISO 8601"),
    (["logs", "--limit", "0"], "", "1<=x<=100000"),
    (["--db", "mysql://root@localhost/x", "status"], "", "expected sqlite:///PATH or postgresql+psycopg"),
    (["--station", " ", "status"], "", "station name is empty"),
    (["start"], "", "not configured"),
    (["stop"], "", "not running"),
    (["frobnicate"], "", "No such command"),
]


@pytest.mark.parametrize(("args", "stdin", "fragment"), BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_appends_nothing(
    soa: Soa, args: list[str], stdin: str, fragment: str
) -> None:
    result = soa.run("BIURO", *args, stdin=stdin)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert soa.log_operations() == []
    assert soa.status("BIURO")["state"] == "not_configured"


def test_bad_settings_are_refused_in_one_line(soa: Soa) -> None:
    for env, fragment in [
        ({"SOA_EDITION": "enterprise"}, "SOA_EDITION"),
        ({"SOA_LEASE_SECONDS": "-1"}, "SOA_LEASE_SECONDS"),
        ({"SOA_HEARTBEAT_SECONDS": "4", "SOA_LEASE_SECONDS": "5"}, "at most half of"),
    ]:
        result = soa.run("BIURO", "status", **env)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and fragment in result.stderr


def test_refusals_while_running_elsewhere(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    soa.start("BIURO")
    before = soa.log_operations()
    for args, stdin, fragment in [
        (["configure", "account", "FIRMA\\soa", "--password-stdin"], PASSWORD, "running on station BIURO"),
        (["stop"], "", "stopped only on that station"),
        (["start"], "", "running on station BIURO"),
    ]:
        result = soa.run("KASA", *args, stdin=stdin)
        assert result.returncode == 2 and fragment in result.stderr, result
        assert result.stderr.count("\n") == 1
    result = soa.run("BIURO", "start")
    assert result.returncode == 2 and "already running" in result.stderr
    assert soa.log_operations() == before
    soa.ok("BIURO", "stop")


def test_cloud_edition_refuses_every_service_configuration_command(soa: Soa) -> None:
    for args in (["status"], ["configure", "show"], ["configure", "log-retention", "12"],
                 ["configure", "account", "FIRMA\\soa", "--password-stdin"], ["start"], ["stop"],
                 ["host"]):
        result = soa.run("BIURO", *args, stdin=PASSWORD, SOA_EDITION="cloud")
        assert result.returncode == 2, result
        assert result.stderr.strip() == (
            "error: the service configuration does not exist in the cloud edition; configure "
            "each automatic operation directly (SOA_EDITION=stationary enables it)"
        )
    assert soa.log_operations() == []


def test_json_shapes(soa: Soa) -> None:
    assert soa.status("BIURO") == {
        "state": "not_configured", "station": None, "text": "Usługa nie jest skonfigurowana.",
        "host": None, "warnings": [], "api_url": None,
    }
    soa.configure("BIURO", PASSWORD)
    soa.ok("KASA", "configure", "log-retention", "12")
    shown = soa.json("KASA", "configure", "show")
    assert set(shown) == {"account", "log_retention_days", "sql_server", "config_database",
                          "key_server", "edition", "station"}
    assert shown["account"] == "FIRMA\\soa" and shown["log_retention_days"] == 12
    assert shown["station"] == "BIURO" and shown["edition"] == "stationary"
    entries = soa.json("KASA", "logs")
    assert [entry["operation"] for entry in entries] == ["log_retention_changed", "configured"]
    assert set(entries[0]) == {"time", "station", "operation", "status", "message", "company",
                               "run_id"}
    assert entries[0]["station"] == "KASA" and entries[1]["station"] == "BIURO"
    assert soa.json("KASA", "logs", "--status", "error") == []
    assert len(soa.json("KASA", "logs", "--limit", "1")) == 1


def test_the_event_stores_own_settings_cannot_be_changed_through_soa_variables(soa: Soa) -> None:
    soa.configure("BIURO", PASSWORD)
    # eventsourcing would read SOA_* variables for an application named "soa".
    env = {"SOA_PERSISTENCE_MODULE": "eventsourcing.popo", "SOA_SQLALCHEMY_URL": "sqlite://"}
    result = soa.run("KASA", "status", **env)
    assert result.returncode == 0, result.stderr
    assert "BIURO" in result.stdout


def test_a_broken_credential_checker_refuses_only_the_account_setting(soa: Soa) -> None:
    env = {"SOA_CREDENTIAL_CHECKER": "no.such.module:Checker"}
    assert soa.run("BIURO", "status", **env).returncode == 0
    result = soa.run("BIURO", "configure", "account", "FIRMA\\soa", "--password-stdin",
                     stdin=PASSWORD, **env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: SOA_CREDENTIAL_CHECKER 'no.such.module:Checker' names nothing importable; "
        "expected module:attribute"
    )
    assert soa.log_operations() == []
