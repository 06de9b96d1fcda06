"""Sending invoices to KSeF at volume, beside the ``ksef-client`` SDK's own loop.

Run from the repository root::

    .venv/bin/python benchmarks/bench_ksef.py                          # 1,000 invoices, 3 rounds
    .venv/bin/python benchmarks/bench_ksef.py --invoices 50 --rounds 1 # smoke run
    .venv/bin/python benchmarks/bench_ksef.py --postgres               # SQLite and PostgreSQL

Engine: one ``KsefSend().execute`` of a company with N issued FA invoices and KSeF
configured, timed from the call until all N are accepted: each invoice rendered as
FA(3) XML and checked against the XSD, recorded ``prepared``, uploaded in one online
session (recorded before and after the upload), polled until KSeF's final answer, its UPO
fetched and the acceptance recorded; login and session included. Peer: the SDK itself
(``KsefClient``, ``AuthCoordinator``, ``OnlineSessionWorkflow``) sending the same FA(3)
bytes the engine rendered: token login, one online session, every invoice sent, the
session closed, every invoice polled until 200 and its UPO fetched. The peer renders,
validates and records nothing.

The KSeF simulator runs in a process of its own (``soa simulate ksef``, no rate limit,
no processing delay), reset with a new token before every round. Rounds alternate
engine and peer; each figure is the median of the rounds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import ksef_client
import sqlalchemy
from cryptography.fernet import Fernet
from ksef_client import KsefClientOptions
from ksef_client.models import FormCode, PublicKeyCertificateUsage
from ksef_client.services.workflows import AuthCoordinator, OnlineSessionWorkflow
from stdnum.pl import nip as nip_number

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import engine.operations.erp.ksef_send as ksef_send_module  # noqa: E402
from engine.adapters.cipher_box import CipherBox  # noqa: E402
from engine.adapters.erp_sync_sql import SqlCompanyGateway  # noqa: E402
from engine.adapters.ksef_fa3 import validate_fa3  # noqa: E402
from engine.adapters.ksef_sdk import SdkKsefClient, SdkKsefOptions  # noqa: E402
from engine.adapters.secret_box import SecretBox  # noqa: E402
from engine.adapters.sql import create_sql_engine  # noqa: E402
from engine.application.erp import parse_document  # noqa: E402
from engine.erp.ksef import KsefSettings  # noqa: E402
from engine.erp.references import check_references  # noqa: E402
from engine.operations.erp.common import ErpJob  # noqa: E402
from engine.operations.erp.ksef_send import (  # noqa: E402
    KsefSend,
    KsefSender,
    KsefSendParams,
    party_of_contractor,
    party_of_seller,
)
from engine.operations.erp.recurring_invoices import (  # noqa: E402
    RecurringInvoices,
    RecurringInvoicesParams,
)
from engine.ports.ksef import KsefInvoiceDocument  # noqa: E402

WARSAW = ZoneInfo("Europe/Warsaw")
SELLER_NIP = "5239384994"
ISSUE_INSTANT = datetime(2026, 11, 30, 6, 0, tzinfo=WARSAW)
KSEF_SINCE = date(2026, 11, 1)
CONTRACTORS = 100
POLL_SECONDS = 0.01
AUTH_POLL_SECONDS = 0.01
WARM_UP_INVOICES = 5
FA3_FORM_CODE = FormCode(schema_version="1-0E", system_code="FA (3)", value="FA")
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SDK_OPTIONS = SdkKsefOptions(auth_poll_interval=AUTH_POLL_SECONDS)


# -- the simulator (its own process) -------------------------------------------------------


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    soa = str(Path(sys.executable).parent / "soa")
    process = subprocess.Popen([soa, "simulate", "ksef", "--port", "0", "--rate-limit", "0",
                                "--processing-seconds", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    url = next((word for word in line.split() if word.startswith("http://")), None)
    if url is None:
        process.terminate()
        raise SystemExit(f"the KSeF simulator did not start: {line!r}")
    return process, url.rstrip(",")


def fresh_simulator(sim: str) -> str:
    """Reset the simulator; a new KSeF token for the seller."""
    httpx.post(f"{sim}/_sim/reset", json={}, timeout=30).raise_for_status()
    answer = httpx.post(f"{sim}/_sim/tokens", json={"nip": SELLER_NIP}, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["token"])


def sim_state(sim: str) -> dict[str, Any]:
    answer = httpx.get(f"{sim}/_sim/state", timeout=60)
    answer.raise_for_status()
    return dict(answer.json())


def check_simulator(sim: str, invoices: int, what: str) -> dict[str, str]:
    """The simulator's accepted invoices (number -> KSeF number); fails loudly unless
    exactly ``invoices`` were accepted once each and nothing else happened."""
    state = sim_state(sim)
    accepted = {entry["invoice_number"]: entry["ksef_number"] for entry in state["accepted"]}
    problems = []
    if len(accepted) != invoices or len(state["accepted"]) != invoices:
        problems.append(f"{len(state['accepted'])} accepted, expected {invoices}")
    if state["rejected"]:
        problems.append(f"{len(state['rejected'])} rejected, first: {state['rejected'][0]}")
    if state["processing"]:
        problems.append(f"{state['processing']} still processing")
    if any(entry["uploads"] != 1 for entry in state["accepted"]):
        problems.append("an invoice was uploaded more than once")
    if problems:
        raise SystemExit(f"{what}: the work was not done: {'; '.join(problems)}")
    return accepted


# -- the company ---------------------------------------------------------------------------


def contractor_nips(count: int) -> list[str]:
    nips: list[str] = []
    candidate = 526_000_000
    while len(nips) < count:
        candidate += 37
        digits = f"{candidate:09d}"
        check = sum(weight * int(digit) for weight, digit in
                    zip((6, 5, 7, 2, 3, 4, 5, 6, 7), digits, strict=True)) % 11
        if check != 10 and nip_number.is_valid(digits + str(check)):
            nips.append(digits + str(check))
    return nips


def company_document(invoices: int) -> dict[str, Any]:
    """A seller, 100 Polish buyers with NIPs, three products (23 %, 8 %, 5 %) and one
    monthly template of three lines per invoice, issued on 2026-11-30."""
    contractors = [{"code": f"K{index:03d}", "name": f"Klient {index:03d} Sp. z o.o.",
                    "nip": nip, "email": f"faktury@klient{index:03d}.example.pl",
                    "address": f"ul. Długa {index + 1}, 00-{index:03d} Warszawa"}
                   for index, nip in enumerate(contractor_nips(CONTRACTORS))]
    products = [
        {"code": "ABON-IT", "name": "Abonament IT", "net_price": "1000.00", "vat_rate": "23"},
        {"code": "CATERING", "name": "Catering", "net_price": "120.50", "vat_rate": "8"},
        {"code": "KSIAZKA", "name": "Podręcznik", "net_price": "80.00", "vat_rate": "5"},
    ]
    lines = [{"product": "ABON-IT", "quantity": "1"}, {"product": "CATERING", "quantity": "3"},
             {"product": "KSIAZKA", "quantity": "2.5"}]
    templates = [{"code": f"ABON-{index:05d}", "name": f"Abonament {index:05d}",
                  "contractor": f"K{index % CONTRACTORS:03d}", "lines": lines,
                  "start": ISSUE_INSTANT.date().isoformat(), "day_of_month": "last",
                  "mode": "issue"} for index in range(invoices)]
    return {
        "seller": {"name": "Serwis Komputerowy Żółw Sp. z o.o.", "nip": SELLER_NIP,
                   "address": "ul. Świętokrzyska 12, 00-916 Warszawa",
                   "bank_account": "PL61 1090 1014 0000 0712 1981 2874",
                   "email": "biuro@zolw.example.pl"},
        "contractors": contractors, "products": products, "recurring_invoices": templates,
    }


@contextlib.contextmanager
def fresh_store(kind: str, folder: Path) -> Iterator[str]:
    """A SQLite file in ``folder``, or a PostgreSQL database created for the round and
    dropped after it (even after an error)."""
    if kind == "SQLite":
        path = folder / f"company-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            path.unlink(missing_ok=True)
        return
    import psycopg

    name = f"soa_bench_ksef_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def issued_company(url: str, invoices: int) -> SqlCompanyGateway:
    """The company loaded and its N invoices issued by ``recurring_invoices`` while KSeF
    is not configured yet (so nothing is sent); not timed."""
    gateway = SqlCompanyGateway(create_sql_engine(url),
                                SecretBox.from_key(Fernet.generate_key()),
                                CipherBox.from_key(base64.urlsafe_b64encode(os.urandom(32))))
    document = parse_document(json.dumps(company_document(invoices)))
    check_references(document, gateway.codes())
    gateway.load(document)
    job = ErpJob(kind="recurring_invoices", run_id="bench-issue", instant=ISSUE_INSTANT,
                 gateway=gateway)
    made = RecurringInvoices().execute(job, RecurringInvoicesParams(attachment="none"))
    issued = [invoice for invoice in gateway.invoices()
              if invoice.type == "FA" and invoice.status == "issued"]
    if len(issued) != invoices:
        raise SystemExit(f"setup: {len(issued)} invoices issued, expected {invoices}: {made}")
    return gateway


def warm_renderer(gateway: SqlCompanyGateway, client: SdkKsefClient) -> None:
    """Render one invoice untimed: the XSD is loaded once per process, as in a host."""
    data = gateway.data()
    invoice = gateway.invoices()[0]
    assert data.seller is not None
    contractor = next(entry for entry in data.contractors if entry.code == invoice.contractor)
    client.render(KsefInvoiceDocument(invoice=invoice, seller=party_of_seller(data.seller),
                                      buyer=party_of_contractor(contractor),
                                      bank_account=data.seller.bank_account))


# -- measuring the engine's parts ----------------------------------------------------------


@dataclass
class Meter:
    """Seconds and calls per part, added up by wrapped methods."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, owner: Any, name: str, part: str,
             then: Callable[[Any], Any] | None = None) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[part] = self.seconds.get(part, 0.0) + (
                    time.perf_counter() - started)
                self.calls[part] = self.calls.get(part, 0) + 1
            return result if then is None else then(result)

        setattr(owner, name, timed)


