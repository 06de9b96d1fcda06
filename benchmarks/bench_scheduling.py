"""Scheduling: durable run throughput, fire latency and host memory with 10,000 schedules.

Run from the repository root::

    .venv/bin/python benchmarks/bench_scheduling.py                # full run (SQLite + PostgreSQL)
    .venv/bin/python benchmarks/bench_scheduling.py --quick        # smoke run
    .venv/bin/python benchmarks/bench_scheduling.py --no-postgres  # SQLite only

(a) Throughput: N no-op runs through the lifecycle the engine records (Scheduled,
Started, Succeeded: three saves) with the projections caught up per run or at the
end, beside plain eventsourcing saving the same events and APScheduler 3 with a
SQLAlchemyJobStore plus a run-history table, on the same kind of database.
(b) Fire latency and (c) RSS: a TaskScheduler with 10,000 active tasks of 100
companies, ``every 60s`` (about 167 fires/s) and, separately, ``every 600s`` (about
17 fires/s), started in a fresh process as the service host runs it. Each
measurement uses its own SQLite file or PostgreSQL database (created and dropped by
the script).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psutil
import sqlalchemy
from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
)
from apscheduler.executors.base import run_job  # type: ignore[import-untyped]
from apscheduler.job import Job  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STATION = "BENCH"
COMPANY = "Firma A"
KIND = "noop"

TARGET_SQLITE_RUNS_PER_SECOND = 1_000.0
TARGET_POSTGRES_RUNS_PER_SECOND = 500.0
TARGET_FIRE_P99_MS = 50.0
TARGET_RSS_MB = 150.0

TASK_BATCH = 500
"""Task definitions saved per transaction when the 10,000 tasks are created."""

ADD_TASK_PROBES = 20
"""TaskService.add_task calls timed after the latency run (into a fresh company and into
the company that holds the 10,000 tasks)."""


def say(message: str = "") -> None:
    print(message, flush=True)


# -- the no-op operation -----------------------------------------------------------------


class NoOp:
    """An operation that does nothing (what a run costs beyond its work)."""

    kind = KIND
    params_model = None

    def run(self, ctx: Any) -> Mapping[str, int] | None:
        return None


def noop() -> None:
    """The APScheduler job function (module level, so the job can be pickled)."""


def registry() -> Any:
    from engine.operations.registry import OperationRegistry

    factory: Any = NoOp
    return OperationRegistry({KIND: factory}, load_entry_points=False)


# -- statistics --------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


# -- databases ---------------------------------------------------------------------------


@dataclass
class Store:
    """Where one measurement runs: a fresh SQLite file, or a fresh PostgreSQL database."""

    kind: str  # "SQLite" or "PostgreSQL"
    home: Path
    url: str | None  # None: the engine's embedded SQLite file under home

    @property
    def sqlalchemy_url(self) -> str:
        return self.url or f"sqlite:///{self.home / 'soa.db'}"


class Databases:
    """Creates stores for the run and removes them all at the end."""

    def __init__(self, postgres_admin_url: str | None) -> None:
        self.admin_url = postgres_admin_url
        self.admin: Any = None
        self.postgres_version: str | None = None
        self.postgres_settings: dict[str, str] = {}
        self.created: list[str] = []
        self.homes: list[Path] = []
        self.skip_reason: str | None = None

    def open(self) -> None:
        if self.admin_url is None:
            return
        import psycopg

        url = make_url(self.admin_url)
        self._connect_args: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username or "postgres",
            "dbname": url.database or "postgres",
            "autocommit": True,
            "connect_timeout": 5,
        }
        if url.password:
            self._connect_args["password"] = url.password
        where = f"{self._connect_args['host']}:{self._connect_args['port']}"
        try:
            self.admin = psycopg.connect(**self._connect_args)
        except psycopg.OperationalError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            self.skip_reason = f"cannot connect to {where} ({reason})"
            say(f"PostgreSQL SKIPPED: {self.skip_reason}")
            return
        self.postgres_version = str(self.admin.execute("SHOW server_version").fetchone()[0])
        for name in ("fsync", "synchronous_commit", "shared_buffers", "wal_level"):
            self.postgres_settings[name] = str(self.admin.execute(f"SHOW {name}").fetchone()[0])
        self._bench_url = url.set(drivername="postgresql+psycopg")
        self.where = where

    @property
    def has_postgres(self) -> bool:
        return self.admin is not None

    def new_home(self) -> Path:
        home = Path(tempfile.mkdtemp(prefix="soa_bench_sched_"))
        self.homes.append(home)
        return home

    def new(self, kind: str) -> Store:
        home = self.new_home()
        if kind == "SQLite":
            return Store(kind, home, None)
        name = f"soa_bench_{secrets.token_hex(4)}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = self._bench_url.set(database=name).render_as_string(hide_password=False)
        return Store(kind, home, url)

    def drop(self, store: Store) -> None:
        if store.url is not None:
            name = make_url(store.url).database
            assert name is not None
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.created.remove(name)
        shutil.rmtree(store.home, ignore_errors=True)
        if store.home in self.homes:
            self.homes.remove(store.home)

    def close(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(Exception):
                self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.created:
            say(f"PostgreSQL: dropped {len(self.created)} leftover database(s)")
        for home in self.homes:
            shutil.rmtree(home, ignore_errors=True)
        if self.admin is not None:
            self.admin.close()


def settings_for(store: Store, **extra: Any) -> Any:
    from engine.settings import Settings

    return Settings(home=store.home, database_url=store.url, station=STATION, **extra)


# -- (a) durable run throughput -----------------------------------------------------------


@dataclass
class Throughput:
    store: str
    variant: str
    runs: int
    seconds: float
    target: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.per_second >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store, "variant": self.variant, "runs": self.runs,
            "seconds": self.seconds, "runs_per_second": self.per_second,
            "target_runs_per_second": self.target, "target_met": self.met, "note": self.note,
            **self.extra,
        }


def _engine_with_task(store: Store) -> tuple[Any, Any]:
    """The engine on ``store`` with one company and one no-op task (which never fires)."""
    from engine.scheduling import parse_schedule
    from engine.service_host.bootstrap import build_services

    services = build_services(settings_for(store), registry=registry())
    services.tasks.add_company(COMPANY)
    schedule = parse_schedule(every="744h", anchor=datetime.now(UTC) + timedelta(days=365))
    task_id = services.tasks.add_task(
        KIND, company=COMPANY, name="throughput", schedule=schedule, catch_up="skip",
        max_attempts=1, backoff_seconds=1.0,
    )
    return services, task_id


def _instants(count: int, offset: int) -> list[datetime]:
    """Distinct past instants (a run's id derives from its task and instant)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [base + timedelta(milliseconds=offset + i) for i in range(count)]


def bench_engine_saves(
    store: Store, runs: int, warmup: int, projections_per_run: bool
) -> Throughput:
    from engine.domain.task_run import TaskRun

    services, task_id = _engine_with_task(store)
    events = services.store
    session_id = uuid4()
    pid = os.getpid()

    clock = time.perf_counter
    spent = {"saves": 0.0, "catch_ups": 0.0}

    def lifecycle(instants: list[datetime]) -> None:
        for instant in instants:
            begun = clock()
            run = TaskRun(task_id=task_id, company=COMPANY, kind=KIND, scheduled_for=instant,
                          manual=False, max_attempts=1)
            events.save(run)
            run.start(STATION, pid, session_id)
            events.save(run)
            run.succeed({}, 0.0)
            events.save(run)
            saved = clock()
            spent["saves"] += saved - begun
            if projections_per_run:
                services.read_models.catch_up()
                spent["catch_ups"] += clock() - saved

    try:
        lifecycle(_instants(warmup, 0))
        services.read_models.catch_up()
        gc.collect()
        spent.update(saves=0.0, catch_ups=0.0)
        start = clock()
        lifecycle(_instants(runs, warmup))
        saved = clock() - start
        services.read_models.catch_up()
        elapsed = clock() - start
        succeeded = len(services.runs.runs(status="succeeded", limit=None))
        assert succeeded == warmup + runs, (succeeded, warmup + runs)
    finally:
        services.close()
    target = TARGET_SQLITE_RUNS_PER_SECOND if store.kind == "SQLite" else (
        TARGET_POSTGRES_RUNS_PER_SECOND
    )
    if projections_per_run:
        return Throughput(
            store.kind, "engine: 3 saves + projections per run", runs, elapsed, target,
            note=f"saves {spent['saves']:.2f} s + catch-ups {spent['catch_ups']:.2f} s",
            extra={"save_seconds": spent["saves"], "catch_up_seconds": spent["catch_ups"]},
        )
    return Throughput(
        store.kind, "engine: 3 saves, projections at end", runs, elapsed, target,
        note=f"saves {saved:.2f} s + one catch-up {elapsed - saved:.2f} s",
        extra={"save_seconds": saved, "catch_up_seconds": elapsed - saved},
    )


PIPELINE_TASKS = 100
"""Tasks the pipeline variant spreads its runs over (one run per task at a time)."""


def bench_engine_pipeline(
    store: Store, runs: int, warmup: int, max_concurrent_runs: int
) -> Throughput:
    """The scheduler as the host runs it: ``runs`` occurrences of PIPELINE_TASKS tasks, one
    tick of all timers after the other; timed from the first tick (``fire_all``) until
    every run has succeeded and the projections show it. In between: dispatch passes (catch-up,
    read of the due runs), attempt threads (``Started`` saved, the operation in its own
    thread, ``Succeeded`` saved), with saves of concurrent threads sharing transactions."""
    from engine.application.runs import HostSession
    from engine.ports import Clock, SystemClock
    from engine.scheduling import parse_schedule
    from engine.service_host.bootstrap import build_services
    from engine.service_host.scheduler import SchedulerSettings, TaskScheduler

    class SteppedClock(Clock):
        """Real time, moved past the occurrences of each round before its tick."""

        def __init__(self) -> None:
            self.offset = timedelta(0)

        def now(self) -> datetime:
            return SystemClock().now() + self.offset

    clock = SteppedClock()
    services = build_services(settings_for(store), registry=registry(), clock=clock)
    services.tasks.add_company(COMPANY)
    anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    per_round = PIPELINE_TASKS
    for i in range(per_round):
        services.tasks.add_task(
            KIND, company=COMPANY, name=f"pipeline {i:03d}",
            schedule=parse_schedule(every="1h", anchor=anchor), catch_up="all",
            max_attempts=1, backoff_seconds=1.0,
        )
    logger = logging.getLogger("bench.pipeline")
    # stall_seconds: the clock jumps an hour per round while this host is up and recording;
    # that is no stall (after which occurrences would count as missed or on time, not live).
    scheduler = TaskScheduler(
        runs=services.runs,
        session=HostSession(station=STATION, pid=os.getpid(), session_id=uuid4()),
        settings=SchedulerSettings(max_concurrent_runs=max_concurrent_runs,
                                   max_catch_up=10**6, stop_grace_seconds=5.0,
                                   stall_seconds=1e9),
        logger=logger, may_run=lambda: True,
    )
    lock = threading.Lock()
    finished = {"count": 0, "expected": 0}
    all_done = threading.Event()
    attempt = scheduler.attempts._attempt

    def counting_attempt(started: Any) -> None:
        """Wakes the timing up when the expected outcomes are recorded."""
        try:
            attempt(started)
        finally:
            with lock:
                finished["count"] = scheduler.outcomes_recorded
                if finished["count"] >= finished["expected"]:
                    all_done.set()

    scheduler.attempts._attempt = counting_attempt  # type: ignore[method-assign]
    transactions = 0
    try:
        scheduler.start(timers=False)  # loads the tasks; nothing is due yet

        ticks = {"next": 0}
        timing = {"catch_up": 0.0}

        def rounds(count: int) -> None:
            """``count`` runs: ticks of the timers, one occurrence of every task each, fired
            back to back (the clock jumps to each occurrence)."""
            nonlocal transactions
            per_task = max(1, count // per_round)
            with lock:
                finished["expected"] = finished["count"] + per_task * per_round
                all_done.clear()
            before = services.writer.transactions
            for _ in range(per_task):
                occurrence = anchor + timedelta(hours=ticks["next"])
                ticks["next"] += 1
                clock.offset = occurrence + timedelta(seconds=1) - SystemClock().now()
                scheduler.fire_all()
            if not all_done.wait(300):
                raise RuntimeError(f"{finished} runs finished")
            outcomes_at = time.perf_counter()
            services.read_models.catch_up()
            timing["catch_up"] = time.perf_counter() - outcomes_at
            transactions = services.writer.transactions - before

        rounds(warmup)
        gc.collect()
        done_before = finished["count"]
        start = time.perf_counter()
        rounds(runs)
        elapsed = time.perf_counter() - start
        timed = finished["count"] - done_before
        scheduler.stop()
        succeeded = len(services.runs.runs(status="succeeded", limit=None))
        assert succeeded == finished["count"], (succeeded, finished)
    finally:
        scheduler.stop()
        services.close()
    target = TARGET_SQLITE_RUNS_PER_SECOND if store.kind == "SQLite" else (
        TARGET_POSTGRES_RUNS_PER_SECOND
    )
    return Throughput(
        store.kind,
        f"engine: scheduler, {PIPELINE_TASKS} tasks, {max_concurrent_runs} at a time"
        + (" (default)" if max_concurrent_runs == SchedulerSettings.max_concurrent_runs else ""),
        timed, elapsed, target,
        note=f"{transactions:,} transactions for {timed:,} runs ({timed * 3:,} events); "
             f"projections caught up at the end in {timing['catch_up']:.2f} s",
        extra={"transactions": transactions, "max_concurrent_runs": max_concurrent_runs,
               "final_catch_up_seconds": timing["catch_up"]},
    )


def bench_plain_eventsourcing(store: Store, runs: int, warmup: int) -> Throughput:
    from eventsourcing.application import Application

    from engine.domain.task_run import TaskRun

    class PlainRuns(Application[UUID]):
        name = "plainruns"

    app = PlainRuns(env={
        "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
        "SQLALCHEMY_URL": store.sqlalchemy_url,
        "CREATE_TABLE": "y",
    })
    task_id = uuid4()
    session_id = uuid4()
    pid = os.getpid()

    def lifecycle(instants: list[datetime]) -> None:
        for instant in instants:
            run = TaskRun(task_id=task_id, company=COMPANY, kind=KIND, scheduled_for=instant,
                          manual=False, max_attempts=1)
            app.save(run)
            run.start(STATION, pid, session_id)
            app.save(run)
            run.succeed({}, 0.0)
            app.save(run)

    try:
        lifecycle(_instants(warmup, 0))
        gc.collect()
        start = time.perf_counter()
        lifecycle(_instants(runs, warmup))
        elapsed = time.perf_counter() - start
        events = app.recorder.max_notification_id()
        assert events == 3 * (warmup + runs), events
    finally:
        app.recorder.datastore.engine.dispose()  # type: ignore[attr-defined]
    return Throughput(store.kind, "eventsourcing: same 3 saves, no projections", runs, elapsed)


_history_metadata = MetaData()
HISTORY = Table(
    "apscheduler_history",
    _history_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(191), nullable=False),
    Column("scheduled_for", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
)


def _apscheduler_engine(store: Store) -> sqlalchemy.Engine:
    engine = sqlalchemy.create_engine(store.sqlalchemy_url)
    if engine.dialect.name == "sqlite":
        # The same journal mode as the engine's event store (eventsourcing-sqlalchemy
        # switches its SQLite file to WAL); APScheduler's own default would be the
        # rollback journal.
        with engine.connect() as connection:
            connection.execute(text("PRAGMA journal_mode=WAL"))
    _history_metadata.create_all(engine)
    return engine


def _history_count(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM apscheduler_history")).scalar_one()
        )


def bench_apscheduler_steps(store: Store, runs: int, warmup: int) -> Throughput:
    """What BackgroundScheduler does for one date job, done in one thread, run by run:
    add the job (INSERT, commit), get the due jobs (SELECT, unpickle), run it
    (apscheduler.executors.base.run_job), remove it (DELETE, commit), then insert the
    history row (INSERT, commit)."""
    engine = _apscheduler_engine(store)
    scheduler = BackgroundScheduler(timezone=UTC)  # never started: the jobs' owner
    jobstore = SQLAlchemyJobStore(engine=engine)
    jobstore.start(scheduler, "default")
    logger_name = "apscheduler.executors.default"
    logging.getLogger(logger_name).setLevel(logging.WARNING)

    def lifecycle(count: int) -> None:
        for _ in range(count):
            now = datetime.now(UTC)
            job = Job(
                scheduler, id=uuid4().hex, func=noop, args=(), kwargs={},
                trigger=DateTrigger(run_date=now, timezone=UTC), executor="default",
                name="noop", misfire_grace_time=None, coalesce=True, max_instances=1,
                next_run_time=now,
            )
            jobstore.add_job(job)
            (due,) = jobstore.get_due_jobs(datetime.now(UTC))
            run_times = due._get_run_times(datetime.now(UTC))
            events = run_job(due, "default", run_times, logger_name)
            assert events and events[0].exception is None
            jobstore.remove_job(due.id)
            with engine.begin() as connection:
                connection.execute(HISTORY.insert().values(
                    job_id=due.id, scheduled_for=run_times[0],
                    finished_at=datetime.now(UTC), status="succeeded",
                ))

    try:
        lifecycle(warmup)
        gc.collect()
        start = time.perf_counter()
        lifecycle(runs)
        elapsed = time.perf_counter() - start
        assert _history_count(engine) == warmup + runs
    finally:
        engine.dispose()
    return Throughput(store.kind, "APScheduler 3: job store steps + history, one by one",
                      runs, elapsed, note="add, get due, run_job, remove, history INSERT")


def bench_apscheduler_background(store: Store, runs: int, warmup: int) -> Throughput:
    """A started BackgroundScheduler (SQLAlchemyJobStore, default 10-thread pool): add every
    date job (due now), a listener inserts the history row when a job has run; timed from
    the first add to the last history row."""
    engine = _apscheduler_engine(store)
    scheduler = BackgroundScheduler(
        timezone=UTC, jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    lock = threading.Lock()
    done = threading.Event()
    state = {"recorded": 0, "expected": 0, "errors": 0}

    def record(event: Any) -> None:
        status = "failed" if event.exception is not None else "succeeded"
        try:
            with engine.begin() as connection:
                connection.execute(HISTORY.insert().values(
                    job_id=event.job_id, scheduled_for=event.scheduled_run_time,
                    finished_at=datetime.now(UTC), status=status,
                ))
        except Exception:
            with lock:
                state["errors"] += 1
            raise
        with lock:
            state["recorded"] += 1
            if state["recorded"] >= state["expected"]:
                done.set()

    scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()

    def batch(count: int) -> None:
        with lock:
            state["expected"] += count
            done.clear()
        for _ in range(count):
            scheduler.add_job(noop, "date", run_date=datetime.now(UTC))
        if not done.wait(120):
            raise RuntimeError(f"APScheduler ran {state['recorded']} of {state['expected']} jobs")

    try:
        batch(warmup)
        gc.collect()
        start = time.perf_counter()
        batch(runs)
        elapsed = time.perf_counter() - start
        scheduler.shutdown(wait=True)
        assert _history_count(engine) == warmup + runs
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        engine.dispose()
    return Throughput(
        store.kind, "APScheduler 3: BackgroundScheduler, all added then run", runs, elapsed,
        note="concurrent: add in main thread, run in pool, history by listener",
        extra={"history_insert_errors": state["errors"]},
    )


THROUGHPUT_VARIANTS: list[tuple[str, Callable[[Store, int, int], Throughput]]] = [
    ("engine, projections per run",
     lambda s, n, w: bench_engine_saves(s, n, w, projections_per_run=True)),
    ("engine, projections at end",
     lambda s, n, w: bench_engine_saves(s, n, w, projections_per_run=False)),
    ("engine, scheduler (4 at a time)",
     lambda s, n, w: bench_engine_pipeline(s, n, w, max_concurrent_runs=4)),
    ("engine, scheduler (default: 8 at a time)",
     lambda s, n, w: bench_engine_pipeline(s, n, w, max_concurrent_runs=8)),
    ("engine, scheduler (16 at a time)",
     lambda s, n, w: bench_engine_pipeline(s, n, w, max_concurrent_runs=16)),
    ("plain eventsourcing", bench_plain_eventsourcing),
    ("APScheduler, job store steps", bench_apscheduler_steps),
    ("APScheduler, BackgroundScheduler", bench_apscheduler_background),
]


# -- (b) fire latency and (c) RSS: the tasks ----------------------------------------------


@dataclass
class TaskSetup:
    tasks: int
    every_seconds: int
    anchor_base: datetime
    create_seconds: float
    catch_up_seconds: float
    method: str


def company_name(index: int) -> str:
    return f"Firma {index:04d}"


def create_tasks(
    store: Store, count: int, companies: int, every_seconds: int, margin: float
) -> TaskSetup:
    """Define ``count`` active ``every`` tasks, task i for company i mod ``companies``,
    saving the same events as TaskService.add_task (TaskDefinition.Defined and
    Company.TaskAttached), one company and up to TASK_BATCH of its tasks per transaction.
    The anchors are spread evenly over one interval, the first ``margin`` seconds from
    now (so that none is due before the scheduler under test has started)."""
    from engine.domain.company import Company, company_id
    from engine.domain.task_definition import RetryPolicy, TaskDefinition
    from engine.scheduling import parse_schedule
    from engine.service_host.bootstrap import build_services

    services = build_services(settings_for(store), registry=registry())
    try:
        owners: list[Company] = []
        for j in range(companies):
            services.tasks.add_company(company_name(j))
            owner: object = services.store.get(company_id(company_name(j)))
            assert isinstance(owner, Company)
            owners.append(owner)
        started = time.perf_counter()
        now = datetime.now(UTC)
        base = (now + timedelta(seconds=margin)).replace(microsecond=0)
        step = timedelta(seconds=every_seconds) / count
        validated = services.tasks.registry.validate_params(KIND, {})
        pending: dict[int, list[TaskDefinition]] = {j: [] for j in range(companies)}
        for i in range(count):
            owner = owners[i % companies]
            schedule = parse_schedule(every=f"{every_seconds}s", anchor=base + i * step)
            task = TaskDefinition.define(
                company_id=owner.id, company=owner.name, kind=KIND, name=f"bench {i:05d}",
                schedule=schedule, catch_up="latest", retry=RetryPolicy(1, 1.0),
                timeout_seconds=None, params=validated, at=now,
            )
            owner.attach_task(task.id)
            batch = pending[i % companies]
            batch.append(task)
            if len(batch) == TASK_BATCH:
                services.store.save(owner, *batch)
                batch.clear()
        for j, batch in pending.items():
            if batch:
                services.store.save(owners[j], *batch)
        created = time.perf_counter() - started
        started = time.perf_counter()
        services.read_models.catch_up()
        caught_up = time.perf_counter() - started
        assert len(services.tasks.tasks()) == count
    finally:
        services.close()
    per_company = math.ceil(count / companies)
    return TaskSetup(
        count, every_seconds, base, created, caught_up,
        f"batch save: {companies:,} companies of up to {per_company:,} tasks, a company and "
        f"up to {TASK_BATCH} of its tasks per transaction",
    )


def probe_add_task(store: Store, probes: int, big: int) -> dict[str, Any]:
    """Time TaskService.add_task into a fresh company and into a company holding tasks,
    and loading a company aggregate to which ``big`` tasks were attached."""
    from engine.domain.company import Company, company_id
    from engine.scheduling import parse_schedule
    from engine.service_host.bootstrap import build_services

    services = build_services(settings_for(store), registry=registry())
    result: dict[str, Any] = {}
    try:
        services.tasks.add_company("Probe")
        far = datetime.now(UTC) + timedelta(days=365)
        for company, key in (("Probe", "fresh_company"), (company_name(0), "company_with_tasks")):
            events = len(list(services.store.history(company_id(company))))
            samples = []
            for i in range(probes):
                start = time.perf_counter()
                services.tasks.add_task(
                    KIND, company=company, name=f"probe {i}",
                    schedule=parse_schedule(every="744h", anchor=far), catch_up="skip",
                    max_attempts=1, backoff_seconds=1.0,
                )
                samples.append(time.perf_counter() - start)
            result[key] = {
                "company": company, "company_events_before": events, "calls": probes,
                "p50_ms": statistics.median(samples) * 1e3,
                "mean_ms": statistics.fmean(samples) * 1e3, "max_ms": max(samples) * 1e3,
            }
        # A company with ``big`` tasks: its TaskAttached events (no task definitions needed).
        services.tasks.add_company("Big")
        big_id = company_id("Big")
        owner: object = services.store.get(big_id)
        assert isinstance(owner, Company)
        for _ in range(big):
            owner.attach_task(uuid4())
            if len(owner.pending_events) >= 1_000:
                services.store.save(owner)
        services.store.save(owner)
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            loaded: object = services.store.get(big_id)
            samples.append(time.perf_counter() - start)
            assert isinstance(loaded, Company) and len(loaded.task_ids) == big
        result["company_load"] = {"tasks": big, "events": big + 1,
                                  "p50_ms": statistics.median(samples) * 1e3}
    finally:
        services.close()
    return result


# -- (b) and (c): the host process --------------------------------------------------------


class _CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            message = re.sub(r" object at 0x[0-9a-f]+", "", record.getMessage())
            self.first.append(f"{record.name}: {message[:300]}")


def latency_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: open the store as the host does, build its TaskScheduler,
    start it, and call refresh() every second (as ServiceHost does) while the timers fire."""
    rss_imported = rss_mb()
    from engine.domain.task_run import run_id_for
    from engine.scheduling import occurrences
    from engine.service_host.bootstrap import build_services, scheduler_factory

    store = Store(config["kind"], Path(config["home"]), config["url"])
    settings = settings_for(store, stop_grace_seconds=5.0)
    counting = _CountingHandler()
    logging.getLogger().addHandler(counting)
    logging.getLogger().setLevel(logging.WARNING)
    logger = logging.getLogger("bench.host")

    services = build_services(settings, registry=registry())
    services.read_models.catch_up()
    gc.collect()
    rss_before = rss_mb()

    scheduler = scheduler_factory(services, logger)(uuid4(), lambda: True)
    samples: list[tuple[float, float, float, bool]] = []
    main_thread = threading.main_thread()
    record_due = services.runs.record_due  # the scheduler's RunService
    plan_and_record = scheduler._record_due
    called_at = threading.local()

    def timed_plan_and_record(tasks: Any) -> Any:
        """TaskScheduler._record_due: a timer's fire handled (planned, then recorded)."""
        called_at.value = time.time()
        return plan_and_record(tasks)

    def timed_record_due(planned: Any) -> list[list[UUID]]:
        """RunService.record_due: returns once the planned runs are committed."""
        called = getattr(called_at, "value", None) or time.time()
        fresh: list[list[UUID]] = record_due(planned)
        saved = time.time()
        in_main = threading.current_thread() is main_thread
        for (task, plan), run_ids in zip(planned, fresh, strict=True):
            instants = {run_id_for(task.id, instant): instant for instant in plan.runs}
            for run_id in run_ids:
                samples.append((instants[run_id].timestamp(), called, saved, in_main))
        return fresh

    scheduler._record_due = timed_plan_and_record  # type: ignore[method-assign]
    services.runs.record_due = timed_record_due  # type: ignore[method-assign]
    process = psutil.Process()
    started = time.perf_counter()
    scheduler.start()
    start_seconds = time.perf_counter() - started
    rss_started = rss_mb()
    active = len(scheduler._tasks)  # type: ignore[attr-defined]
    jobs = len(scheduler._timers._scheduler.get_jobs())  # type: ignore[attr-defined]

    anchor_base = config["anchor_base"]
    window_start = max(time.time(), anchor_base) + config["warmup"]
    window_end = window_start + config["seconds"]
    grace = config["grace"]
    rss_peak = rss_started
    cpu_at: dict[str, Any] = {}
    refresh_seconds: list[float] = []
    while True:
        now = time.time()
        if now >= window_end + grace:
            break
        if not cpu_at and now >= window_start:
            cpu_at["start"] = (process.cpu_times(), time.perf_counter())
        if "end" not in cpu_at and now >= window_end:
            cpu_at["end"] = (process.cpu_times(), time.perf_counter())
        time.sleep(max(0.0, 1.0 - (time.time() - now)))
        begun = time.perf_counter()
        scheduler.refresh()
        refresh_seconds.append(time.perf_counter() - begun)
        rss_peak = max(rss_peak, rss_mb())
    if "start" not in cpu_at:
        raise RuntimeError("the measured window passed before refresh() returned once after "
                           "start(): the host was blocked for the whole window")
    if "end" not in cpu_at:
        cpu_at["end"] = (process.cpu_times(), time.perf_counter())
    rss_end = rss_mb()
    rss_peak = max(rss_peak, rss_end)

    # What should have fired in the window, and what was recorded.
    tasks = services.read_models.tasks()
    w0 = datetime.fromtimestamp(window_start, UTC)
    w1 = datetime.fromtimestamp(window_end, UTC)
    expected = sum(len(occurrences(task.schedule, w0, w1)) for task in tasks)
    in_window = [s for s in samples if window_start < s[0] <= window_end and not s[3]]
    called_delays = [(s[1] - s[0]) * 1e3 for s in in_window]
    saved_delays = [(s[2] - s[0]) * 1e3 for s in in_window]
    at_start = sum(1 for s in samples if s[3])

    stop_started = time.perf_counter()
    scheduler.stop()
    stop_seconds = time.perf_counter() - stop_started
    services.read_models.catch_up()
    runs = services.read_models.runs(limit=None)
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run.status] = by_status.get(run.status, 0) + 1
    window_runs = [run for run in runs if w0 < run.scheduled_for <= w1]
    start_delays = sorted(
        (run.started_at - run.scheduled_for).total_seconds() * 1e3
        for run in window_runs if run.started_at is not None
    )
    services.close()

    cpu0, t0 = cpu_at["start"]
    cpu1, t1 = cpu_at["end"]
    cpu_seconds = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "tasks_active": active,
        "timers": jobs,
        "start_seconds": start_seconds,
        "recorded_at_start": at_start,
        "window_seconds": window_end - window_start,
        "expected_fires": expected,
        "recorded_fires": len(in_window),
        "fires_per_second": expected / (window_end - window_start),
        "called_delay_ms": called_delays,
        "saved_delay_ms": saved_delays,
        "start_delay_ms": start_delays,
        "window_runs_started": len(start_delays),
        "window_runs_recorded": len(window_runs),
        "runs_by_status_at_end": by_status,
        "refresh_seconds": {
            "calls": len(refresh_seconds),
            "p50": statistics.median(refresh_seconds) if refresh_seconds else None,
            "max": max(refresh_seconds) if refresh_seconds else None,
        },
        "stop_seconds": stop_seconds,
        "cpu_seconds_in_window": cpu_seconds,
        "cpu_cores_used_in_window": cpu_seconds / (t1 - t0),
        "rss_mb": {
            "after_imports": rss_imported,
            "before_scheduler": rss_before,
            "after_start": rss_started,
            "peak": rss_peak,
            "end": rss_end,
        },
        "warnings_logged": counting.count,
        "first_warnings": counting.first,
    }


@dataclass
class LatencyResult:
    store: str
    setup: TaskSetup
    worker: dict[str, Any]
    add_task: dict[str, Any]
    worker_seconds: float

    @property
    def label(self) -> str:
        return (f"every {self.setup.every_seconds}s "
                f"({self.setup.tasks / self.setup.every_seconds:,.0f} fires/s)")

    def delays(self, key: str, *, all_fires: bool = True) -> tuple[float, float, float]:
        """p50, p99, max of a delay series in ms; with ``all_fires``, each fire of the
        window missing from the series (never recorded, or not started) counts as
        infinitely late."""
        values = list(self.worker[key])
        if all_fires:
            values += [math.inf] * max(0, self.worker["expected_fires"] - len(values))
        if not values:
            return math.nan, math.nan, math.nan
        return statistics.median(values), percentile(values, 99), max(values)

    def as_json(self) -> dict[str, Any]:
        def summary(key: str) -> dict[str, Any]:
            p50, p99, worst = self.delays(key)
            r50, r99, rmax = self.delays(key, all_fires=False)
            return {"p50_ms": _finite(p50), "p99_ms": _finite(p99), "max_ms": _finite(worst),
                    "n": len(self.worker[key]), "of_fires_due": self.worker["expected_fires"],
                    "recorded_only": {"p50_ms": _finite(r50), "p99_ms": _finite(r99),
                                      "max_ms": _finite(rmax)}}

        return {
            "store": self.store,
            "label": self.label,
            "tasks": self.setup.tasks,
            "every_seconds": self.setup.every_seconds,
            "task_creation": {
                "method": self.setup.method, "save_seconds": self.setup.create_seconds,
                "projection_catch_up_seconds": self.setup.catch_up_seconds,
            },
            "add_task_probe": self.add_task,
            "fire_delay_at_record_due_call": summary("called_delay_ms"),
            "fire_delay_after_save": summary("saved_delay_ms"),
            "run_start_delay": summary("start_delay_ms"),
            "target_p99_ms": TARGET_FIRE_P99_MS,
            "target_rss_mb": TARGET_RSS_MB,
            "worker_seconds": self.worker_seconds,
            "worker": {k: v for k, v in self.worker.items()
                       if not k.endswith("_delay_ms")},
            "samples_ms": {k: [round(v, 2) for v in self.worker[k]]
                           for k in ("called_delay_ms", "saved_delay_ms", "start_delay_ms")},
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def bench_latency(
    databases: Databases, kind: str, every: int, probe: bool, args: argparse.Namespace
) -> LatencyResult:
    store = databases.new(kind)
    try:
        say(f"[{kind}] creating {args.tasks:,} tasks 'every {every}s' for "
            f"{args.companies:,} companies (batch save) ...")
        setup = create_tasks(store, args.tasks, args.companies, every, args.margin)
        say(f"[{kind}] tasks saved in {setup.create_seconds:.1f} s, projections caught up in "
            f"{setup.catch_up_seconds:.1f} s; first anchor "
            f"{max(0.0, setup.anchor_base.timestamp() - time.time()):.0f} s from now")
        config = {
            "kind": kind, "home": str(store.home), "url": store.url,
            "anchor_base": setup.anchor_base.timestamp(), "warmup": args.latency_warmup,
            "seconds": args.latency_seconds, "grace": args.grace,
        }
        out = store.home / "latency.json"
        say(f"[{kind}] host process: TaskScheduler.start(), then refresh() every 1 s; "
            f"{args.latency_warmup:g} s warm-up and {args.latency_seconds:g} s measured "
            "after the first anchor ...")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config),
             "--worker-output", str(out)],
            capture_output=True, text=True, check=False, cwd=REPO,
        )
        worker_seconds = time.perf_counter() - started
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"latency worker failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        worker = json.loads(out.read_text())
        say(f"[{kind}] host process done in {worker_seconds:.0f} s (start() took "
            f"{worker['start_seconds']:.1f} s, {worker['recorded_fires']:,} of "
            f"{worker['expected_fires']:,} fires of the window recorded)")
        probed: dict[str, Any] = {}
        if probe:
            say(f"[{kind}] timing TaskService.add_task and a company load ...")
            probed = probe_add_task(store, args.add_task_probes, args.tasks)
    finally:
        databases.drop(store)
    return LatencyResult(kind, setup, worker, probed, worker_seconds)


