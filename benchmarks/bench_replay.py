"""Replay of the event log into fresh projection tables (``soa replay``), beside a plain
SQL scan of the events table, on SQLite and PostgreSQL.

Run from the repository root::

    .venv/bin/python benchmarks/bench_replay.py                   # 1,000,000 events
    .venv/bin/python benchmarks/bench_replay.py --events 100000   # a quick run

For each store it records the events (a service, 10 companies, 100 tasks, then task
runs: mostly Scheduled/Started/Succeeded, some failing, some skipped) in transactions of
6,000 events, then times, round after round and in alternating order:

- ``plain SQL scan``: ``SELECT id, originator_id, originator_version, topic, state FROM
  soa_events ORDER BY id``, all rows fetched in pages of 10,000 (``id > last``), nothing
  decoded;
- ``read + decode``: the replay's reader alone (``SqlEventLog.events_after`` in pages of
  10,000, the garbage collector paused as during a replay): the same rows made into
  domain events;
- ``replay, one process``: the five projections rebuilt from every event into a scratch
  SQLite file (created, filled, deleted), all in this process;
- ``replay``: what ``soa replay`` does after opening the store (``SqlReplays`` as the
  command builds it): the same, with the projections other than the run list rebuilt
  by a second process from 200,000 events on (its start included).

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.support and the event recorder
    sys.path.insert(0, str(REPO))

import sqlalchemy  # noqa: E402
from sqlalchemy import text  # noqa: E402

from engine.adapters.event_log_sql import SqlEventLog, open_event_log  # noqa: E402
from engine.projections.replay import REPLAY_BATCH, SqlReplays  # noqa: E402
from engine.service_host.bootstrap import ApplicationServices, build_services  # noqa: E402
from engine.settings import Settings  # noqa: E402
from tests.integration.audit_events import record_history  # noqa: E402
from tests.support import postgres_unavailable_reason, temporary_postgres_database  # noqa: E402

TARGET_SQLITE = 50_000
"""Events/s the replay should reach on SQLite."""
SCAN = text("SELECT id, originator_id, originator_version, topic, state FROM soa_events "
            "WHERE id > :after ORDER BY id LIMIT :limit")


def say(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def store(kind: str) -> Iterator[ApplicationServices]:
    """Services over a fresh SQLite file or PostgreSQL database, removed afterwards."""
    if kind == "sqlite":
        home = Path(tempfile.mkdtemp(prefix="soa-bench-replay-"))
        services = build_services(Settings(home=home, station="BENCH"))
        try:
            yield services
        finally:
            services.close()
            shutil.rmtree(home, ignore_errors=True)
        return
    with temporary_postgres_database() as url:
        home = Path(tempfile.mkdtemp(prefix="soa-bench-replay-"))
        services = build_services(Settings(home=home, database_url=url, station="BENCH"))
        try:
            yield services
        finally:
            services.close()
            shutil.rmtree(home, ignore_errors=True)


def plain_scan(engine: sqlalchemy.Engine) -> int:
    rows = 0
    after = 0
    with engine.connect() as connection:
        while True:
            page = connection.execute(SCAN, {"after": after, "limit": REPLAY_BATCH}).all()
            if not page:
                return rows
            rows += len(page)
            after = page[-1][0]


def read_and_decode(log: SqlEventLog, head: int) -> int:
    events = 0
    position = 0
    gc.disable()
    try:
        while position < head:
            page = log.events_after(position, limit=REPLAY_BATCH, stop=head)
            if not page:
                break
            events += len(page)
            position = page[-1][0]
    finally:
        gc.enable()
    return events


def replay(replays: SqlReplays, head: int) -> int:
    with replays.rebuild(stop=head) as replayed:
        return replayed.applied


def timed(call: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count = call()
    return time.perf_counter() - start, count


def measure(kind: str, events: int, rounds: int) -> dict[str, Any]:
    say(f"{kind}: recording {events:,} events ...")
    with store(kind) as services:
        start = time.perf_counter()
        recorded = record_history(services.store, events)
        write_seconds = time.perf_counter() - start
        say(f"{kind}: recorded {recorded:,} events in {write_seconds:.1f} s "
            f"({recorded / write_seconds:,.0f} events/s)")
        if kind == "postgres":
            with services.sql_engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(text("VACUUM (ANALYZE) soa_events"))
        log = SqlEventLog(services.sql_engine, services.store.app.mapper)
        in_one = SqlReplays(services.sql_engine, log)
        as_the_command = SqlReplays(services.sql_engine, log, open_log=functools.partial(
            open_event_log, services.settings.store_url))
        head = in_one.head()
        calls: dict[str, Callable[[], int]] = {
            "plain SQL scan": lambda: plain_scan(services.sql_engine),
            "read + decode": lambda: read_and_decode(log, head),
            "replay, one process": lambda: replay(in_one, head),
            "replay": lambda: replay(as_the_command, head),
        }
        figures: dict[str, list[float]] = {name: [] for name in calls}
        for round_ in range(rounds):
            order = list(calls) if round_ % 2 == 0 else list(reversed(calls))
            for name in order:
                seconds, count = timed(calls[name])
                if count != recorded:
                    raise AssertionError(f"{name} saw {count} events, not {recorded}")
                figures[name].append(seconds)
                say(f"{kind}: round {round_ + 1} {name}: {seconds:.2f} s "
                    f"({recorded / seconds:,.0f} events/s)")
    return {"store": kind, "events": recorded, "write_seconds": write_seconds,
            "seconds": figures}


def print_table(results: list[dict[str, Any]]) -> None:
    header = ["store", "events", "plain SQL scan", "read + decode", "replay, one process",
              "replay", "scan / replay", f"target ≥ {TARGET_SQLITE:,}/s"]
    lines = [header]
    for result in results:
        rate = {name: result["events"] / statistics.median(samples)
                for name, samples in result["seconds"].items()}
        target = ("met" if rate["replay"] >= TARGET_SQLITE else "not met") \
            if result["store"] == "sqlite" else "n/a"
        lines.append([
            result["store"], f"{result['events']:,}", f"{rate['plain SQL scan']:,.0f}/s",
            f"{rate['read + decode']:,.0f}/s", f"{rate['replay, one process']:,.0f}/s",
            f"{rate['replay']:,.0f}/s",
            f"{rate['plain SQL scan'] / rate['replay']:.1f}x", target,
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        say("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                      for column, (cell, width) in enumerate(zip(line, widths, strict=True))))
        if index == 0:
            say("  ".join("-" * width for width in widths))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events in each store (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds of each figure; the table shows medians (default 3)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every sample to PATH (nothing is written by default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load = os.getloadavg()
    say(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy "
        f"{sqlalchemy.__version__}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    kinds = [kind for kind, skip in (("sqlite", args.no_sqlite), ("postgres", args.no_postgres))
             if not skip]
    if "postgres" in kinds and (reason := postgres_unavailable_reason()) is not None:
        say(f"PostgreSQL SKIPPED: {reason}")
        kinds.remove("postgres")
    results = [measure(kind, args.events, args.rounds) for kind in kinds]
    say("")
    say(f"medians of {args.rounds} rounds, events per second:")
    print_table(results)
    load = os.getloadavg()
    say(f"total run time: {time.perf_counter() - started:.0f} s; load average at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"arguments": vars(args) | {"json": str(args.json)},
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":  # the replay's second process imports this module again
    sys.exit(main())
