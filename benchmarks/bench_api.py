"""Latency of GET /api/status at a steady request rate, beside a bare Starlette endpoint.

The host is a real one, started with ``soa start``; the bare endpoint is under the same
load, measured alternately.

Run from the repository root::

    .venv/bin/python benchmarks/bench_api.py               # full run (SQLite + PostgreSQL)
    .venv/bin/python benchmarks/bench_api.py --quick       # smoke run, about a minute
    .venv/bin/python benchmarks/bench_api.py --no-postgres # SQLite only

For each store the script sets up a fresh ``SOA_HOME`` (SQLite: the embedded file;
PostgreSQL: a database ``soa_bench_<random>`` created for the run and dropped at the
end), configures the service, adds two companies with two daily tasks each and starts
a real host with ``soa start`` (API on a free port). A bare Starlette app (``GET /``
returning a constant JSON) runs in a process of its own, served by uvicorn exactly as
the host serves its API (the engine's ``ApiServer``: one worker on a thread, log level
warning, no access log). A separate load process (this script with ``--load``) sends
requests at a fixed rate (open loop: request i is due at start + i/rate, and its
latency is measured from that moment, so a slow answer delays nobody's clock) over a
pool of keep-alive HTTP/1.1 connections. The engine and the bare endpoint are measured
alternately, round after round. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STATION = "BENCH"
ENGINE_PATH = "/api/status"
BARE_PATH = "/"
TARGET_P99_MS = 20.0
REQUEST_TIMEOUT_SECONDS = 10.0
COMPANIES = {
    "Firma A": [("recurring_invoices", "Faktury", "06:00"), ("dunning", "Windykacja", "07:00")],
    "Firma B": [("invoice_mailing", "Wysyłka faktur", "06:30"),
                ("task_reminders", "Przypomnienia", "08:00")],
}
BARE_BODY = {
    "state": "running",
    "station": STATION,
    "text": "Usługa jest uruchomiona na stanowisku BENCH.",
    "warnings": [],
}
"""What the bare endpoint returns: a constant of about the size of the status JSON."""


def say(message: str) -> None:
    print(message, flush=True)


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the load process ---------------------------------------------------------------------


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        import socket

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; return the status and the body."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    closing = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            closing = True
    if length is None:
        raise RuntimeError("response without Content-Length")
    body = await reader.readexactly(length)
    if closing:
        raise ConnectionResetError("server closed the connection")
    return status, body


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    parts = urlsplit(spec["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = [f"GET {spec['path']} HTTP/1.1", f"Host: {host}:{port}",
               "Accept: application/json", "User-Agent: soa-bench-api"]
    if spec.get("token"):
        headers.append(f"Authorization: Bearer {spec['token']}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    rate, connections = float(spec["rate"]), int(spec["connections"])
    warmup_n = round(rate * spec["warmup"])
    timed_n = round(rate * spec["seconds"])
    total = warmup_n + timed_n
    loop = asyncio.get_running_loop()
    clock = loop.time  # time.monotonic

    # Open the pool and check it with one untimed request per connection.
    pool = []
    for _ in range(connections):
        reader, writer = await _open(host, port)
        status, body = await _exchange(reader, writer, request)
        if status != 200:
            raise RuntimeError(f"check request: HTTP {status}: {body[:200]!r}")
        pool.append((reader, writer))
    check_body = body.decode(errors="replace")

    sent_at = [math.nan] * total
    done_at = [math.nan] * total
    statuses = [0] * total
    errors: dict[str, int] = {}
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    max_waiting = 0
    interval = 1.0 / rate
    start = clock() + 0.2

    def due(i: int) -> float:
        return start + i * interval

    window_start, window_end = due(warmup_n), due(total)
    deadline = window_end + float(spec["grace"])

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            i = await queue.get()
            if i is None or clock() > deadline:
                writer.close()
                return
            sent_at[i] = clock()
            try:
                status, _ = await asyncio.wait_for(
                    _exchange(reader, writer, request), REQUEST_TIMEOUT_SECONDS
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError,
                    asyncio.LimitOverrunError, RuntimeError, ValueError, IndexError) as error:
                done_at[i] = clock()
                key = type(error).__name__
                errors[key] = errors.get(key, 0) + 1
                writer.close()
                try:
                    reader, writer = await _open(host, port)
                except OSError as reopen:
                    key = f"reconnect {type(reopen).__name__}"
                    errors[key] = errors.get(key, 0) + 1
                    await asyncio.sleep(0.05)
                    with contextlib.suppress(OSError):
                        reader, writer = await _open(host, port)
                continue
            done_at[i] = clock()
            statuses[i] = status

    async def dispatch() -> None:
        nonlocal max_waiting
        i = 0
        while i < total:
            now = clock()
            while i < total and due(i) <= now:
                queue.put_nowait(i)
                i += 1
            max_waiting = max(max_waiting, queue.qsize())
            if i < total:
                await asyncio.sleep(max(0.0, due(i) - clock()))
        for _ in pool:
            queue.put_nowait(None)

    cpu_before = os.times()
    wall_before = clock()
    workers = [asyncio.create_task(worker(r, w)) for r, w in pool]
    await dispatch()
    # Whatever is not answered by the deadline (the end of the window + grace) stays
    # unanswered: a saturated server would otherwise be drained for minutes.
    _, pending = await asyncio.wait(workers, timeout=max(0.0, deadline - clock()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    cpu_after = os.times()
    wall = clock() - wall_before

    latencies, unanswered, lags = [], [], []
    answered_in_window = 0
    bad_status: dict[str, int] = {}
    timed_errors = 0
    for i in range(warmup_n, total):
        if not math.isnan(sent_at[i]):
            lags.append(sent_at[i] - due(i))
        if statuses[i] == 200:
            latencies.append(done_at[i] - due(i))
        elif math.isnan(done_at[i]):
            unanswered.append(deadline - due(i))  # a lower bound of its latency
        else:
            timed_errors += 1
            if statuses[i]:
                key = f"HTTP {statuses[i]}"
                bad_status[key] = bad_status.get(key, 0) + 1
        if window_start <= done_at[i] <= window_end:
            answered_in_window += 1
    return {
        "path": spec["path"],
        "rate": rate,
        "connections": connections,
        "warmup_requests": warmup_n,
        "timed_requests": timed_n,
        "sent": len(lags),
        "ok": len(latencies),
        "errors": timed_errors,
        "unanswered": len(unanswered),
        "error_kinds": {**errors, **bad_status},
        "answered_per_second": answered_in_window / (window_end - window_start),
        "latencies_s": latencies,
        "unanswered_lower_bounds_s": unanswered,
        "send_lags_s": lags,
        "max_waiting_for_connection": max_waiting,
        "load_cpu_cores": ((cpu_after.user - cpu_before.user)
                           + (cpu_after.system - cpu_before.system)) / wall,
        "check_body": check_body[:500],
    }


def load_main(spec: dict[str, Any]) -> int:
    try:
        result = asyncio.run(_load(spec))
    except KeyboardInterrupt:
        return 130
    Path(spec["output"]).write_text(json.dumps(result))
    return 0


# -- the bare server process --------------------------------------------------------------


def bare_server_main() -> int:
    """Serve the bare app with the engine's ApiServer (same uvicorn settings and thread);
    print the URL, then serve until stdin closes or SIGTERM."""
    import logging
    import threading

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from engine.service_host.api.server import ApiServer, bind

    async def constant(request: Request) -> JSONResponse:
        return JSONResponse(BARE_BODY)

    app = Starlette(routes=[Route(BARE_PATH, constant)])
    server = ApiServer(app, bind("127.0.0.1", 0), logging.getLogger("bench-bare"))  # type: ignore[arg-type]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    server.start()
    print(server.url, flush=True)
    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    stop.wait()
    server.stop()
    return 0


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--bare-server"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the bare server did not start (exit {process.poll()})")
        wait_until_answers(url + BARE_PATH, None)
        yield url, process.pid
    finally:
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_answers(url: str, token: str | None, seconds: float = 15.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- the host -----------------------------------------------------------------------------


def soa(env: dict[str, str], *arguments: str, stdin: str | None = None) -> str:
    executable = Path(sys.executable).parent / "soa"
    done = subprocess.run([str(executable), *arguments], env=env, input=stdin,
                          capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"soa {' '.join(arguments)} failed ({done.returncode}): "
                           f"{done.stdout.strip()} {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    env: dict[str, str]
    url: str
    token: str
    pid: int
    home: Path
    on_postgres: bool


@contextlib.contextmanager
def running_host(store: str, database_url: str | None) -> Iterator[Host]:
    """A configured service with two companies and four daily tasks, started with
    ``soa start`` in a fresh SOA_HOME; stopped with ``soa stop`` at the end."""
    home = Path(tempfile.mkdtemp(prefix="soa_bench_api_"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
    env.update(SOA_HOME=str(home), SOA_STATION=STATION, SOA_API_BIND="127.0.0.1:0")
    if database_url:
        env["SOA_DATABASE_URL"] = database_url
    started = False
    pid: int | None = None
    try:
        soa(env, "configure", "account", "FIRMA\\soa", "--password-stdin", stdin="x\n")
        for company, tasks in COMPANIES.items():
            soa(env, "companies", "add", company)
            for kind, name, at in tasks:
                soa(env, "tasks", "add", kind, "--company", company, "--name", name,
                    "--daily", at, "--json")
        say(f"[{store}] {len(COMPANIES)} companies, "
            f"{sum(map(len, COMPANIES.values()))} daily tasks; soa start ...")
        started = True
        pid = started_pid(soa(env, "start"))
        status = json.loads(soa(env, "status", "--json"))
        if status.get("state") != "running" or not status.get("api_url"):
            raise RuntimeError(f"the host does not run with an API: {status}")
        pid = int(status["host"]["pid"])
        token = soa(env, "api-token").strip()
        host = Host(env, status["api_url"], token, pid, home, database_url is not None)
        wait_until_answers(host.url + ENGINE_PATH, token)
        say(f"[{store}] host pid {host.pid}, API {host.url}")
        yield host
    finally:
        try:
            if started:
                stop_host(store, env, pid)
        finally:
            shutil.rmtree(home, ignore_errors=True)


def started_pid(output: str) -> int | None:
    """The host's pid in what ``soa start`` printed: ``started (process N, ...)``."""
    found = re.search(r"\(process (\d+)", output)
    return int(found.group(1)) if found else None


