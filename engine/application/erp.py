"""Use cases of a company's ERP data: load and export the data document, list what the
operations made, preview an operation as of an instant, and dun by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from engine.application.errors import InvalidRequestError
from engine.domain.company import company_id
from engine.domain.errors import NotFoundError
from engine.erp.document import ErpDocument, json_path
from engine.erp.gateway import ErpGateway, ErpGateways
from engine.erp.model import (
    OUTBOX_STATUSES,
    DunningEntry,
    Invoice,
    OutboxEntry,
    OutboxStatus,
    ServiceOrder,
)
from engine.erp.printing import DocumentPrinter
from engine.erp.references import ErpDataError, check_references
from engine.erp.sync import SyncGateway
from engine.erp.trade import SalesOrder
from engine.operations.registry import OperationRegistry
from engine.ports.host import Clock
from engine.ports.outbound import CompanyDatabases, MailSender, SmsSender
from engine.ports.read_models import ReadModels


def document_schema() -> dict[str, Any]:
    """The JSON Schema of the company data document."""
    return ErpDocument.model_json_schema(mode="validation")


def parse_document(text: str | bytes) -> ErpDocument:
    """The document in ``text``.

    :raises ErpDataError: naming the JSON path of the first bad field.
    """
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ErpDataError("$", f"is not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ErpDataError("$", "must be a JSON object with keys such as seller, contractors")
    try:
        return ErpDocument.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "is not a known field"
        raise ErpDataError(json_path(tuple(first["loc"])), message) from None


class ErpService:
    """The company data use cases; each company's gateway comes from its database."""

    def __init__(self, *, read_models: ReadModels, databases: CompanyDatabases,
                 gateways: ErpGateways, registry: OperationRegistry, clock: Clock,
                 mail: MailSender | None = None, sms: SmsSender | None = None,
                 printer: DocumentPrinter | None = None) -> None:
        self.read_models = read_models
        self.databases = databases
        self.gateways = gateways
        self.registry = registry
        self.clock = clock
        self.mail = mail
        self.sms = sms
        self.printer = printer

    def gateway(self, company: str) -> ErpGateway:
        """The ERP data of the company named ``company``.

        :raises NotFoundError: for a company that is not registered.
        """
        try:
            wanted: UUID | None = company_id(company)
        except ValueError:
            wanted = None
        self.read_models.catch_up()
        view = self.read_models.company(wanted) if wanted else None
        if view is None or view.removed:
            known = ", ".join(item.name for item in self.read_models.companies()) or "none yet"
            raise NotFoundError(f"company {company.strip()!r} is not known; known are: {known}")
        return self.gateways.for_database(self.databases.get(view.id, view.database_url))

    def load(self, company: str, text: str | bytes) -> dict[str, int]:
        """Upsert the document in ``text``, whole or not at all.

        :raises ErpDataError: for a bad document (nothing is stored).
        """
        gateway = self.gateway(company)
        document = parse_document(text)
        check_references(document, gateway.codes())
        return gateway.load(document)

    def export(self, company: str) -> dict[str, Any]:
        """The company's data as a document that loads back to the same state (no secrets)."""
        return self.gateway(company).export().model_dump(mode="json")

    def invoices(self, company: str) -> list[Invoice]:
        return self.gateway(company).invoices()

    def sales_orders(self, company: str) -> list[SalesOrder]:
        """Customer orders, by date and number (none if the gateway keeps no trade data)."""
        gateway = self.gateway(company)
        return gateway.sales_orders() if isinstance(gateway, SyncGateway) else []

    def service_orders(self, company: str) -> list[ServiceOrder]:
        return self.gateway(company).service_orders()

    def dunning_history(self, company: str) -> list[DunningEntry]:
        return self.gateway(company).dunning_history()

    def outbox(self, company: str, status: str | None = None) -> list[OutboxEntry]:
        if status is not None and status not in OUTBOX_STATUSES:
            raise InvalidRequestError(f"outbox status {status!r} is not known; allowed are "
                                      f"{', '.join(OUTBOX_STATUSES)}")
        checked: OutboxStatus | None = status
        return self.gateway(company).outbox(checked)

    def preview(self, company: str, kind: str, *, as_of: datetime | None = None,
                params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """What a run of ``kind`` as of ``as_of`` (default now) would do; writes nothing.

        :raises DomainError: for a kind without a preview or parameters it refuses.
        """
        from engine.operations.erp.common import ErpJob

        operation = self.registry.get(kind)
        preview = getattr(operation, "preview", None)
        if preview is None:
            raise InvalidRequestError(f"kind {kind!r} has no preview; the ERP operations "
                                      "(recurring_invoices, dunning, recurring_orders, "
                                      "task_reminders, invoice_mailing) have one")
        validated = self.registry.validate_params(kind, dict(params or {}))
        model: type[BaseModel] | None = operation.params_model
        job = ErpJob(kind=kind, run_id="preview", instant=self._instant(as_of),
                     gateway=self.gateway(company))
        planned = preview(job, model.model_validate(validated) if model else validated)
        return [action.as_json() for action in planned]

    def dun(self, company: str, *, stage: int, contractor: str | None = None,
            as_of: datetime | None = None) -> tuple[dict[str, int], list[str]]:
        """Run dunning ``stage`` by hand (mode ``manual``) for the unpaid receivables (of
        ``contractor``) that have not had it; return counts and warnings.

        :raises InvalidRequestError: for a stage below 1.
        """
        from engine.operations.erp.common import ErpJob
        from engine.operations.erp.dunning import DunningParams, execute_stages, stage_by_hand

        if stage < 1:
            raise InvalidRequestError(f"stage {stage} is not a stage number; stages are "
                                      "numbered from 1 in order of days")
        warnings: list[str] = []
        job = ErpJob(kind="dunning", run_id=f"manual-{uuid4()}", instant=self._instant(as_of),
                     gateway=self.gateway(company), mail=self.mail, sms=self.sms,
                     printer=self.printer, warn=warnings.append)
        if contractor is not None and contractor not in {
                entry.code for entry in job.data.contractors}:
            raise NotFoundError(f"contractor {contractor!r} is not in the company's data")
        items = stage_by_hand(job.data, job.gateway.dunning_stages_done(), stage, contractor)
        return execute_stages(job, DunningParams(), items, "manual"), warnings

    def _instant(self, as_of: datetime | None) -> datetime:
        if as_of is None:
            return self.clock.now()
        if as_of.tzinfo is None:
            raise InvalidRequestError("as_of must carry a time zone")
        return as_of