DATABASE_READS = ("data", "ksef_settings", "ksef_candidates", "ksef_submissions")
DATABASE_WRITES = ("prepare_ksef", "record_ksef_upload", "record_ksef_sent",
                   "record_ksef_accepted", "record_ksef_rejected")
PARTS = ("render + XSD", "database writes", "database reads", "login", "open session", "send",
         "close session", "status polls", "UPO", "poll sleeps", "engine's own code")


def instrument(gateway: SqlCompanyGateway, client: SdkKsefClient, meter: Meter) -> None:
    """Wrap the gateway's KSeF and data methods, the client's render and connection and
    the session's calls (instance attributes: a few microseconds per call)."""
    for name in DATABASE_READS:
        meter.wrap(gateway, name, "database reads")
    for name in DATABASE_WRITES:
        meter.wrap(gateway, name, "database writes")
    meter.wrap(client, "render", "render + XSD")

    def session_opened(session: Any) -> Any:
        meter.wrap(session, "send", "send")
        meter.wrap(session, "close", "close session")
        return session

    def connected(connection: Any) -> Any:
        meter.wrap(connection, "open_session", "open session", session_opened)
        meter.wrap(connection, "invoice_status", "status polls")
        meter.wrap(connection, "upo", "UPO")
        return connection

    meter.wrap(client, "connect", "login", connected)


