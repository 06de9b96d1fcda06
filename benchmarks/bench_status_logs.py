"""Latency of ``status`` and of a page of the log list with 100,000 log entries.

Run from the repository root::

    .venv/bin/python benchmarks/bench_status_logs.py            # full run (SQLite + PostgreSQL)
    .venv/bin/python benchmarks/bench_status_logs.py --quick    # smoke run (10,000 entries)

For each store (SQLite file in a temp dir; PostgreSQL in a database created for
the run and dropped at the end) the script fills the event store with
LogRetentionChanged events, builds the projections once, then times, in the same
run and interleaved call by call, each engine query and a plain SQL select of
the same rows on the same SQLAlchemy engine. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import DateTime, Engine, bindparam, text
from sqlalchemy.engine import make_url

from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration
from engine.service_host.bootstrap import ApplicationServices, build_services
from engine.settings import Settings

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STATION = "BENCH"
EVENTS_PER_TRANSACTION = 1_000
PAGE = 100
# Long enough that the lease of the benchmark's own host session never expires mid-run.
LEASE_SECONDS = 300.0

PLAIN_VIEW = text("SELECT * FROM soa_service_view WHERE id = 1")
PLAIN_LEASE = text("SELECT * FROM soa_host_lease WHERE service = 'soa'")
PLAIN_PAGE = text(
    "SELECT * FROM soa_log_entries WHERE time >= :cutoff "
    f"ORDER BY time DESC, id DESC LIMIT {PAGE}"
).bindparams(bindparam("cutoff", type_=DateTime()))


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Series:
    """Latencies of one operation, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        return {
            "n": len(ordered),
            "p50_ms": round(self.p50 * 1e3, 4),
            "p99_ms": round(self.p99 * 1e3, 4),
            "min_ms": round(ordered[0] * 1e3, 4),
            "max_ms": round(ordered[-1] * 1e3, 4),
            "mean_ms": round(statistics.fmean(ordered) * 1e3, 4),
            "samples_ms": [round(s * 1e3, 4) for s in self.samples],
        }


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (with 15 samples p99 is the maximum)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def interleaved(
    engine_call: Callable[[], Any], plain_call: Callable[[], Any], iterations: int, warmup: int
) -> tuple[Series, Series]:
    """Time both calls alternately (A B A B ...) so noise hits both alike."""
    for _ in range(warmup):
        engine_call()
        plain_call()
    gc.collect()
    engine, plain = Series(), Series()
    clock = time.perf_counter
    for i in range(iterations):
        # Alternate which goes first so neither always runs on a "warm" connection.
        order = ((engine_call, engine), (plain_call, plain))
        if i % 2:
            order = order[::-1]
        for call, series in order:
            start = clock()
            call()
            series.samples.append(clock() - start)
    return engine, plain


@dataclass
class Row:
    store: str
    operation: str
    engine: Series
    plain: Series | None
    note: str = ""

    def cells(self) -> list[str]:
        e50, e99 = ms(self.engine.p50), ms(self.engine.p99)
        if self.plain is None:
            return [self.store, self.operation, e50, e99, "n/a", "n/a", "n/a"]
        ratio = self.engine.p50 / self.plain.p50
        return [
            self.store, self.operation, e50, e99,
            ms(self.plain.p50), ms(self.plain.p99), f"{ratio:.1f}x",
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "operation": self.operation,
            "note": self.note,
            "engine": self.engine.summary(),
            "plain_sql": self.plain.summary() if self.plain else None,
            "ratio_p50": (self.engine.p50 / self.plain.p50) if self.plain else None,
        }


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 10 else f"{seconds:.1f} s"


def print_table(rows: list[Row]) -> None:
    header = [
        "store", "operation", "engine p50", "engine p99",
        "plain SQL p50", "plain p99", "p50 ratio",
    ]
    lines = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for line in lines[1:]:
        print(fmt(line))


def say(message: str) -> None:
    print(message, flush=True)


# -- one store ---------------------------------------------------------------------------


@dataclass
class StoreResult:
    store: str
    url: str
    server: str
    log_entries: int = 0
    write_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    vacuum_seconds: float | None = None
    table_stats: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    rows: list[Row] = field(default_factory=list)
    plans: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "server": self.server,
            "events_written": self.events,
            "log_entries": self.log_entries,
            "event_writing_seconds": self.write_seconds,
            "event_writing_events_per_second": self.events / self.write_seconds,
            "catch_up_seconds": self.catch_up_seconds,
            "catch_up_events_per_second": self.events / self.catch_up_seconds,
            "vacuum_analyze_seconds": self.vacuum_seconds,
            "table_stats_after_load": self.table_stats,
            "query_plans": self.plans,
            "measurements": [row.as_json() for row in self.rows],
        }


