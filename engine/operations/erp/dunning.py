"""``dunning``: for each unpaid receivable above its scheme's ``skip_up_to``, the most
advanced stage due by the run's date and not done yet is executed once; earlier stages
not done are recorded as skipped, so a customer never gets several messages at once.

A contractor is dunned under its own scheme, else the default one. Actions: e-mail,
SMS, a CRM task for the operator, a payment reminder document (numbered
``PZ/{n}/{YYYY}``, its PDF e-mailed), a sales block. The history line, the document and
the message's outbox entry are recorded in one transaction per receivable batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import Field

from engine.erp.document import (
    Contractor,
    DunningScheme,
    DunningStage,
    ErpDocument,
    Receivable,
)
from engine.erp.gateway import ErpWriter
from engine.erp.model import DunningEntry, DunningMode, OutboxEntry, PaymentReminder
from engine.erp.money import money_text
from engine.erp.rules import dunning_step
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import (
    ErpJob,
    OperationParams,
    PlannedAction,
    base_values,
    batches,
    by_code,
    deliver,
    email_account,
    message_entry,
    outbox_actions,
)

KIND = "dunning"

DEFAULT_SUBJECT = "Przypomnienie o płatności {document_number}"
DEFAULT_BODY = (
    "Dzień dobry,\n\nprzypominamy o płatności za dokument {document_number} na kwotę "
    "{amount} {currency}, której termin minął {due_date}.\n\nZ poważaniem\n{seller_name}\n"
)


class DunningParams(OperationParams):
    schemes: list[str] = Field(default=[], description="Only these schemes (all if empty).")
    email_account: str | None = Field(default=None, description="Account to send from "
                                      "(default: the first).")
    operator: str | None = Field(default=None, description="Operator of the CRM tasks made.")
    batch_size: int = Field(default=200, ge=1, le=5000)


@dataclass(frozen=True)
class StageToRun:
    receivable: Receivable
    contractor: Contractor
    scheme: DunningScheme
    stage: int
    """Numbered from 1, in order of days."""
    skipped: tuple[int, ...]

    @property
    def definition(self) -> DunningStage:
        return self.scheme.stages[self.stage - 1]


def schemes_of(data: ErpDocument) -> tuple[dict[str, DunningScheme], DunningScheme | None]:
    schemes = by_code(data.dunning_schemes, lambda scheme: scheme.code)
    default = next((scheme for scheme in data.dunning_schemes if scheme.default), None)
    return schemes, default


def scheme_for(contractor: Contractor, schemes: dict[str, DunningScheme],
               default: DunningScheme | None) -> DunningScheme | None:
    if contractor.dunning_scheme is not None:
        return schemes.get(contractor.dunning_scheme)
    return default


def may_dun(receivable: Receivable, scheme: DunningScheme) -> bool:
    """Unpaid and above the scheme's threshold (paid receivables are never dunned)."""
    return receivable.remaining > 0 and receivable.remaining > scheme.skip_up_to


def stages_due(data: ErpDocument, done: dict[str, set[int]], today: date,
               only: list[str]) -> list[StageToRun]:
    """What automatic dunning does by ``today``, by due date and receivable."""
    schemes, default = schemes_of(data)
    contractors = by_code(data.contractors, lambda contractor: contractor.code)
    due = []
    for receivable in sorted(data.receivables, key=lambda item: (item.due_date, item.id)):
        contractor = contractors.get(receivable.contractor)
        if contractor is None:
            continue
        scheme = scheme_for(contractor, schemes, default)
        if scheme is None or (only and scheme.code not in only):
            continue
        if not may_dun(receivable, scheme):
            continue
        step = dunning_step(scheme.stages, done.get(receivable.id, set()),
                            receivable.due_date, today)
        if step.execute is not None:
            due.append(StageToRun(receivable, contractor, scheme, step.execute, step.skipped))
    return due


def stage_by_hand(data: ErpDocument, done: dict[str, set[int]], stage: int,
                  contractor_code: str | None) -> list[StageToRun]:
    """What a manual run of ``stage`` does: that stage, for every unpaid receivable above
    its scheme's threshold (of ``contractor_code``) whose scheme has it and that has not
    had it yet."""
    schemes, default = schemes_of(data)
    contractors = by_code(data.contractors, lambda contractor: contractor.code)
    chosen = []
    for receivable in sorted(data.receivables, key=lambda item: (item.due_date, item.id)):
        contractor = contractors.get(receivable.contractor)
        if contractor is None or (contractor_code and contractor.code != contractor_code):
            continue
        scheme = scheme_for(contractor, schemes, default)
        if scheme is None or stage > len(scheme.stages) or not may_dun(receivable, scheme):
            continue
        if stage in done.get(receivable.id, set()):
            continue
        chosen.append(StageToRun(receivable, contractor, scheme, stage, ()))
    return chosen


def plan_actions(items: list[StageToRun], today: date) -> list[PlannedAction]:
    actions = []
    for item in items:
        for skipped in item.skipped:
            actions.append(PlannedAction("skip", item.receivable.id, {
                "contractor": item.contractor.code, "stage": skipped}))
        actions.append(PlannedAction(item.definition.action, item.receivable.id, {
            "contractor": item.contractor.code, "stage": item.stage,
            "scheme": item.scheme.code, "remaining": money_text(item.receivable.remaining),
            "days_overdue": (today - item.receivable.due_date).days,
        }))
    return actions