def stop_host(store: str, env: dict[str, str], pid: int | None) -> None:
    """``soa stop``; if that fails or is interrupted (a second Ctrl-C), SIGTERM to the host
    process this script started, then wait for it to end."""
    import psutil

    interrupted = False
    try:
        say(f"[{store}] {soa(env, 'stop').strip()}")
    except RuntimeError as error:
        say(f"[{store}] soa stop: {error}")
    except KeyboardInterrupt:
        interrupted = True
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if any("engine.service_host" in part for part in process.cmdline()):
                say(f"[{store}] the host (pid {pid}) still runs: SIGTERM")
                process.terminate()
                process.wait(30)
    if interrupted:
        raise KeyboardInterrupt


# -- PostgreSQL database of the run -------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, dict[str, str]] | None]:
    """Create ``soa_bench_<random>`` on the server of ``admin_url``; drop it at the end.

    Yield the database's SQLAlchemy URL and the server's version and settings, or None
    if the server cannot be reached.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    connect_args: dict[str, Any] = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "dbname": url.database or "postgres",
        "autocommit": True,
        "connect_timeout": 5,
    }
    if url.password:
        connect_args["password"] = url.password
    where = f"{connect_args['host']}:{connect_args['port']}"
    try:
        admin = psycopg.connect(**connect_args)
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        say(f"PostgreSQL SKIPPED: cannot connect to {where} ({reason})")
        yield None
        return
    name = f"soa_bench_{secrets.token_hex(4)}"
    try:
        facts = {}
        for setting in ("server_version", "fsync", "synchronous_commit"):
            row = admin.execute(f"SHOW {setting}").fetchone()
            facts[setting] = str(row[0]) if row else "?"
        admin.execute(f'CREATE DATABASE "{name}"')
        say(f"PostgreSQL {facts['server_version']} at {where}: created database {name}")
        bench_url = url.set(drivername="postgresql+psycopg", database=name)
        try:
            yield bench_url.render_as_string(hide_password=False), facts
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"PostgreSQL: dropped database {name}")
    finally:
        admin.close()


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Round:
    target: str
    result: dict[str, Any]
    server_cpu_cores: float
    machine_busy: float
    postgres_cpu_cores: float | None = None

    @property
    def samples(self) -> list[tuple[float, bool]]:
        """(latency, is a lower bound) of every timed request but the errors; a request
        unanswered by the deadline counts with the time from its due moment to the
        deadline, a lower bound of its latency."""
        return sorted([(s, False) for s in self.result["latencies_s"]]
                      + [(s, True) for s in self.result["unanswered_lower_bounds_s"]])

    def pct(self, p: float) -> tuple[float, bool]:
        """The nearest-rank percentile, and whether it is only a lower bound: it is
        exact unless an unanswered request's bound is at most the value (its real
        latency, above its bound, might then rank below or above it)."""
        ordered = self.samples
        if not ordered:
            return math.inf, True
        value = ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1][0]
        bounds = self.result["unanswered_lower_bounds_s"]
        return value, bool(bounds) and min(bounds) <= value

    def summary(self) -> dict[str, Any]:
        r = self.result
        lat, lags = r["latencies_s"], r["send_lags_s"]
        figures: dict[str, Any] = {}
        for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)):
            value, lower_bound = self.pct(p)
            figures[f"{name}_ms"] = round(value * 1e3, 3)
            figures[f"{name}_is_lower_bound"] = lower_bound
        answered = r["answered_per_second"]
        return {
            "target": self.target,
            "timed_requests": r["timed_requests"],
            "sent": r["sent"],
            "ok": r["ok"],
            "errors": r["errors"],
            "unanswered": r["unanswered"],
            "error_kinds": r["error_kinds"],
            "answered_per_second": round(answered, 2),
            **figures,
            "mean_ok_ms": round(statistics.fmean(lat) * 1e3, 3) if lat else None,
            "send_lag_p50_ms": round(percentile(lags, 50) * 1e3, 3) if lags else None,
            "send_lag_p99_ms": round(percentile(lags, 99) * 1e3, 3) if lags else None,
            "send_lag_max_ms": round(max(lags) * 1e3, 3) if lags else None,
            "max_waiting_for_connection": r["max_waiting_for_connection"],
            "server_cpu_cores": round(self.server_cpu_cores, 3),
            "server_cpu_ms_per_answer": round(self.server_cpu_cores / answered * 1e3, 3)
            if answered else None,
            "load_cpu_cores": round(r["load_cpu_cores"], 3),
            "postgres_cpu_cores": None if self.postgres_cpu_cores is None
            else round(self.postgres_cpu_cores, 3),
            "machine_busy_fraction": round(self.machine_busy, 3),
            "latencies_ms": [round(x * 1e3, 3) for x in lat],
            "unanswered_lower_bounds_ms": [round(x * 1e3, 1)
                                           for x in r["unanswered_lower_bounds_s"]],
        }


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds used so far by each process of the local PostgreSQL server."""
    import psutil

    seconds = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
    return seconds