def fill(services: ApplicationServices, events: int) -> tuple[float, float]:
    """Write ``events`` LogRetentionChanged events, then build the projections once.

    Return the seconds spent writing and catching up.
    """
    start = time.perf_counter()
    configuration: object = services.store.get(SERVICE_CONFIGURATION_ID)
    assert isinstance(configuration, ServiceConfiguration)
    for i in range(events):
        changed = configuration.set_log_retention(11 if i % 2 == 0 else 12, STATION)
        assert changed
        if (i + 1) % EVENTS_PER_TRANSACTION == 0:
            services.store.save(configuration)
    services.store.save(configuration)
    written = time.perf_counter() - start

    start = time.perf_counter()
    services.read_models.catch_up()
    caught_up = time.perf_counter() - start
    return written, caught_up


def count_log_entries(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM soa_log_entries")).scalar_one())


def postgres_table_stats(engine: Engine) -> list[dict[str, Any]]:
    """Live and dead rows and size of the engine's tables right after the load (PostgreSQL)."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) AS bytes "
            "FROM pg_stat_user_tables WHERE relname LIKE 'soa%' ORDER BY relname"
        )).all()
    return [dict(row._mapping) for row in rows]


def vacuum(engine: Engine) -> float:
    """VACUUM (ANALYZE) the database after the bulk load (PostgreSQL); return the seconds."""
    start = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
    return time.perf_counter() - start


def explain(engine: Engine, cutoff: datetime) -> dict[str, list[str]]:
    """The database's plan for the plain log page (for the JSON, to spot a sort)."""
    naive = cutoff.astimezone(UTC).replace(tzinfo=None)
    sql = (
        "SELECT * FROM soa_log_entries WHERE time >= :cutoff "
        f"ORDER BY time DESC, id DESC LIMIT {PAGE}"
    )
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("EXPLAIN QUERY PLAN " + sql).bindparams(
                    bindparam("cutoff", type_=DateTime())
                ),
                {"cutoff": naive},
            ).all()
            return {"log_page": [str(row[-1]) for row in rows]}
        rows = connection.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) " + sql).bindparams(
                bindparam("cutoff", type_=DateTime())
            ),
            {"cutoff": naive},
        ).all()
        return {"log_page": [str(row[0]) for row in rows]}