class Dunning:
    kind = KIND
    params_model = DunningParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def preview(self, job: ErpJob, params: DunningParams) -> list[PlannedAction]:
        items = stages_due(job.data, job.gateway.dunning_stages_done(), job.today,
                           params.schemes)
        return outbox_actions(job) + plan_actions(items, job.today)

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: DunningParams) -> dict[str, int]:
        items = stages_due(job.data, job.gateway.dunning_stages_done(), job.today,
                           params.schemes)
        return execute_stages(job, params, items, "automatic")


def execute_stages(job: ErpJob, params: DunningParams, items: list[StageToRun],
                   mode: DunningMode) -> dict[str, int]:
    """Record ``items`` in transactions of ``params.batch_size`` receivables, then send
    the queued messages."""
    counts = {"actions": 0, "skipped": 0, "failed": 0}
    for batch in batches(items, params.batch_size):
        job.check_cancelled(f"{counts['actions']} dunning action(s)")
        with job.gateway.transaction() as writer:
            for item in batch:
                for skipped in item.skipped:
                    writer.add_dunning_entry(_entry(job, item, skipped, mode, "skipped", "",
                                                    "", "pominięty: późniejszy etap był już "
                                                    "należny"))
                    counts["skipped"] += 1
                outcome = _execute(job, writer, params, item, mode)
                counts["actions" if outcome == "done" else "failed"] += 1
    delivery = deliver(job)
    delivery.raise_if_retrying()
    return {**counts, **delivery.counts()}


def _entry(job: ErpJob, item: StageToRun, stage: int, mode: DunningMode, outcome: str,
           created: str, subject: str, description: str) -> DunningEntry:
    definition = item.scheme.stages[stage - 1]
    return DunningEntry(
        date=job.today, receivable=item.receivable.id, contractor=item.contractor.code,
        stage=stage, action=definition.action, created=created, subject=subject,
        description=description, mode=mode,
        outcome="skipped" if outcome == "skipped" else "failed" if outcome == "failed"
        else "done", run_id=job.run_id,
    )


def _execute(job: ErpJob, writer: ErpWriter, params: DunningParams, item: StageToRun,
             mode: DunningMode) -> str:
    """Record the stage's action and its history line; return ``done`` or ``failed``."""
    data = job.data
    receivable, contractor, stage = item.receivable, item.contractor, item.definition
    templates = job.by_code("templates")
    template = templates.get(stage.template or "")
    values = {
        **base_values(data), "contractor_name": contractor.name,
        "contractor_code": contractor.code, "document_number": receivable.document,
        "amount": money_text(receivable.remaining), "currency": receivable.currency,
        "due_date": receivable.due_date.isoformat(),
        "issue_date": receivable.issue_date.isoformat(),
        "days_overdue": (job.today - receivable.due_date).days,
    }
    description = f"etap {item.stage} ({stage.days:+d} dni od terminu): {stage.action}"
    key = f"dunning:{receivable.id}:{item.stage}"
    failure: str | None = None
    created = ""
    subject = ""
    entry: OutboxEntry | None = None
    account = email_account(data, params.email_account)
    if stage.action in ("email", "payment_reminder"):
        attachment = None
        if stage.action == "payment_reminder":
            number = f"PZ/{writer.next_number(f'PZ/{job.today.year}')}/{job.today.year}"
            writer.add_payment_reminder(PaymentReminder(
                number=number, receivable=receivable.id, contractor=contractor.code,
                document=receivable.document, issue_date=job.today,
                due_date=job.today + timedelta(days=7), amount=receivable.remaining,
                currency=receivable.currency, days_overdue=(job.today - receivable.due_date).days,
            ))
            values["document_number"] = receivable.document
            attachment = f"payment_reminder:{number}"
            created = number
        if not contractor.email:
            failure = f"contractor {contractor.code} has no e-mail"
        elif account is None:
            failure = "the company has no e-mail account"
        else:
            entry = message_entry(job, key=key, channel="email", to=contractor.email,
                                  template=template, default_subject=DEFAULT_SUBJECT,
                                  default_body=DEFAULT_BODY, values=values,
                                  item=receivable.id, account=account, attachment=attachment)
            created = created or key
            subject = entry.subject
    elif stage.action == "sms":
        if not contractor.phone:
            failure = f"contractor {contractor.code} has no phone number"
        else:
            entry = message_entry(job, key=key, channel="sms", to=contractor.phone,
                                  template=template, default_subject="",
                                  default_body=DEFAULT_BODY, values=values,
                                  item=receivable.id, account=None)
            created = key
            subject = entry.text.splitlines()[0] if entry.text else ""
    elif stage.action == "crm_task":
        created = f"DUN/{receivable.id}/{item.stage}"
        subject = (f"Windykacja: {receivable.document} ({contractor.name}), "
                   f"{money_text(receivable.remaining)} {receivable.currency}")
        writer.add_crm_task(created, subject, job.instant, contractor.code, params.operator)
    else:  # sales_block
        writer.block_sales(contractor.code)
        subject = f"Blokada sprzedaży: {contractor.name}"
    if entry is not None:
        writer.add_outbox(entry)
    if failure is not None:
        job.warn(f"dunning of {receivable.id} stage {item.stage} failed: {failure}")
        writer.add_dunning_entry(_entry(job, item, item.stage, mode, "failed",
                                        created if stage.action == "payment_reminder" else "",
                                        subject, f"{description}; {failure}"))
        return "failed"
    writer.add_dunning_entry(_entry(job, item, item.stage, mode, "done", created, subject,
                                    description))
    return "done"
