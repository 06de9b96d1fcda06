"""Recurring invoices issued and mailed by the real host, killed (SIGKILL) again and
again while it generates and while it mails: numbering stays gap-free, no invoice is
made twice, nothing is left unsent, and a mail goes twice at most (a crash between the
server's acceptance and its record), then with the same Message-ID."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from engine.adapters.erp_sqlalchemy import SqlErpGateway
from engine.adapters.secret_box import SecretBox
from engine.simulators.mail_catcher import MailCatcher
from tests.e2e.cli import Soa, process_exists, wait_until
from tests.support import PASSWORD

EXAMPLE = Path(__file__).parents[2] / "examples" / "company" / "firma-demo.json"
TEMPLATES = 40
PERIODS = 11  # monthly on the last day from 31 January to 30 November 2026
LOADED_MACHINE_SECONDS = 60


def company_document(catcher: MailCatcher) -> dict[str, Any]:
    """The example company with ``TEMPLATES`` monthly templates to issue and send."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["email_accounts"][0]["smtp_port"] = catcher.smtp_port
    document["sms_gateway"]["url"] = f"http://127.0.0.1:{catcher.sms_port}/sms"
    template = document["recurring_invoices"][0]
    document["recurring_invoices"] = [
        dict(template, code=f"ABON-{index:03d}", name=f"Abonament {index}",
             start="2026-01-31")
        for index in range(TEMPLATES)
    ]
    return document


@pytest.fixture
def host_and_catcher(tmp_path: Path) -> Iterator[tuple[Soa, MailCatcher]]:
    """The service on BIURO (embedded store) and the mail catcher in this process."""
    soa = Soa(tmp_path / "home", None, {"SOA_HEARTBEAT_SECONDS": "1",
                                        "SOA_LEASE_SECONDS": "3"})
    with MailCatcher(0, 0, tmp_path / "messages.jsonl") as catcher:
        try:
            yield soa, catcher
        finally:
            soa.kill_hosts()


def invoice_count(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM erp_invoices")).scalar_one())


def sent_count(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM erp_outbox WHERE status = 'sent'")).scalar_one())


def test_sigkill_while_invoicing_and_mailing_loses_and_doubles_nothing(
    host_and_catcher: tuple[Soa, MailCatcher], tmp_path: Path,
) -> None:
    soa, catcher = host_and_catcher
    soa.configure("BIURO", PASSWORD)
    company = soa.json("BIURO", "companies", "add", "Firma K")
    path = tmp_path / "company.json"
    path.write_text(json.dumps(company_document(catcher)), encoding="utf-8")
    soa.ok("BIURO", "erp", "load", "Firma K", str(path))
    task = soa.json("BIURO", "tasks", "add", "recurring_invoices", "--company", "Firma K",
                    "--name", "Faktury", "--daily", "05:00", "--max-attempts", "40",
                    "--backoff", "0.1s", "--param", "batch_size=2")
    run_id = soa.json("BIURO", "tasks", "run-now", task["id"], "--as-of",
                      "2026-12-15T06:00")["run_id"]
    engine = sqlalchemy.create_engine(company["database_url"])
    gateway = SqlErpGateway(engine, SecretBox.from_home(soa.home, None))
    total = TEMPLATES * PERIODS
    rng = random.Random(20261203)
    kills = {"generating": 0, "mailing": 0}
    for kill in range(8):
        # the pid from start's own line: asking the status takes a process more
        pid = int(re.findall(r"process (\d+)", soa.ok("BIURO", "start"))[0])
        soa.host_pids.add(pid)
        before_invoices, before_sent = invoice_count(engine), sent_count(engine)
        if kill < 4 and before_invoices < total:  # aim at the generation...
            wait_until(lambda before=before_invoices: invoice_count(engine) > before,
                       timeout=LOADED_MACHINE_SECONDS, interval=0.02)
            time.sleep(rng.uniform(0, 0.05))
        else:  # ...then at the mailing
            wait_until(lambda before=before_sent: invoice_count(engine) == total
                       and sent_count(engine) > before,
                       timeout=LOADED_MACHINE_SECONDS, interval=0.02)
            time.sleep(rng.uniform(0, 0.4))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: not process_exists(pid), timeout=LOADED_MACHINE_SECONDS)
        mailing = invoice_count(engine) == total
        kills["mailing" if mailing else "generating"] += 1
    soa.start("BIURO")
    wait_until(lambda: soa.json("AUDIT", "runs", "show", run_id)["status"] == "succeeded",
               timeout=300, interval=0.5)
    soa.ok("BIURO", "stop")

    invoices = gateway.invoices()
    # Check: every period once
    assert len(invoices) == total
    assert len({(invoice.template, invoice.period) for invoice in invoices}) == total
    # Check: numbering per type and month gap-free from 1
    series: dict[str, list[int]] = defaultdict(list)
    for invoice in invoices:
        kind, number, month, year = invoice.number.split("/")
        series[f"{kind}/{month}/{year}"].append(int(number))
    assert len(series) == PERIODS
    for numbers in series.values():
        assert sorted(numbers) == list(range(1, TEMPLATES + 1))
    # Check: nothing left unsent
    assert all(invoice.sent_at is not None for invoice in invoices)
    assert {entry.status for entry in gateway.outbox()} == {"sent"}
    # Check: each invoice's mail arrived once, or twice with the same Message-ID
    by_subject: dict[str, list[str]] = defaultdict(list)
    for message in catcher.messages():
        by_subject[message["subject"]].append(message["message_id"])
    assert len(by_subject) == total
    doubled = {subject: ids for subject, ids in by_subject.items() if len(ids) > 1}
    assert all(len(ids) == 2 and ids[0] == ids[1] for ids in doubled.values()), doubled
    assert len(doubled) <= kills["mailing"]
    assert kills["generating"] >= 2 and kills["mailing"] >= 2, kills
    engine.dispose()
