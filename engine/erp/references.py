"""Checks that a document's codes point at something: in the document or already stored.

A document is refused whole with the JSON path of the first bad field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.domain.errors import DomainError
from engine.erp.document import ErpDocument


class ErpDataError(DomainError):
    """Signals a company data document that cannot be loaded; nothing of it was stored."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"company data {path}: {message}; nothing was loaded")
        self.path = path


@dataclass
class StoredCodes:
    """The codes already in the company's database, by kind."""

    email_accounts: set[str] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)
    contractors: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    templates: dict[str, str] = field(default_factory=dict)
    """Template code → channel."""
    dunning_schemes: dict[str, bool] = field(default_factory=dict)
    """Scheme code → whether it is the default."""
    warehouses: set[str] = field(default_factory=set)
    price_types: set[str] = field(default_factory=set)
    product_groups: set[str] = field(default_factory=set)


def check_references(document: ErpDocument, stored: StoredCodes) -> None:
    """:raises ErpDataError: for a code given twice in one list, a code that names
    nothing in the document or the database, a template of the wrong channel, or a set
    of dunning schemes without exactly one default."""
    for kind, entries in (
        ("email_accounts", [entry.code for entry in document.email_accounts]),
        ("operators", [entry.code for entry in document.operators]),
        ("contractors", [entry.code for entry in document.contractors]),
        ("products", [entry.code for entry in document.products]),
        ("templates", [entry.code for entry in document.templates]),
        ("recurring_invoices", [entry.code for entry in document.recurring_invoices]),
        ("receivables", [entry.id for entry in document.receivables]),
        ("dunning_schemes", [entry.code for entry in document.dunning_schemes]),
        ("crm_tasks", [entry.id for entry in document.crm_tasks]),
        ("service_order_templates", [entry.code for entry in document.service_order_templates]),
    ):
        _unique(kind, entries)

    accounts = stored.email_accounts | {entry.code for entry in document.email_accounts}
    operators = stored.operators | {entry.code for entry in document.operators}
    contractors = stored.contractors | {entry.code for entry in document.contractors}
    products = stored.products | {entry.code for entry in document.products}
    templates = {**stored.templates, **{entry.code: entry.channel for entry in document.templates}}
    schemes = {**stored.dunning_schemes,
               **{entry.code: entry.default for entry in document.dunning_schemes}}

    def need(path: str, code: str | None, known: Iterable[str], what: str) -> None:
        if code is not None and code not in known:
            raise ErpDataError(path, f"{what} {code!r} does not exist (neither in the document "
                               "nor in the company's data)")

    for i, operator in enumerate(document.operators):
        need(f"operators[{i}].email_account", operator.email_account, accounts, "e-mail account")
    for i, contractor in enumerate(document.contractors):
        need(f"contractors[{i}].dunning_scheme", contractor.dunning_scheme, schemes,
             "dunning scheme")
    for i, invoice in enumerate(document.recurring_invoices):
        where = f"recurring_invoices[{i}]"
        need(f"{where}.contractor", invoice.contractor, contractors, "contractor")
        need(f"{where}.operator", invoice.operator, operators, "operator")
        for j, line in enumerate(invoice.lines):
            need(f"{where}.lines[{j}].product", line.product, products, "product")
    for i, receivable in enumerate(document.receivables):
        need(f"receivables[{i}].contractor", receivable.contractor, contractors, "contractor")
    for i, scheme in enumerate(document.dunning_schemes):
        for j, stage in enumerate(scheme.stages):
            path = f"dunning_schemes[{i}].stages[{j}].template"
            need(path, stage.template, templates, "template")
            wanted = "sms" if stage.action == "sms" else "email"
            if stage.template is not None and stage.action != "crm_task" \
                    and templates[stage.template] != wanted:
                raise ErpDataError(path, f"template {stage.template!r} is an "
                                   f"{templates[stage.template]} template; action "
                                   f"{stage.action!r} needs an {wanted} template")
    defaults = sorted(code for code, default in schemes.items() if default)
    if schemes and len(defaults) != 1:
        raise ErpDataError(
            "dunning_schemes", "exactly one dunning scheme must be the default; "
            + (f"{', '.join(defaults)} are" if defaults else "none is")
        )
    for i, task in enumerate(document.crm_tasks):
        where = f"crm_tasks[{i}]"
        need(f"{where}.contractor", task.contractor, contractors, "contractor")
        need(f"{where}.operator", task.operator, operators, "operator")
        reminder = task.reminder
        if reminder is None:
            continue
        need(f"{where}.reminder.template", reminder.template, templates, "template")
        if reminder.to == "client" and task.contractor is None:
            raise ErpDataError(f"{where}.reminder.to", "a reminder to the client needs the "
                               "task's contractor")
        if reminder.to == "operator" and task.operator is None:
            raise ErpDataError(f"{where}.reminder.to", "a reminder to the operator needs the "
                               "task's operator")
        if reminder.to == "employee":
            override = reminder.phone if reminder.channel == "sms" else reminder.email
            if override is None:
                wanted_field = "phone" if reminder.channel == "sms" else "email"
                raise ErpDataError(f"{where}.reminder.{wanted_field}",
                                   f"a reminder to an employee by {reminder.channel} needs "
                                   f"reminder.{wanted_field}")
    for i, order in enumerate(document.service_order_templates):
        need(f"service_order_templates[{i}].contractor", order.contractor, contractors,
             "contractor")
        need(f"service_order_templates[{i}].template", order.template, templates, "template")
    _check_trade(document, stored, need, contractors, products)


