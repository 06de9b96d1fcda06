"""What the synchronisation tests share: a company gateway on SQLite or PostgreSQL, the
partner simulator on loopback, and runs of a partner's operation as a host makes them."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from cryptography.fernet import Fernet

from engine.adapters.cipher_box import CipherBox
from engine.adapters.erp_sync_sql import SqlCompanyGateway
from engine.adapters.http_clients import PooledHttpClients
from engine.adapters.secret_box import SecretBox
from engine.application.erp import parse_document
from engine.erp.references import check_references
from engine.operations.contract import CompanyResources, RunContext
from engine.operations.sync.core import PartnerSync
from engine.ports.outbound import CompanyDatabase, MailSender, SmsSender
from engine.ports.runs import CheckpointStore
from tests.support import temporary_postgres_database


class _Database(CompanyDatabase):
    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self._engine = engine

    @property
    def url(self) -> str:
        return str(self._engine.url)

    def sql_engine(self) -> sqlalchemy.Engine:
        return self._engine


class _Checkpoints(CheckpointStore):
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def put(self, key: str, value: str) -> None:
        self.values[key] = value


class _NoMail(MailSender):
    def send(self, server: Any, mail: Any) -> str:
        raise AssertionError("a synchronisation sends no mail")


class _NoSms(SmsSender):
    def send(self, gateway: Any, sms: Any) -> str:
        raise AssertionError("a synchronisation sends no SMS")


@contextmanager
def company_gateway(store_kind: str, tmp_path: Path) -> Iterator[SqlCompanyGateway]:
    """A company's gateway on a fresh SQLite file or PostgreSQL database."""
    if store_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'company.db'}"
        context = None
    else:
        context = temporary_postgres_database()
        url = context.__enter__()
    engine = sqlalchemy.create_engine(url)
    gateway = SqlCompanyGateway(engine, SecretBox.from_key(Fernet.generate_key()),
                                CipherBox.from_key(base64.urlsafe_b64encode(os.urandom(32))))
    try:
        yield gateway
    finally:
        engine.dispose()
        if context is not None:
            context.__exit__(None, None, None)


def load(gateway: SqlCompanyGateway, document: dict[str, Any]) -> dict[str, int]:
    parsed = parse_document(json.dumps(document))
    check_references(parsed, gateway.codes())
    return gateway.load(parsed)


class SyncRunner:
    """Runs a partner's operation against a gateway as a host would (fresh run ids)."""

    def __init__(self, gateway: SqlCompanyGateway, operation: PartnerSync) -> None:
        self.gateway = gateway
        self.operation = operation
        self.http = PooledHttpClients(timeout=httpx.Timeout(10.0, connect=5.0))
        self.warnings: list[str] = []
        self.runs = 0

    def run(self, **params: Any) -> dict[str, int]:
        self.runs += 1
        resources = CompanyResources(
            database=_Database(self.gateway.engine), mail=_NoMail(), sms=_NoSms(),
            http=self.http, erp_gateway=self.gateway)
        ctx = RunContext(
            run_id=f"run-{self.runs}", task_id="task", company="Firma",
            scheduled_for=datetime.now(UTC), attempt=1,
            params=self.operation.params_model.model_validate(params),
            checkpoints=_Checkpoints(), resources=resources, warnings=self.warnings)
        return self.operation.run(ctx)

    def close(self) -> None:
        self.http.close()


def sim_state(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/_sim/state", timeout=10).json())


def sim_post(base: str, path: str, body: Any) -> Any:
    answer = httpx.post(f"{base}{path}", json=body, timeout=30)
    answer.raise_for_status()
    return answer.json() if answer.content else None


def survive_faults(runner: SyncRunner, simulator_url: str, *, error_rate: float = 0.3,
                   reset_rate: float = 0.1) -> None:
    """Run under the simulator's faults until a run succeeds (a run may give up on a
    stubborn partner; the next goes on from there), then once more without faults."""
    sim_post(simulator_url, "/_sim/faults", {"error_rate": error_rate,
                                             "reset_rate": reset_rate})
    try:
        for _ in range(20):
            try:
                runner.run()
                break
            except Exception:  # PartnerUnavailableError after too many faults in a row
                continue
        else:
            raise AssertionError("no run succeeded under faults in 20 tries")
    finally:
        sim_post(simulator_url, "/_sim/faults", {"error_rate": 0, "reset_rate": 0})
    runner.run()