# -- the two sides -------------------------------------------------------------------------


@dataclass
class EngineRound:
    seconds: float
    parts: dict[str, float]
    calls: dict[str, int]
    xml: list[bytes]
    commit_ms: float


def engine_round(kind: str, folder: Path, sim: str, invoices: int, number: int) -> EngineRound:
    with fresh_store(kind, folder) as url:
        gateway = issued_company(url, invoices)
        try:
            client = SdkKsefClient(SDK_OPTIONS)
            warm_renderer(gateway, client)
            token = fresh_simulator(sim)
            gateway.configure_ksef(KsefSettings(environment="URL", base_url=sim,
                                                nip=SELLER_NIP, method="token",
                                                since=KSEF_SINCE, token=token))
            meter = Meter()
            instrument(gateway, client, meter)
            sleeps: list[float] = []

            def sleep(seconds: float) -> None:
                started = time.perf_counter()
                time.sleep(seconds)
                sleeps.append(time.perf_counter() - started)

            warnings: list[str] = []
            job = ErpJob(kind="ksef_send", run_id=f"bench-{kind}-{number}",
                         instant=datetime.now(UTC), gateway=gateway, ksef=client,
                         warn=warnings.append)
            params = KsefSendParams(limit=invoices, poll_seconds=POLL_SECONDS,
                                    wait_seconds=600)
            operation = KsefSend()
            # KsefSend.execute calls send_to_ksef: the same pass, with the poll pauses
            # counted (KsefSender's sleep, time.sleep by default)
            original = ksef_send_module.send_to_ksef
            ksef_send_module.send_to_ksef = lambda job, params, settings: KsefSender(
                job, params, sleep=sleep).run(settings)
            try:
                started = time.perf_counter()
                counts = operation.execute(job, params)
            finally:
                ksef_send_module.send_to_ksef = original
            seconds = time.perf_counter() - started
            parts, calls = dict(meter.seconds), dict(meter.calls)
            check_engine(gateway, sim, invoices, counts, warnings, kind)
            parts["poll sleeps"] = sum(sleeps)
            parts["engine's own code"] = seconds - sum(parts.values())
            calls["poll sleeps"] = len(sleeps)
            xml = [submission.xml or b""
                   for submission in gateway.ksef_submissions(with_xml=True)]
            return EngineRound(seconds, parts, calls, xml, commit_ms(gateway.engine))
        finally:
            gateway.engine.dispose()