def measure(target: str, url: str, path: str, token: str | None, pid: int,
            args: argparse.Namespace, work: Path, *, watch_postgres: bool = False) -> Round:
    """One round: a fresh load process drives ``url + path`` for warm-up + seconds."""
    import psutil

    output = work / f"load-{secrets.token_hex(4)}.json"
    spec = {"url": url, "path": path, "token": token, "rate": args.rate,
            "seconds": args.seconds, "warmup": args.warmup, "grace": args.grace,
            "connections": args.connections, "output": str(output)}
    server = psutil.Process(pid)
    postgres0 = postgres_cpu_seconds() if watch_postgres else {}
    cpu0, wall0, machine0 = server.cpu_times(), time.monotonic(), psutil.cpu_times()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load", json.dumps(spec)],
        cwd=REPO, check=False,
    )
    cpu1, wall1, machine1 = server.cpu_times(), time.monotonic(), psutil.cpu_times()
    postgres1 = postgres_cpu_seconds() if watch_postgres else {}
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed ({done.returncode})")
    result = json.loads(output.read_text())
    output.unlink()
    server_cpu = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (wall1 - wall0)
    idle = (machine1.idle + machine1.iowait) - (machine0.idle + machine0.iowait)
    total = sum(machine1) - sum(machine0)
    postgres_cpu = sum(used - postgres0.get(pid, 0.0) for pid, used in postgres1.items()) \
        / (wall1 - wall0) if watch_postgres else None
    return Round(target, result, server_cpu, 1 - idle / total if total > 0 else math.nan,
                 postgres_cpu)


