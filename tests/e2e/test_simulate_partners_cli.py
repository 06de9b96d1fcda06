"""``soa simulate partners`` as a real process: it prints its URL, serves /_sim/state and
the partners, stops on SIGTERM; a bad ``--seed`` file is refused in one line (exit 2)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx

from tests.e2e.cli import SOA


def environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
    env["SOA_HOME"] = str(tmp_path / "home")
    return env


def test_simulate_partners_serves_until_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"esklep": {"orders": [{"id": "O1", "number": "ES/1"}]}}),
                    encoding="utf-8")
    process = subprocess.Popen([SOA, "simulate", "partners", "--port", "0", "--seed", str(seed)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(tmp_path))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        url = found.group(0)
        state = httpx.get(f"{url}/_sim/state", timeout=10).json()
        assert state["esklep"]["orders"][0]["status"] == "awaiting_confirmation"
        orders = httpx.get(f"{url}/esklep/orders", headers={"Authorization": "Bearer k"},
                           timeout=10).json()
        assert [order["id"] for order in orders["orders"]] == ["O1"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_bad_seed_file_is_refused_in_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"esklep": {"orders": [1, 2]}}', encoding="utf-8")
    result = subprocess.run([SOA, "simulate", "partners", "--port", "0", "--seed", str(seed)],
                            capture_output=True, text=True, timeout=60,
                            env=environment(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "esklep.orders" in result.stderr and str(seed) in result.stderr