def commit_ms(engine: sqlalchemy.Engine, count: int = 200) -> float:
    """Median ms of a bare transaction updating one row of a probe table in the same
    database, through the same SQLAlchemy engine: what a durable commit costs here."""
    probe = sqlalchemy.Table("bench_commit_probe", sqlalchemy.MetaData(),
                             sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True),
                             sqlalchemy.Column("n", sqlalchemy.Integer))
    probe.create(engine)
    with engine.begin() as connection:
        connection.execute(probe.insert(), {"id": 1, "n": 0})
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(probe.update().values(n=probe.c.n + 1))
        samples.append(time.perf_counter() - started)
    return median(samples) * 1000


def check_engine(gateway: SqlCompanyGateway, sim: str, invoices: int, counts: dict[str, int],
                 warnings: list[str], kind: str) -> None:
    what = f"engine ({kind})"
    expected = {"ksef_prepared": invoices, "ksef_sent": invoices, "ksef_accepted": invoices,
                "ksef_duplicates": 0, "ksef_rejected": 0, "ksef_processing": 0,
                "ksef_unanswered": 0}
    if counts != expected or warnings:
        raise SystemExit(f"{what}: the work was not done: counts {counts}, warnings "
                         f"{warnings[:3]}")
    accepted = check_simulator(sim, invoices, what)
    submissions = gateway.ksef_submissions("accepted")
    if len(submissions) != invoices:
        raise SystemExit(f"{what}: {len(submissions)} submissions recorded accepted")
    for submission in submissions:
        if (submission.ksef_number != accepted.get(submission.invoice) or not submission.upo
                or submission.ksef_number not in submission.upo):
            raise SystemExit(f"{what}: invoice {submission.invoice} not recorded as KSeF "
                             "accepted it (number or UPO)")
    if any(invoice.ksef_status != "accepted" for invoice in gateway.invoices()):
        raise SystemExit(f"{what}: an invoice is not marked accepted")


@dataclass
class PeerRound:
    seconds: float
    parts: dict[str, float]
    polls: int


