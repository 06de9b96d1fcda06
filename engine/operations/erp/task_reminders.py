"""``task_reminders``: each CRM task's reminder once, from ``minutes_before`` its start
until it starts; to the client, the operator or an employee, by SMS (default) or
e-mail, with the task's own template, phone or e-mail where it sets them."""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime

from pydantic import Field

from engine.erp.document import WARSAW, CrmTask, ErpDocument
from engine.erp.model import OutboxEntry
from engine.erp.rules import reminder_due
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import (
    ErpJob,
    OperationParams,
    PlannedAction,
    base_values,
    by_code,
    deliver,
    email_account,
    message_entry,
    outbox_actions,
)

KIND = "task_reminders"
REMINDER_SUBJECT = "Przypomnienie: {task_title}"
REMINDER_BODY = "Przypomnienie: {task_title}, {task_start}."


class TaskRemindersParams(OperationParams):
    email_account: str | None = Field(default=None, description="Account to send from "
                                      "(default: the first).")


def reminder_key(task: CrmTask) -> str:
    """Once per task and start: a task moved to another time is reminded again."""
    return f"reminder:{task.id}:{task.start.isoformat()}"


def due_reminders(data: ErpDocument, now: datetime, sent: Set[str]) -> list[CrmTask]:
    due = [
        task for task in data.crm_tasks
        if task.reminder is not None and reminder_key(task) not in sent
        and reminder_due(task.start, task.reminder.minutes_before, now)
    ]
    return sorted(due, key=lambda task: (task.start, task.id))


def recipient(data: ErpDocument, task: CrmTask) -> str | None:
    """The phone or e-mail the reminder goes to (the task's override first)."""
    reminder = task.reminder
    assert reminder is not None
    override = reminder.phone if reminder.channel == "sms" else reminder.email
    if override:
        return override
    if reminder.to == "client":
        person = by_code(data.contractors, lambda entry: entry.code).get(task.contractor or "")
        if person is None:
            return None
        return person.phone if reminder.channel == "sms" else person.email
    if reminder.to == "operator":
        operator = by_code(data.operators, lambda entry: entry.code).get(task.operator or "")
        if operator is None:
            return None
        return operator.phone if reminder.channel == "sms" else operator.email
    return None


class TaskReminders:
    kind = KIND
    params_model = TaskRemindersParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def preview(self, job: ErpJob, params: TaskRemindersParams) -> list[PlannedAction]:
        due = due_reminders(job.data, job.instant, job.gateway.outbox_keys("reminder:"))
        return outbox_actions(job) + [
            PlannedAction(task.reminder.channel if task.reminder else "sms", task.id, {
                "to": recipient(job.data, task), "title": task.title,
                "start": task.start.isoformat()})
            for task in due
        ]

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: TaskRemindersParams) -> dict[str, int]:
        due = due_reminders(job.data, job.instant, job.gateway.outbox_keys("reminder:"))
        queued = 0
        with job.gateway.transaction() as writer:
            for task in due:
                entry = self._entry(job, params, task)
                if entry is not None and writer.add_outbox(entry):
                    queued += 1
        delivery = deliver(job)
        delivery.raise_if_retrying()
        return {"reminders": queued, **delivery.counts()}

    def _entry(self, job: ErpJob, params: TaskRemindersParams,
               task: CrmTask) -> OutboxEntry | None:
        data = job.data
        reminder = task.reminder
        assert reminder is not None
        to = recipient(data, task)
        if not to:
            what = "phone number" if reminder.channel == "sms" else "e-mail"
            job.warn(f"the reminder of task {task.id} has no {what} to go to; not sent")
            return None
        account = email_account(data, params.email_account)
        if reminder.channel == "email" and account is None:
            job.warn(f"the company has no e-mail account; the reminder of task {task.id} "
                     "was not sent")
            return None
        contractor = job.by_code("contractors").get(task.contractor or "")
        values = {**base_values(data), "task_title": task.title,
                  "task_start": task.start.astimezone(WARSAW).strftime("%Y-%m-%d %H:%M"),
                  "contractor_name": contractor.name if contractor else "",
                  "contractor_code": task.contractor or ""}
        template = job.by_code("templates").get(reminder.template or "")
        return message_entry(job, key=reminder_key(task), channel=reminder.channel, to=to,
                             template=template, default_subject=REMINDER_SUBJECT,
                             default_body=REMINDER_BODY, values=values, item=task.id,
                             account=account)
