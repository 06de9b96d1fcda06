"""``soa simulate ksef`` as a real process: it prints its URL, serves /_sim and the KSeF
API under /v2, stops on SIGTERM; a bad option or a port in use is refused in one line
(exit 2)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx

from tests.e2e.cli import SOA


def environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
    env["SOA_HOME"] = str(tmp_path / "home")
    return env


def test_simulate_ksef_serves_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen([SOA, "simulate", "ksef", "--port", "0", "--latency", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(tmp_path))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found and found.group(1) != "0", line
        url = found.group(0)
        state = httpx.get(f"{url}/_sim/state", timeout=10).json()
        assert state["uploads"] == 0 and state["settings"]["latency_ms"] == 1
        token = httpx.post(f"{url}/_sim/tokens", json={"nip": "5261040828"}, timeout=10)
        assert token.status_code == 200 and token.json()["token"]
        keys = httpx.get(f"{url}/v2/security/public-key-certificates", timeout=10).json()
        assert len(keys) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_a_bad_option_is_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([SOA, "simulate", "ksef", "--port", "0", "--error-rate", "2"],
                            capture_output=True, text=True, timeout=60,
                            env=environment(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--error-rate" in result.stderr


def test_a_port_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([SOA, "simulate", "ksef", "--port", str(port)],
                                capture_output=True, text=True, timeout=60,
                                env=environment(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"port {port}" in result.stderr and "--port" in result.stderr