def peer_round(sim: str, xml: list[bytes]) -> PeerRound:
    """The SDK's own loop: login, session, send all, close, poll each until 200, UPO."""
    token = fresh_simulator(sim)
    parts: dict[str, float] = {}
    upos: dict[str, str] = {}
    polls = 0
    started = time.perf_counter()
    sdk = ksef_client.KsefClient(KsefClientOptions(base_url=sim, timeout_seconds=30))
    try:
        certificate = sdk.security.get_public_key_certificate_pem(
            PublicKeyCertificateUsage.KSEFTOKENENCRYPTION)
        access = AuthCoordinator(sdk.auth).authenticate_with_ksef_token(
            token=token, public_certificate=certificate, context_identifier_type="nip",
            context_identifier_value=SELLER_NIP, poll_interval_seconds=AUTH_POLL_SECONDS,
            max_attempts=150).access_token
        mark = time.perf_counter()
        parts["login"] = mark - started
        symmetric = sdk.security.get_public_key_certificate_pem(
            PublicKeyCertificateUsage.SYMMETRICKEYENCRYPTION)
        workflow = OnlineSessionWorkflow(sdk.sessions)
        session = workflow.open_session(form_code=FA3_FORM_CODE, public_certificate=symmetric,
                                        access_token=access)
        reference = session.reference_number
        parts["open session"] = time.perf_counter() - mark
        mark = time.perf_counter()
        pending = [workflow.send_invoice(session_reference_number=reference, invoice_xml=each,
                                         encryption_data=session.encryption_data,
                                         access_token=access).reference_number
                   for each in xml]
        parts["send"] = time.perf_counter() - mark
        mark = time.perf_counter()
        workflow.close_session(reference, access)
        parts["close session"] = time.perf_counter() - mark
        parts["status polls"] = parts["UPO"] = parts["poll sleeps"] = 0.0
        while pending:
            waiting = []
            for invoice_reference in pending:
                mark = time.perf_counter()
                status = sdk.sessions.get_session_invoice_status(
                    reference, invoice_reference, access_token=access)
                polls += 1
                parts["status polls"] += time.perf_counter() - mark
                code = status.status.code
                if code == 200:
                    mark = time.perf_counter()
                    upo = sdk.sessions.get_session_invoice_upo_by_ref(
                        reference, invoice_reference, access_token=access).decode("utf-8")
                    upos[str(status.ksef_number)] = upo
                    parts["UPO"] += time.perf_counter() - mark
                elif code >= 200:
                    raise SystemExit(f"peer: KSeF answered {code} {status.status.description}"
                                     f" for invoice {invoice_reference}")
                else:
                    waiting.append(invoice_reference)
            pending = waiting
            if pending:
                mark = time.perf_counter()
                time.sleep(POLL_SECONDS)
                parts["poll sleeps"] += time.perf_counter() - mark
    finally:
        sdk.close()
    seconds = time.perf_counter() - started
    accepted = check_simulator(sim, len(xml), "peer")
    if sorted(upos) != sorted(accepted.values()) or any(
            number not in upo for number, upo in upos.items()):
        raise SystemExit("peer: the UPOs do not match the accepted invoices")
    parts["loop's own code"] = seconds - sum(parts.values())
    return PeerRound(seconds, parts, polls)


# -- the run -------------------------------------------------------------------------------


def validation_seconds(xml: list[bytes]) -> float:
    """XSD validation alone of the engine's XML (as ``render_fa3`` ends with it)."""
    started = time.perf_counter()
    for each in xml:
        validate_fa3(each)
    return time.perf_counter() - started


def lxml_validation_seconds(xml: list[bytes]) -> float:
    """For comparison: the same XML parsed and validated by lxml (libxml2) against the
    same XSD, as the simulator checks it."""
    from lxml import etree

    from engine.simulators.ksef.documents import fa3_schema

    schema = fa3_schema()
    started = time.perf_counter()
    for each in xml:
        if not schema.validate(etree.fromstring(each)):
            raise SystemExit("lxml refused the engine's XML")
    return time.perf_counter() - started