def bench_store(
    store: str,
    home: Path,
    database_url: str | None,
    args: argparse.Namespace,
    server: str,
) -> StoreResult:
    settings = Settings(
        home=home, station=STATION, database_url=database_url, lease_seconds=LEASE_SECONDS
    )
    services = build_services(settings)
    app = services.service
    engine = services.sql_engine
    result = StoreResult(store=store, url=settings.store_url, server=server)
    try:
        app.set_account("CORP\\svc", "pw")

        say(f"[{store}] writing {args.events:,} events "
            f"({EVENTS_PER_TRANSACTION:,} per transaction) ...")
        result.write_seconds, result.catch_up_seconds = fill(services, args.events)
        result.events = args.events
        result.log_entries = count_log_entries(engine)
        say(f"[{store}] event writing of {args.events:,} events: {result.write_seconds:.1f} s, "
            f"{args.events / result.write_seconds:,.0f} events/s")
        say(f"[{store}] projection catch-up of {args.events:,} events: "
            f"{result.catch_up_seconds:.1f} s, "
            f"{args.events / result.catch_up_seconds:,.0f} events/s "
            f"(2 projections, so {2 * args.events:,} applications)")
        say(f"[{store}] log list holds {result.log_entries:,} entries")
        if engine.dialect.name == "postgresql":
            result.table_stats = postgres_table_stats(engine)
        if engine.dialect.name == "postgresql" and not args.no_vacuum:
            result.vacuum_seconds = vacuum(engine)
            say(f"[{store}] VACUUM (ANALYZE) after the bulk load: {result.vacuum_seconds:.1f} s "
                f"(what autovacuum would do; keeps it from firing during the timed loops)")

        retention_days = app.view().log_retention_days

        def plain_status() -> None:
            with engine.connect() as connection:
                view = connection.execute(PLAIN_VIEW).all()
            with engine.connect() as connection:
                connection.execute(PLAIN_LEASE).all()
            assert len(view) == 1

        def plain_page() -> None:
            cutoff = datetime.now(UTC) - timedelta(days=retention_days)
            with engine.connect() as connection:
                rows = connection.execute(
                    PLAIN_PAGE, {"cutoff": cutoff.replace(tzinfo=None)}
                ).all()
            assert len(rows) == PAGE

        def engine_status() -> None:
            app.status("pl")

        def engine_page() -> None:
            entries = app.logs(limit=PAGE)
            assert len(entries) == PAGE

        # The engine's page and the plain page must be the same rows.
        engine_first = app.logs(limit=PAGE)[0]
        with engine.connect() as connection:
            cutoff = datetime.now(UTC) - timedelta(days=retention_days)
            plain_first = connection.execute(
                PLAIN_PAGE, {"cutoff": cutoff.replace(tzinfo=None)}
            ).first()
        assert plain_first is not None and plain_first.message == engine_first.message

        n, w = args.iterations, args.warmup
        assert app.status("pl").state == "stopped"
        say(f"[{store}] status (stopped): {n} iterations ...")
        e, p = interleaved(engine_status, plain_status, n, w)
        result.rows.append(Row(store, "status, stopped", e, p,
                               "service configured, not running: the engine reads no lease"))

        say(f"[{store}] log page of {PAGE}: {n} iterations ...")
        e, p = interleaved(engine_page, plain_page, n, w)
        result.rows.append(Row(store, f"logs page ({PAGE})", e, p))

        # A host session of this process: status then also reads the lease.
        session_id = app.begin_host_session(os.getpid(), "bench-host")
        try:
            assert app.status("pl").state == "running"
            say(f"[{store}] status (running): {n} iterations ...")
            e, p = interleaved(engine_status, plain_status, n, w)
            assert app.status("pl").state == "running"
            result.rows.append(Row(store, "status, running", e, p,
                                   "host session of the benchmark process: lease read too"))
        finally:
            app.end_host_session(session_id, os.getpid())
        assert app.status("pl").state == "stopped"

        result.plans = explain(engine, datetime.now(UTC) - timedelta(days=retention_days))

        if args.cli_iterations > 0:
            say(f"[{store}] CLI 'soa status' beside the bare import of SQLAlchemy, pydantic "
                f"and eventsourcing: {args.cli_iterations} runs each, interleaved ...")
            soa_process, imports_process = cli_status(home, database_url, args)
            result.rows.append(
                Row(store, "CLI soa status (process)", soa_process, imports_process,
                    "wall time of a new process; plain = python -c 'import sqlalchemy, "
                    "pydantic, eventsourcing' (target: ratio at most 1.5)")
            )
    finally:
        services.close()
    return result


IMPORTS_ONLY = "import sqlalchemy, pydantic, eventsourcing"