def ms_text(value: float, lower_bound: bool = False, digits: int = 2) -> str:
    return ("≥" if lower_bound else "") + f"{value:,.{digits}f}"


def describe(round_: Round) -> str:
    s = round_.summary()

    def f(name: str) -> str:
        return ms_text(s[f"{name}_ms"], s[f"{name}_is_lower_bound"])

    unanswered = f", {s['unanswered']} unanswered" if s["unanswered"] else ""
    postgres = "" if s["postgres_cpu_cores"] is None else \
        f", PostgreSQL {s['postgres_cpu_cores']:.2f} cores"
    return (f"{s['answered_per_second']:.0f}/s, {s['errors']} errors{unanswered}, p50 {f('p50')} "
            f"p90 {f('p90')} p99 {f('p99')} max {f('max')} ms; server CPU "
            f"{s['server_cpu_cores']:.2f} cores ({s['server_cpu_ms_per_answer']} ms per "
            f"answer), load process {s['load_cpu_cores']:.2f}{postgres}, machine busy "
            f"{s['machine_busy_fraction']:.0%}; send lag p99 {s['send_lag_p99_ms']} ms, at "
            f"most {s['max_waiting_for_connection']} requests waiting for a connection")


def profile_round(store: str, host: Host, args: argparse.Namespace, work: Path) -> \
        dict[str, Any]:
    """One more engine round with py-spy recording the host (not counted)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or \
        shutil.which("py-spy")
    if py_spy is None:
        say(f"[{store}] --py-spy: py-spy not found (.venv/bin/pip install py-spy)")
        return {}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"api-{stamp}-{store.lower()}-host.pyspy.txt"
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(host.pid), "--rate", "200", "--format", "raw",
         "--threads", "--gil", "--nonblocking",
         "--duration", str(math.ceil(args.warmup + args.seconds + 1)), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        round_ = measure("engine (py-spy)", host.url, ENGINE_PATH, host.token, host.pid,
                         args, work, watch_postgres=host.on_postgres)
    finally:
        _, error = recorder.communicate(timeout=args.warmup + args.seconds + 60)
    if recorder.returncode != 0:
        say(f"[{store}] py-spy failed: {error.strip().splitlines()[-1] if error.strip() else ''}")
    say(f"[{store}] engine under py-spy (not counted): {describe(round_)}")
    say(f"[{store}] py-spy stacks (collapsed, per thread, samples holding the GIL): {out}")
    return {"profile": str(out), "round": round_.summary()}


@dataclass
class StoreResult:
    store: str
    server: str
    rounds: list[Round] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    host_log_tail: list[str] = field(default_factory=list)

    def of(self, target: str) -> list[Round]:
        return [r for r in self.rounds if r.target == target]


def run_store(store: str, server: str, database_url: str | None, bare: tuple[str, int],
              args: argparse.Namespace, work: Path) -> StoreResult:
    result = StoreResult(store, server)
    with running_host(store, database_url) as host:
        say(f"[{store}] GET {ENGINE_PATH} answers: "
            f"{wait_until_answers(host.url + ENGINE_PATH, host.token)}")
        for n in range(1, args.rounds + 1):
            for target, url, path, token, pid in (
                ("engine", host.url, ENGINE_PATH, host.token, host.pid),
                ("bare", bare[0], BARE_PATH, None, bare[1]),
            ):
                round_ = measure(target, url, path, token, pid, args, work,
                                 watch_postgres=host.on_postgres)
                result.rounds.append(round_)
                say(f"[{store}] round {n}/{args.rounds} {target:6}: {describe(round_)}")
        if args.py_spy:
            result.profile = profile_round(store, host, args, work)
        log = host.home / "logs" / f"host-{STATION}.log"
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()
            result.host_log_tail = [line for line in lines
                                    if " WARNING " in line or " ERROR " in line][-20:]
    return result


def medians(rounds: list[Round]) -> dict[str, Any]:
    """Medians of the rounds' figures (a figure is a lower bound if its median is)."""
    summaries = [r.summary() for r in rounds]

    def med(key: str) -> float:
        return float(statistics.median(s[key] for s in summaries))

    def med_bound(name: str) -> tuple[float, bool]:
        ordered = sorted((s[f"{name}_ms"], s[f"{name}_is_lower_bound"]) for s in summaries)
        return ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else (
            (ordered[len(ordered) // 2 - 1][0] + ordered[len(ordered) // 2][0]) / 2,
            ordered[len(ordered) // 2 - 1][1] or ordered[len(ordered) // 2][1])

    result: dict[str, Any] = {
        "rounds": len(summaries),
        "sent": sum(s["sent"] for s in summaries),
        "timed_requests": sum(s["timed_requests"] for s in summaries),
        "errors": sum(s["errors"] for s in summaries),
        "unanswered": sum(s["unanswered"] for s in summaries),
        "rate": med("answered_per_second"),
        "server_cpu_cores": med("server_cpu_cores"),
        "server_cpu_ms_per_answer": med("server_cpu_ms_per_answer"),
        "p99_range_ms": [min(s["p99_ms"] for s in summaries),
                         max(s["p99_ms"] for s in summaries)],
    }
    for name in ("p50", "p90", "p99"):
        result[f"{name}_ms"], result[f"{name}_is_lower_bound"] = med_bound(name)
    worst = max(summaries, key=lambda s: s["max_ms"])
    result["max_ms"], result["max_is_lower_bound"] = worst["max_ms"], worst["max_is_lower_bound"]
    return result


def target_met(engine: dict[str, Any]) -> bool:
    return (engine["p99_ms"] < TARGET_P99_MS and not engine["p99_is_lower_bound"]
            and engine["errors"] == 0 and engine["unanswered"] == 0)


def ratio(engine: dict[str, Any], bare: dict[str, Any], name: str) -> str:
    return ("≥" if engine[f"{name}_is_lower_bound"] else "") + \
        f"{engine[f'{name}_ms'] / bare[f'{name}_ms']:,.1f}x"


def print_table(results: list[StoreResult]) -> None:
    header = ["store", "target", "sent", "rate/s", "errors", "p50 ms", "p90 ms",
              "p99 ms (range)", "max ms", "CPU ms/req", "p50 ratio", "p99 ratio"]
    lines = [header]
    for result in results:
        engine, bare = medians(result.of("engine")), medians(result.of("bare"))
        for target, m in (("engine GET /api/status", engine), ("bare Starlette GET /", bare)):
            low, high = m["p99_range_ms"]
            is_engine = m is engine
            errors = str(m["errors"]) + (f" + {m['unanswered']:,} unanswered"
                                         if m["unanswered"] else "")
            lines.append([
                result.store, target, f"{m['sent']:,}", f"{m['rate']:.1f}", errors,
                ms_text(m["p50_ms"], m["p50_is_lower_bound"]),
                ms_text(m["p90_ms"], m["p90_is_lower_bound"]),
                ms_text(m["p99_ms"], m["p99_is_lower_bound"])
                + f" ({low:,.1f}-{high:,.1f})" * (m["rounds"] > 1),
                ms_text(m["max_ms"], m["max_is_lower_bound"], 1),
                f"{m['server_cpu_ms_per_answer']:.2f}",
                ratio(engine, bare, "p50") if is_engine else "",
                ratio(engine, bare, "p99") if is_engine else "",
            ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True)))

    say(fmt(header))
    say("  ".join("-" * w for w in widths))
    for line in lines[1:]:
        say(fmt(line))


# -- main ---------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    digest = hashlib.sha256()
    for path in sorted((REPO / "engine").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        **{name: package(name) for name in ("uvicorn", "starlette", "fastapi", "h11",
                                            "httptools", "uvloop", "sqlalchemy", "psycopg")},
        "engine_source_sha256": digest.hexdigest()[:12],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 5 s after 2 s of warm-up per target")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="requests per second (default %(default)s)")
    parser.add_argument("--seconds", type=float, help="timed seconds per round (default 30)")
    parser.add_argument("--warmup", type=float,
                        help="untimed seconds at the same rate first (default 5)")
    parser.add_argument("--rounds", type=int, help="rounds per target (default 3)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections of the load process (default %(default)s)")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="seconds after the window to wait for answers; later ones count "
                             "as unanswered (default %(default)s)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="URL of an existing database on the PostgreSQL server, used to "
                             "create and drop the run's database (default: %(default)s)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--py-spy", action="store_true",
                        help="after the rounds, one more engine round (not counted) with "
                             "py-spy recording the host; stacks kept in benchmarks/results/")
    parser.add_argument("--no-json", action="store_true", help="do not write results JSON")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = {"seconds": 5.0 if args.quick else 30.0, "warmup": 2.0 if args.quick else 5.0,
                "rounds": 1 if args.quick else 3}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rate <= 0 or args.seconds <= 0 or args.warmup < 0 or args.rounds < 1 \
            or args.connections < 1 or args.grace < 0:
        parser.error("--rate, --seconds, --rounds and --connections must be positive, "
                     "--warmup and --grace not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        return load_main(json.loads(args.load))
    if args.bare_server:
        return bare_server_main()

    started = time.perf_counter()
    facts = machine_facts()
    say(f"machine: {facts['cores']} cores ({facts['usable_cores']} usable), "
        f"{facts['platform']}, Python {facts['python']}, SQLite {facts['sqlite']}, "
        f"uvicorn {facts['uvicorn']} (httptools {facts['httptools']}, uvloop "
        f"{facts['uvloop']}), Starlette {facts['starlette']}, FastAPI {facts['fastapi']}; "
        f"engine source sha256 {facts['engine_source_sha256']}")
    load = os.getloadavg()
    say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    say(f"run: {args.rate:g} requests/s over {args.connections} keep-alive connections, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s timed per round, {args.rounds} "
        f"round(s) per target, engine and bare alternately"
        f"{' (--quick)' if args.quick else ''}")
    say("")

    results: list[StoreResult] = []
    skipped: dict[str, str] = {}
    postgres_facts: dict[str, str] = {}
    work = Path(tempfile.mkdtemp(prefix="soa_bench_api_load_"))
    try:
        with bare_server() as bare:
            say(f"bare Starlette app: pid {bare[1]}, {bare[0]}{BARE_PATH}")
            if not args.no_sqlite:
                results.append(run_store("SQLite", f"SQLite {sqlite3.sqlite_version}", None,
                                         bare, args, work))
                say("")
            if not args.no_postgres:
                with postgres_database(args.postgres_url) as database:
                    if database is None:
                        skipped["PostgreSQL"] = "server unreachable"
                    else:
                        url, postgres_facts = database
                        say(f"PostgreSQL fsync={postgres_facts['fsync']}, "
                            f"synchronous_commit={postgres_facts['synchronous_commit']}")
                        results.append(run_store(
                            "PostgreSQL", f"PostgreSQL {postgres_facts['server_version']}",
                            url, bare, args, work))
                say("")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.perf_counter() - started
    say(f"=== GET {ENGINE_PATH} of the host vs a bare Starlette endpoint, {args.rate:g} "
        f"requests/s open loop over {args.connections} connections, {args.seconds:g} s per "
        f"round; medians of {args.rounds} round(s) ===")
    say("")
    met: dict[str, bool] = {}
    if results:
        print_table(results)
        say("")
        for result in results:
            engine = medians(result.of("engine"))
            met[result.store] = target_met(engine)
            say(f"{result.store}: target p99 < {TARGET_P99_MS:g} ms at {args.rate:g}/s: "
                + ("met" if met[result.store] else "NOT MET")
                + f" (median p99 {ms_text(engine['p99_ms'], engine['p99_is_lower_bound'])} ms, "
                f"{engine['errors']} errors, {engine['unanswered']} unanswered)")
            for line in result.host_log_tail[:2]:
                say(f"  host log: {line}")
    for store, reason in skipped.items():
        say(f"{store}: skipped ({reason})")
    say("")
    say("latency = response fully read minus the moment the request was due (start + "
        "i/rate), so waiting for a free connection and a late send count. sent = timed "
        "requests sent (all rounds); rate/s = answers received within the timed window / "
        f"its length; errors = non-200 answers and failed exchanges; unanswered = not "
        f"answered within {args.grace:g} s after the window, counted in the percentiles with "
        "the time from their due moment to then (a lower bound: figures marked ≥). p50/p90/"
        "p99 = medians of the rounds' nearest-rank percentiles (range: the rounds' p99); max "
        "= the largest of all rounds; CPU ms/req = CPU time of the server process (the "
        "whole host: API, scheduler, heartbeat) per answer; ratio = engine / bare.")
    load_end = os.getloadavg()
    say(f"total run time: {elapsed:.0f} s; load average at the end: {load_end[0]:.2f} "
        f"{load_end[1]:.2f} {load_end[2]:.2f}")

    if not args.no_json and results:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"api-{stamp}.json"
        path.write_text(json.dumps({
            "timestamp": stamp,
            "machine": facts,
            "postgres": postgres_facts,
            "arguments": {k: v for k, v in vars(args).items()
                          if k not in ("postgres_url", "load", "bare_server")},
            "target_p99_ms": TARGET_P99_MS,
            "target_met": met,
            "skipped": skipped,
            "total_seconds": elapsed,
            "stores": [{
                "store": r.store,
                "server": r.server,
                "engine": medians(r.of("engine")),
                "bare": medians(r.of("bare")),
                "rounds": [round_.summary() for round_ in r.rounds],
                "profile": r.profile,
                "host_log_warnings": r.host_log_tail,
            } for r in results],
        }, indent=1))
        say(f"results written to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
