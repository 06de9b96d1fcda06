"""``recurring_orders``: a service order on each due date of an active template (its
next date up to the run's date), numbered ``ZS/{n}/{YYYY}``; the next date then
advances by ``every_months`` (anchored on the start's day, clamped to the month's end).
A notice goes to the customer by e-mail and/or SMS from ``remind_days_before`` days
before the date to the date itself, once per date and channel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from dataclasses import dataclass

from pydantic import Field

from engine.erp.document import ErpDocument, ServiceOrderTemplate
from engine.erp.model import OutboxEntry, ServiceOrder
from engine.erp.rules import next_order_date, order_notice_due
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import (
    ErpJob,
    OperationParams,
    PlannedAction,
    base_values,
    deliver,
    email_account,
    message_entry,
    outbox_actions,
)

KIND = "recurring_orders"
NOTICE_SUBJECT = "Zlecenie serwisowe {order_date}"
NOTICE_BODY = ("Dzień dobry,\n\nprzypominamy o zleceniu serwisowym w dniu {order_date}: "
               "{order_description}.\n\nZ poważaniem\n{seller_name}\n")


class RecurringOrdersParams(OperationParams):
    templates: list[str] = Field(default=[], description="Only these templates (all if empty).")
    email_account: str | None = Field(default=None, description="Account to send notices "
                                      "from (default: the first).")


@dataclass(frozen=True)
class DueOrder:
    template: ServiceOrderTemplate
    date: dt.date
    next_date: dt.date


@dataclass(frozen=True)
class DueNotice:
    template: ServiceOrderTemplate
    date: dt.date
    channel: str

    @property
    def key(self) -> str:
        return f"order-notice:{self.template.code}:{self.date.isoformat()}:{self.channel}"


def due_work(data: ErpDocument, today: dt.date, sent: Set[str],
             only: list[str]) -> tuple[list[DueOrder], list[DueNotice]]:
    """The orders due by ``today`` (oldest first) and the notices to send."""
    orders: list[DueOrder] = []
    notices: list[DueNotice] = []
    for template in data.service_order_templates:
        if not template.active or (only and template.code not in only):
            continue
        current = template.next_date or template.start
        dates = []
        while current <= today:
            following = next_order_date(template.start, template.every_months, current)
            orders.append(DueOrder(template, current, following))
            dates.append(current)
            current = following
        dates.append(current)
        for order_date in dates:
            if not order_notice_due(order_date, template.remind_days_before, today):
                continue
            for channel, wanted in (("email", template.notify_email),
                                    ("sms", template.notify_sms)):
                notice = DueNotice(template, order_date, channel)
                if wanted and notice.key not in sent:
                    notices.append(notice)
    orders.sort(key=lambda order: (order.date, order.template.code))
    return orders, notices


class RecurringOrders:
    kind = KIND
    params_model = RecurringOrdersParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def _work(self, job: ErpJob,
              params: RecurringOrdersParams) -> tuple[list[DueOrder], list[DueNotice]]:
        return due_work(job.data, job.today, job.gateway.outbox_keys("order-notice:"),
                        params.templates)

    def preview(self, job: ErpJob, params: RecurringOrdersParams) -> list[PlannedAction]:
        orders, notices = self._work(job, params)
        return outbox_actions(job) + [
            PlannedAction("service_order", order.template.code, {
                "date": order.date.isoformat(), "contractor": order.template.contractor,
                "next_date": order.next_date.isoformat()})
            for order in orders
        ] + [
            PlannedAction(notice.channel, notice.template.code, {
                "date": notice.date.isoformat(), "contractor": notice.template.contractor})
            for notice in notices
        ]

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: RecurringOrdersParams) -> dict[str, int]:
        orders, notices = self._work(job, params)
        made = 0
        for order in orders:
            job.check_cancelled(f"{made} order(s)")
            with job.gateway.transaction() as writer:
                year = order.date.year
                number = f"ZS/{writer.next_number(f'ZS/{year}')}/{year}"
                writer.add_service_order(ServiceOrder(
                    number=number, template=order.template.code,
                    contractor=order.template.contractor, date=order.date,
                    description=order.template.description, run_id=job.run_id,
                ), order.next_date)
            made += 1
        queued = 0
        with job.gateway.transaction() as writer:
            for notice in notices:
                entry = self._notice(job, params, notice)
                if entry is not None and writer.add_outbox(entry):
                    queued += 1
        delivery = deliver(job)
        delivery.raise_if_retrying()
        return {"orders": made, "notices": queued, **delivery.counts()}

    def _notice(self, job: ErpJob, params: RecurringOrdersParams,
                notice: DueNotice) -> OutboxEntry | None:
        data = job.data
        template = notice.template
        contractor = job.by_code("contractors")[template.contractor]
        to = contractor.email if notice.channel == "email" else contractor.phone
        if not to:
            job.warn(f"contractor {contractor.code} has no "
                     f"{'e-mail' if notice.channel == 'email' else 'phone number'}; the "
                     f"notice of order {template.code} on {notice.date} was not sent")
            return None
        account = email_account(data, params.email_account)
        if notice.channel == "email" and account is None:
            job.warn(f"the company has no e-mail account; the notice of order "
                     f"{template.code} on {notice.date} was not sent")
            return None
        values = {**base_values(data), "contractor_name": contractor.name,
                  "contractor_code": contractor.code, "order_date": notice.date.isoformat(),
                  "order_description": template.description}
        message_template = job.by_code("templates").get(template.template or "")
        return message_entry(job, key=notice.key, channel=notice.channel, to=to,
                             template=message_template, default_subject=NOTICE_SUBJECT,
                             default_body=NOTICE_BODY, values=values,
                             item=f"{template.code}@{notice.date.isoformat()}",
                             account=account)