def postgres_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except Exception as error:  # any failure: the store is skipped
        return " ".join(str(error).split())[:200]


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true",
                        help="also PostgreSQL at 127.0.0.1:5432 (a database per round)")
    args = parser.parse_args()
    invoices, rounds = args.invoices, args.rounds
    print(f"bench_ksef: {invoices:,} invoices, {rounds} round(s); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.platform()}, Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, ksef-client "
          f"{_version('ksef-client')}, xmlschema {_version('xmlschema')}; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    kinds = ["SQLite"]
    if args.postgres:
        reason = postgres_reason()
        if reason is None:
            kinds.append("PostgreSQL")
        else:
            print(f"PostgreSQL SKIPPED: {reason}")
    process, sim = start_simulator()
    print(f"simulator: {sim} in process {process.pid} (rate limit off, processing 0 s); "
          f"polls every {POLL_SECONDS} s, login polled every {AUTH_POLL_SECONDS} s")
    begun = time.perf_counter()
    engine_rounds: dict[str, list[EngineRound]] = {kind: [] for kind in kinds}
    peer_rounds: list[PeerRound] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            # untimed: the first use of the SDK in this process and of the XSD in the
            # simulator's (both load it once) are paid here, not by the first round
            warm = engine_round(kinds[0], Path(folder), sim, WARM_UP_INVOICES, 0)
            peer_round(sim, warm.xml)
            for number in range(1, rounds + 1):
                for kind in kinds:
                    result = engine_round(kind, Path(folder), sim, invoices, number)
                    engine_rounds[kind].append(result)
                    peer = peer_round(sim, result.xml)
                    peer_rounds.append(peer)
                    print(f"round {number}: engine ({kind}) {result.seconds:.2f} s, "
                          f"SDK loop {peer.seconds:.2f} s")
            xml = engine_rounds[kinds[0]][-1].xml
            validation = median([validation_seconds(xml) for _ in range(3)])
            lxml_validation = median([lxml_validation_seconds(xml) for _ in range(3)])
    finally:
        process.terminate()
        process.wait(timeout=10)

    peer_s = median([peer.seconds for peer in peer_rounds])
    print(f"\n{'figure':40} {'engine':>9} {'SDK loop':>9} {'ratio':>6} {'invoices/s':>11} "
          f"{'(SDK loop)':>11}")
    ratios: dict[str, float] = {}
    for kind in kinds:
        engine_s = median([each.seconds for each in engine_rounds[kind]])
        ratios[kind] = engine_s / peer_s
        print(f"{f'send {invoices:,} invoices, {kind}':40} {engine_s:8.2f}s {peer_s:8.2f}s "
              f"{ratios[kind]:6.2f} {invoices / engine_s:11,.0f} {invoices / peer_s:11,.0f}")
    for kind in kinds:
        met = "met" if ratios[kind] <= 1.3 else "NOT met"
        print(f"target ratio <= 1.3 ({kind}): {met} ({ratios[kind]:.2f})")
    print("\nThe SDK loop: token login, one online session, every invoice sent, the session "
          "closed,\nevery invoice polled until 200 and its UPO fetched. The engine "
          "additionally renders FA(3)\nfrom the company's data, validates it against the "
          "XSD and records every step in the\ncompany database (prepared, uploaded in a "
          "session, sent: one transaction per 100 invoices;\naccepted with the UPO: one "
          "per poll round).")

    print("\nwhere the time goes (median of the rounds, ms per invoice; calls in the "
          "last round):")
    header = f"{'part':22}" + "".join(f"{kind:>14}" for kind in kinds) + f"{'SDK loop':>14}"
    print(header)
    peer_parts = {part: median([peer.parts.get(part, 0.0) for peer in peer_rounds])
                  for part in (*PARTS, "loop's own code")}
    for part in PARTS:
        cells = []
        for kind in kinds:
            value = median([each.parts.get(part, 0.0) for each in engine_rounds[kind]])
            calls = engine_rounds[kind][-1].calls.get(part)
            cells.append(f"{value / invoices * 1000:7.2f} ({calls if calls else '-':>4})")
        peer_key = "loop's own code" if part == "engine's own code" else part
        peer_value = peer_parts.get(peer_key, 0.0)
        peer_cell = ("" if part in ("render + XSD", "database writes", "database reads")
                     else f"{peer_value / invoices * 1000:14.2f}")
        print(f"{part:22}" + "".join(f"{cell:>14}" for cell in cells) + peer_cell)
    totals = "".join(
        f"{median([each.seconds for each in engine_rounds[kind]]) / invoices * 1000:14.2f}"
        for kind in kinds)
    print(f"{'total':22}{totals}{peer_s / invoices * 1000:14.2f}")
    print(f"of render + XSD: XSD validation alone {validation / invoices * 1000:.2f} ms per "
          f"invoice (validate_fa3 on the engine's XML, median of 3 passes)")
    print(f"for comparison: lxml validating the same XML against the same XSD "
          f"{lxml_validation / invoices * 1000:.2f} ms per invoice")
    for kind in kinds:
        writes = median([each.parts["database writes"] for each in engine_rounds[kind]])
        calls = engine_rounds[kind][-1].calls["database writes"]
        commits = median([each.commit_ms for each in engine_rounds[kind]])
        print(f"database writes, {kind}: {writes / calls * 1000:.2f} ms per write "
              f"transaction ({calls:,} for {invoices:,} invoices); a bare one-row "
              f"transaction in the same database {commits:.2f} ms (median of 200, after "
              "each round)")
    print(f"SDK loop status polls per round: {peer_rounds[-1].polls:,}")
    print(f"\ntotal run time {time.perf_counter() - begun:.0f} s")


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