# -- output ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "apscheduler": _version("apscheduler"),
        "eventsourcing": _version("eventsourcing"),
        "eventsourcing_sqlalchemy": _version("eventsourcing_sqlalchemy"),
        "psycopg": _version("psycopg"),
        "engine_source_sha256": engine_digest(),
    }


def engine_digest() -> str:
    """A short digest of the engine's source files, to tell which code a result measured."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "engine").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "?"


def table(header: list[str], rows: list[list[str]], left: int = 2) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()

    say(fmt(header))
    say("  ".join("-" * w for w in widths))
    for line in rows:
        say(fmt(line))


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def ms_text(value: float) -> str:
    if math.isinf(value):
        return "not recorded"
    if math.isnan(value):
        return "none"
    return f"{value:,.1f} ms" if value < 10_000 else f"{value / 1e3:,.1f} s"


def median_result(results: list[Throughput]) -> Throughput:
    """The round with the median runs/s (the lower middle one for an even count), with
    every round's figure attached."""
    ordered = sorted(results, key=lambda result: result.per_second)
    middle = ordered[(len(ordered) - 1) // 2]
    middle.extra["rounds_runs_per_second"] = [result.per_second for result in results]
    return middle


def print_results(
    throughput: list[Throughput], latency: list[LatencyResult], args: argparse.Namespace
) -> None:
    if throughput:
        say(f"--- (a) durable run throughput: {args.runs:,} no-op runs (after {args.warmup} "
            f"warm-up runs), each store fresh; median of {args.repeat} rounds, variants "
            "interleaved ---")
        rows = []
        for result in throughput:
            rounds = result.extra.get("rounds_runs_per_second", [result.per_second])
            rows.append([
                result.store, result.variant, f"{result.per_second:,.0f}",
                f"{min(rounds):,.0f}-{max(rounds):,.0f}",
                f">= {result.target:,.0f}" if result.target else "-", verdict(result.met),
                result.note,
            ])
        table(["store", "variant", "runs/s", "range", "target", "met",
               "where the time went (median round)"], rows)
        say("")
    if latency:
        say(f"--- (b) fire latency and (c) host RSS: {args.tasks:,} active tasks of "
            f"{args.companies:,} companies, anchors spread over the interval, TaskScheduler "
            f"started in a fresh process, {args.latency_seconds:g} s measured ---")
        rows = []
        for entry in latency:
            worker = entry.worker
            due, recorded = worker["expected_fires"], worker["recorded_fires"]
            p50, p99, worst = entry.delays("called_delay_ms")
            rows.append([
                entry.store, entry.label, "fires of the window recorded (+grace)",
                f"{recorded:,} of {due:,}", "", "", "", "",
            ])
            rows.append([
                entry.store, entry.label, "fire delay at _record_due call",
                ms_text(p50), ms_text(p99), ms_text(worst), f"< {TARGET_FIRE_P99_MS:g} ms",
                verdict(p99 < TARGET_FIRE_P99_MS),
            ])
            if recorded < due:
                c50, c99, cmax = entry.delays("called_delay_ms", all_fires=False)
                rows.append([
                    entry.store, entry.label, "  the same, recorded fires only",
                    ms_text(c50), ms_text(c99), ms_text(cmax), "", "",
                ])
            s50, s99, smax = entry.delays("saved_delay_ms", all_fires=False)
            rows.append([
                entry.store, entry.label, "fire delay, run saved (recorded fires)",
                ms_text(s50), ms_text(s99), ms_text(smax), "", "",
            ])
            r50, r99, rmax = entry.delays("start_delay_ms", all_fires=False)
            started = len(worker["start_delay_ms"])
            rows.append([
                entry.store, entry.label,
                f"run start delay, Started - instant ({started:,} started)",
                ms_text(r50), ms_text(r99), ms_text(rmax), "", "",
            ])
            rss = worker["rss_mb"]
            rows.append([
                entry.store, entry.label, "host RSS after the run (peak)",
                f"{rss['end']:.0f} MB", f"({rss['peak']:.0f} MB)", "",
                f"< {TARGET_RSS_MB:g} MB", verdict(rss["end"] < TARGET_RSS_MB),
            ])
            rows.append([
                entry.store, entry.label, "host RSS before the scheduler",
                f"{rss['before_scheduler']:.0f} MB", "", "", "", "",
            ])
        table(["store", "tasks", "figure", "p50 / value", "p99", "max", "target", "met"], rows,
              left=3)
        say("")
        for entry in latency:
            worker = entry.worker
            creation = entry.setup
            probe = entry.add_task
            rss = worker["rss_mb"]
            where = f"{entry.store}, {entry.label}"
            if worker["recorded_at_start"]:
                say(f"{where}: NOTE {worker['recorded_at_start']} occurrences fell due before "
                    "the host had started (raise --margin)")
            say(f"{where}: {worker['tasks_active']:,} active tasks, "
                f"{worker['timers']:,} timers; start() {worker['start_seconds']:.1f} s "
                f"({worker['recorded_at_start']} runs recorded during start); measured "
                f"{worker['window_seconds']:.0f} s: {worker['expected_fires']:,} fires due "
                f"({worker['fires_per_second']:.0f}/s), {worker['recorded_fires']:,} recorded, "
                f"{worker['window_runs_started']:,} started by the end (+{args.grace:g} s); "
                f"process CPU {worker['cpu_cores_used_in_window']:.2f} cores; refresh() p50 "
                f"{(worker['refresh_seconds']['p50'] or 0) * 1e3:.0f} ms, max "
                f"{(worker['refresh_seconds']['max'] or 0) * 1e3:.0f} ms; runs at the end "
                f"{worker['runs_by_status_at_end']}; warnings logged {worker['warnings_logged']}")
            say(f"{where}: RSS after imports {rss['after_imports']:.0f} MB, before the "
                f"scheduler {rss['before_scheduler']:.0f} MB, after start() "
                f"{rss['after_start']:.0f} MB, peak {rss['peak']:.0f} MB, end "
                f"{rss['end']:.0f} MB")
            say(f"{where}: {creation.tasks:,} tasks created by {creation.method}: "
                f"{creation.create_seconds:.1f} s + projection catch-up "
                f"{creation.catch_up_seconds:.1f} s")
            for line in worker["first_warnings"][:2]:
                say(f"{where}: warning: {line[:200]}")
            if not probe:
                continue
            fresh, held = probe["fresh_company"], probe["company_with_tasks"]
            say(f"{entry.store}: TaskService.add_task p50 {fresh['p50_ms']:.1f} ms into a fresh "
                f"company, {held['p50_ms']:.1f} ms into a company with "
                f"{held['company_events_before']:,} events; loading a company aggregate with "
                f"{probe['company_load']['tasks']:,} attached tasks: "
                f"{probe['company_load']['p50_ms']:.0f} ms (add_task loads the task's "
                "company)")
        say("")


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 runs; 1,000 tasks every 6 s, 10 s measured")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="an existing database on the PostgreSQL server, used to create and "
                             "drop the run's databases (default: %(default)s)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--runs", type=int, help="(a) timed runs per variant (default 2,000)")
    parser.add_argument("--warmup", type=int, help="(a) untimed runs first (default 100)")
    parser.add_argument("--repeat", type=int,
                        help="(a) rounds of every variant, interleaved; the median is shown "
                             "(default 5; 1 with --quick)")
    parser.add_argument("--tasks", type=int, help="(b, c) active tasks (default 10,000)")
    parser.add_argument("--every", type=lambda text: [int(part) for part in text.split(",")],
                        help="(b, c) the tasks' interval in seconds, one measurement per value, "
                             "comma-separated (default 60,600: about 167 and 17 fires/s; "
                             "6,60 with --quick, the same rates with a tenth of the tasks)")
    parser.add_argument("--companies", type=int, default=100,
                        help="(b, c) companies the tasks belong to, evenly (default %(default)s)")
    parser.add_argument("--latency-seconds", type=float,
                        help="(b) measured window in seconds, per interval (default 40)")
    parser.add_argument("--latency-warmup", type=float,
                        help="(b) seconds of fires before the window (default 5)")
    parser.add_argument("--margin", type=float,
                        help="(b) seconds from task creation to the first anchor; must cover "
                             "the task creation and the host start (default 25)")
    parser.add_argument("--grace", type=float, default=3.0,
                        help="(b) seconds the host keeps running after the window "
                             "(default %(default)s)")
    parser.add_argument("--add-task-probes", type=int, default=ADD_TASK_PROBES,
                        help="timed TaskService.add_task calls per company (default %(default)s)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip (a)")
    parser.add_argument("--skip-latency", action="store_true", help="skip (b) and (c)")
    parser.add_argument("--no-json", action="store_true", help="do not write results JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "runs": 200 if quick else 2_000,
        "warmup": 20 if quick else 100,
        "repeat": 1 if quick else 5,
        "tasks": 1_000 if quick else 10_000,
        "every": [6, 60] if quick else [60, 600],
        "latency_seconds": 10.0 if quick else 40.0,
        "latency_warmup": 3.0 if quick else 5.0,
        "margin": 20.0 if quick else 25.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    if args.worker:
        measured = latency_worker(json.loads(args.worker))
        Path(args.worker_output).write_text(json.dumps(measured))
        return 0

    started = time.perf_counter()
    info = machine()
    say(f"machine: {info['cpu_count']} cores (os.cpu_count()), {info['platform']}, "
        f"Python {info['python']} ({info['python_implementation']}), "
        f"SQLAlchemy {info['sqlalchemy']}, SQLite {info['sqlite']}, APScheduler "
        f"{info['apscheduler']}, eventsourcing {info['eventsourcing']}, "
        f"eventsourcing-sqlalchemy {info['eventsourcing_sqlalchemy']}, "
        f"psycopg {info['psycopg']}; engine source sha256 {info['engine_source_sha256']}")
    load = os.getloadavg()
    say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min; "
        "other work on the machine skews the figures)")
    say(f"run: (a) {args.runs:,} runs per variant after {args.warmup} warm-up; (b, c) "
        f"{args.tasks:,} tasks every {' and '.join(f'{e}s' for e in args.every)}, "
        f"{args.latency_seconds:g} s measured each"
        f"{' (--quick)' if args.quick else ''}")

    databases = Databases(None if args.no_postgres else args.postgres_url)
    databases.open()
    kinds = [] if args.no_sqlite else ["SQLite"]
    if databases.has_postgres:
        kinds.append("PostgreSQL")
        say(f"PostgreSQL {databases.postgres_version} at {databases.where} "
            f"({', '.join(f'{k}={v}' for k, v in databases.postgres_settings.items())}); "
            "a database is created per measurement and dropped after it")
    say("")

    throughput: list[Throughput] = []
    latency: list[LatencyResult] = []
    try:
        if not args.skip_throughput:
            for kind in kinds:
                repeats: dict[str, list[Throughput]] = {}
                for repetition in range(1, args.repeat + 1):
                    for label, bench in THROUGHPUT_VARIANTS:
                        store = databases.new(kind)
                        try:
                            result = bench(store, args.runs, args.warmup)
                        finally:
                            databases.drop(store)
                        say(f"[{kind}] (a) round {repetition}/{args.repeat} {label}: "
                            f"{result.per_second:,.0f} runs/s ({result.seconds:.2f} s)")
                        repeats.setdefault(label, []).append(result)
                throughput.extend(median_result(results) for results in repeats.values())
            say("")
        if not args.skip_latency:
            for kind in kinds:
                for position, every in enumerate(args.every):
                    latency.append(bench_latency(databases, kind, every, position == 0, args))
            say("")
    finally:
        databases.close()

    elapsed = time.perf_counter() - started
    say("=== results ===")
    say("")
    print_results(throughput, latency, args)
    load_end = os.getloadavg()
    say(f"total run time: {elapsed:.0f} s; load average at the end: {load_end[0]:.2f} "
        f"{load_end[1]:.2f} {load_end[2]:.2f}")

    if not args.no_json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"scheduling-{stamp}.json"
        path.write_text(json.dumps({
            "benchmark": "bench_scheduling",
            "timestamp": stamp,
            "machine": info,
            "postgres": {"version": databases.postgres_version,
                         "settings": databases.postgres_settings,
                         "skipped": databases.skip_reason},
            "arguments": {k: v for k, v in vars(args).items()
                          if k not in ("postgres_url", "worker", "worker_output")},
            "targets": {
                "sqlite_runs_per_second": TARGET_SQLITE_RUNS_PER_SECOND,
                "postgres_runs_per_second": TARGET_POSTGRES_RUNS_PER_SECOND,
                "fire_p99_ms": TARGET_FIRE_P99_MS,
                "rss_mb": TARGET_RSS_MB,
            },
            "total_seconds": elapsed,
            "load_average_start": load,
            "load_average_end": load_end,
            "throughput": [result.as_json() for result in throughput],
            "latency": [result.as_json() for result in latency],
        }, indent=2, default=str))
        say(f"results written to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