def _check_trade(document: ErpDocument, stored: StoredCodes, need: Any,
                 contractors: set[str], products: set[str]) -> None:
    """The references of the trade keys (warehouses, stock, prices, groups, orders)."""
    for kind, codes in (
        ("warehouses", [entry.code for entry in document.warehouses]),
        ("price_types", [entry.code for entry in document.price_types]),
        ("product_groups", [entry.code for entry in document.product_groups]),
        ("employees", [entry.code for entry in document.employees]),
        ("sales_orders", [entry.number for entry in document.sales_orders]),
        ("retail_documents", [entry.number for entry in document.retail_documents]),
        ("cash_entries", [entry.id for entry in document.cash_entries]),
        ("payments", [entry.id for entry in document.payments]),
        ("partners", [str(entry.partner) for entry in document.partners]),
    ):
        _unique(kind, codes)
    warehouses = stored.warehouses | {entry.code for entry in document.warehouses}
    price_types = stored.price_types | {entry.code for entry in document.price_types}
    groups = stored.product_groups | {entry.code for entry in document.product_groups}
    for i, product in enumerate(document.products):
        need(f"products[{i}].group", product.group, groups, "product group")
    for i, group in enumerate(document.product_groups):
        need(f"product_groups[{i}].parent", group.parent, groups, "product group")
    for i, level in enumerate(document.stock):
        need(f"stock[{i}].product", level.product, products, "product")
        need(f"stock[{i}].warehouse", level.warehouse, warehouses, "warehouse")
    for i, price in enumerate(document.prices):
        need(f"prices[{i}].product", price.product, products, "product")
        need(f"prices[{i}].price_type", price.price_type, price_types, "price type")
    for i, order in enumerate(document.sales_orders):
        need(f"sales_orders[{i}].contractor", order.contractor, contractors, "contractor")
        for j, line in enumerate(order.lines):
            need(f"sales_orders[{i}].lines[{j}].product", line.product, products, "product")


def _unique(kind: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for index, code in enumerate(codes):
        if code in seen:
            key = "id" if kind in ("receivables", "crm_tasks") else "code"
            raise ErpDataError(f"{kind}[{index}].{key}", f"{code!r} appears twice in the document")
        seen.add(code)
