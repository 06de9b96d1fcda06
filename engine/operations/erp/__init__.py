"""The ERP's own operations, built-in task kinds acting on the company data model:
``recurring_invoices``, ``dunning``, ``recurring_orders``, ``task_reminders``,
``invoice_mailing`` and ``ksef_send``.

Each has a parameter model whose every field has a default, runs idempotently on its
run id, and can ``preview`` what a run as of an instant would do, writing nothing.
"""

from __future__ import annotations

HANDLERS: dict[str, str] = {
    "recurring_invoices": "engine.operations.erp.recurring_invoices:RecurringInvoices",
    "dunning": "engine.operations.erp.dunning:Dunning",
    "recurring_orders": "engine.operations.erp.recurring_orders:RecurringOrders",
    "task_reminders": "engine.operations.erp.task_reminders:TaskReminders",
    "invoice_mailing": "engine.operations.erp.invoice_mailing:InvoiceMailing",
    "ksef_send": "engine.operations.erp.ksef_send:KsefSend",
}
"""Built-in kind → ``module:class`` of its handler, imported on first use."""