def cli_status(
    home: Path, database_url: str | None, args: argparse.Namespace
) -> tuple[Series, Series]:
    """Wall times of ``soa status`` processes and of ``python -c IMPORTS_ONLY`` processes,
    run alternately (A B B A ...) so that the machine's noise hits both alike."""
    soa = REPO / ".venv" / "bin" / "soa"
    python = REPO / ".venv" / "bin" / "python"
    if not soa.exists():
        soa = Path(sys.executable).parent / "soa"
        python = Path(sys.executable)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
    env.update({"SOA_HOME": str(home), "SOA_STATION": STATION})
    if database_url:
        env["SOA_DATABASE_URL"] = database_url

    def status() -> None:
        done = subprocess.run(
            [str(soa), "status"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or STATION not in done.stdout:
            raise RuntimeError(
                f"soa status failed ({done.returncode}): {done.stdout!r} {done.stderr!r}"
            )

    def imports() -> None:
        subprocess.run([str(python), "-c", IMPORTS_ONLY], env=env, check=True)

    return interleaved(status, imports, args.cli_iterations, 2)


# -- PostgreSQL database of the run ------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, str] | None]:
    """Create ``soa_bench_<random>`` on the server of ``admin_url``; drop it at the end.

    Yield the database's SQLAlchemy URL and the server version, or None if unreachable.
    """
    import psycopg

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
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        admin.execute(f'CREATE DATABASE "{name}"')
        say(f"PostgreSQL {version} at {where}: created database {name}")
        bench_url = url.set(drivername="postgresql+psycopg", database=name)
        try:
            yield bench_url.render_as_string(hide_password=False), version
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"PostgreSQL: dropped database {name}")
    finally:
        admin.close()


# -- main --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10,000 entries, 100 iterations, 3 CLI runs")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="URL of an existing database on the PostgreSQL server, used to "
                             "create and drop the run's database (default: %(default)s)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--events", type=int, help="log entries to create (default 100,000)")
    parser.add_argument("--iterations", type=int, help="timed calls per figure (default 500)")
    parser.add_argument("--warmup", type=int, help="untimed calls first (default 50)")
    parser.add_argument("--cli-iterations", type=int,
                        help="timed 'soa status' processes (default 15; 0 skips)")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="PostgreSQL: skip the VACUUM (ANALYZE) after the bulk load")
    parser.add_argument("--no-json", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "events": 10_000 if quick else 100_000,
        "iterations": 100 if quick else 500,
        "warmup": 10 if quick else 50,
        "cli_iterations": 3 if quick else 15,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.events < PAGE:
        parser.error(f"--events must be at least {PAGE}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    started = time.perf_counter()
    info = machine()
    say(f"machine: {info['cpu_count']} cores (os.cpu_count()), {info['platform']}, "
        f"Python {info['python']} ({info['python_implementation']}), "
        f"SQLAlchemy {info['sqlalchemy']}, SQLite {info['sqlite']}")
    say(f"run: {args.events:,} log entries, {args.iterations} timed iterations per figure "
        f"after {args.warmup} warm-up, {args.cli_iterations} CLI runs"
        f"{' (--quick)' if args.quick else ''}")
    say("")

    results: list[StoreResult] = []
    skipped: dict[str, str] = {}

    if not args.no_sqlite:
        home = Path(tempfile.mkdtemp(prefix="soa_bench_"))
        try:
            server = f"SQLite {sqlite3.sqlite_version}"
            results.append(bench_store("SQLite", home, None, args, server))
        finally:
            shutil.rmtree(home, ignore_errors=True)
        say("")

    if not args.no_postgres:
        with postgres_database(args.postgres_url) as database:
            if database is None:
                skipped["PostgreSQL"] = "server unreachable"
            else:
                url, version = database
                home = Path(tempfile.mkdtemp(prefix="soa_bench_"))
                try:
                    results.append(
                        bench_store("PostgreSQL", home, url, args, f"PostgreSQL {version}")
                    )
                finally:
                    shutil.rmtree(home, ignore_errors=True)
        say("")

    elapsed = time.perf_counter() - started
    rows = [row for result in results for row in result.rows]
    say(f"=== results ({args.events:,} events; p50 = median, p99 = nearest rank; "
        f"engine and plain SQL interleaved call by call) ===")
    say("")
    if rows:
        print_table(rows)
    for store, reason in skipped.items():
        say(f"{store}: skipped ({reason})")
    say("")
    for result in results:
        say(f"{result.store}: event writing {result.events:,} events in "
            f"{result.write_seconds:.1f} s ({result.events / result.write_seconds:,.0f} events/s); "
            f"projection catch-up of {result.events:,} events: {result.catch_up_seconds:.1f} s, "
            f"{result.events / result.catch_up_seconds:,.0f} events/s; "
            f"log list {result.log_entries:,} entries"
            + (f"; VACUUM (ANALYZE) {result.vacuum_seconds:.1f} s"
               if result.vacuum_seconds is not None else ""))
    say("")
    say("engine status = app.status('pl'): catch-up check (one query of the projections' "
        "positions and the last notification id), service view read, and the host lease read "
        "only when "
        "the view says running. plain status = SELECT view row + SELECT lease row, one "
        "connection each.")
    say("engine logs = app.logs(limit=100): the same catch-up check and view read (for the "
        "retention), then the page query, mapped to LogEntry objects. plain logs = the page "
        "query only.")
    say("CLI soa status = wall time of a new 'soa status' process (process start, imports, "
        "opening the store included); its plain counterpart is a process that only imports "
        f"SQLAlchemy, pydantic and eventsourcing ({IMPORTS_ONLY!r}), run alternately.")
    say(f"total run time: {elapsed:.0f} s")

    if not args.no_json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{stamp}.json"
        path.write_text(json.dumps({
            "timestamp": stamp,
            "machine": info,
            "arguments": {k: v for k, v in vars(args).items() if k != "postgres_url"},
            "skipped": skipped,
            "total_seconds": elapsed,
            "stores": [result.as_json() for result in results],
        }, indent=2))
        say(f"results written to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
