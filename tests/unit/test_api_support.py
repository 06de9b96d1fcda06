"""The API's token, address setting and metrics, without a server."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pydantic
import pytest

from engine.adapters.api_token import ApiTokenError, api_token
from engine.adapters.metrics_prometheus import EngineMetrics, StoreFigures
from engine.ports.host import HostLease
from engine.settings import Settings, api_address


def test_token_file_is_made_once_with_owner_only_access(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = api_token(home, None)
    assert len(token) >= 40 and token == api_token(home, None)
    assert stat.S_IMODE((home / "api-token").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_configured_token_wins_and_a_short_one_is_refused(tmp_path: Path) -> None:
    assert api_token(tmp_path, " a-token-of-twenty-chars ") == "a-token-of-twenty-chars"
    assert not (tmp_path / "api-token").exists()
    with pytest.raises(ApiTokenError, match="SOA_API_TOKEN has 5 characters"):
        api_token(tmp_path, "short")
    (tmp_path / "api-token").write_text("tiny\n")
    with pytest.raises(ApiTokenError, match="delete the file"):
        api_token(tmp_path, None)


@pytest.mark.parametrize(("bind", "address"), [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)), ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:9000", ("::1", 9000)), ("localhost", None), (":80", None),
    ("host:65536", None), ("host:-1", None), ("host:http", None),
])
def test_api_address(bind: str, address: tuple[str, int] | None) -> None:
    assert api_address(bind) == address


def test_api_bind_setting(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).api_address == ("127.0.0.1", 8765)
    assert Settings(home=tmp_path, api_bind="").api_address is None
    with pytest.raises(pydantic.ValidationError, match="HOST:PORT"):
        Settings(home=tmp_path, api_bind="8765")


def test_metrics_count_attempts_and_read_the_store_at_each_scrape() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    counts = {("dunning", "succeeded"): 3}
    lease: list[HostLease | None] = [None]
    metrics = EngineMetrics()
    metrics.add_store_figures(StoreFigures(
        run_counts=lambda: counts, projection_lag=lambda: 7, lease=lambda: lease[0],
        now=lambda: now,
    ))
    metrics.attempt_ended("dunning", "succeeded", 0.2)
    metrics.attempt_ended("dunning", "timed_out", 30.0)
    metrics.request_answered("GET", "/api/status", 200, 0.003)
    text = metrics.exposition().decode()
    assert 'soa_runs{kind="dunning",status="succeeded"} 3.0' in text
    assert 'soa_attempts_total{kind="dunning",outcome="timed_out"} 1.0' in text
    assert 'soa_attempts_failed_total{kind="dunning"} 1.0' in text
    assert 'soa_run_duration_seconds_count{kind="dunning"} 2.0' in text
    assert "soa_projection_lag_events 7.0" in text
    assert "\nsoa_host_lease_age_seconds " not in text  # no host runs: no sample
    assert 'soa_api_requests_total{method="GET",route="/api/status",status="200"} 1.0' in text
    counts[("dunning", "failed")] = 1
    lease[0] = HostLease(session_id=uuid4(), station="BIURO", pid=1, started_at=now,
                         heartbeat_at=now - timedelta(seconds=4), expires_at=now)
    text = metrics.exposition().decode()
    assert 'soa_runs{kind="dunning",status="failed"} 1.0' in text
    assert "\nsoa_host_lease_age_seconds 4.0" in text


@pytest.mark.parametrize("text", ["1700000000", "-12.5", "-2.2250738585e-313", "1e9", "nan"])
def test_an_instant_is_never_a_number(text: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from engine.service_host.api.routes import Instant

    with pytest.raises(ValidationError, match="is not an ISO 8601 date and time"):
        TypeAdapter(Instant).validate_python(text)
    assert TypeAdapter(Instant).validate_python("2026-12-31T06:00:00+01:00").year == 2026
