"""The ERP gateway over SQLAlchemy Core: a company's data in ``erp_`` tables of its own
database (SQLite or PostgreSQL, the same code).

The tables are created when a gateway is first used. Master data is upserted by code
with ``INSERT ... ON CONFLICT``; secrets are stored encrypted by a :class:`SecretBox`.
Money is ``NUMERIC(14, 2)`` (quantities ``NUMERIC(14, 4)``) and read back as exact
``Decimal``; times are stored in UTC and read back aware (UTC). Uniqueness the
operations rely on (an invoice per template and period, an order per template and
date, a dunning line per receivable and stage) is kept by unique constraints, whose
violation leaves the adapter as :class:`AlreadyRecordedError`; any other database
failure leaves it as :class:`StoreUnavailableError`.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from pydantic import SecretStr, TypeAdapter
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Row,
    String,
    Table,
    Text,
    TextClause,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from engine.adapters.secret_box import SecretBox
from engine.adapters.sql import store_errors, translating_store_errors
from engine.erp.document import (
    Contractor,
    CrmTask,
    DunningScheme,
    DunningStage,
    EmailAccount,
    ErpDocument,
    InvoiceLineTemplate,
    Operator,
    Product,
    Receivable,
    RecurringInvoice,
    Reminder,
    Seller,
    ServiceOrderTemplate,
    SmsGatewayAccount,
    Template,
)
from engine.erp.gateway import AlreadyRecordedError, ErpGateway, ErpGateways, ErpWriter
from engine.erp.model import (
    DunningEntry,
    Invoice,
    InvoiceLine,
    OutboxEntry,
    OutboxStatus,
    PaymentReminder,
    ServiceOrder,
)
from engine.erp.money import VAT_RATES, Amounts
from engine.erp.references import StoredCodes
from engine.ports.outbound import CompanyDatabase

ERP_SCHEMA_LOCK_KEY = 0x50A_E4E9
"""PostgreSQL advisory lock serialising the creation of the ``erp_`` tables."""

_CHUNK = 500
"""Codes per ``IN (...)`` list."""


# -- column types ------------------------------------------------------------------------

class Money(TypeDecorator[Decimal]):
    """``NUMERIC(14, 2)`` read back as a ``Decimal`` with exactly two decimals (SQLite
    keeps numerics as floats; 14 digits survive a float exactly)."""

    impl = Numeric
    cache_ok = True
    scale = 2

    def __init__(self) -> None:
        super().__init__(precision=14, scale=self.scale, asdecimal=True)
        self._quantum = Decimal(1).scaleb(-self.scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # SQLite: take the float as it is, converted once below
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(14, self.scale, asdecimal=False))
        return dialect.type_descriptor(Numeric(14, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return number.quantize(self._quantum)

    def result_processor(self, dialect: Dialect,
                         coltype: Any) -> Callable[[Any], Decimal | None]:
        """:meth:`process_result_value` without the layers (money is read in bulk)."""
        quantum = self._quantum

        def process(value: Any) -> Decimal | None:
            if value is None:
                return None
            return (Decimal(repr(value)) if value.__class__ is float
                    else Decimal(value)).quantize(quantum)

        return process


class Quantity(Money):
    """``NUMERIC(14, 4)`` read back as a ``Decimal`` with four decimals."""

    scale = 4


class UtcTime(TypeDecorator[datetime]):
    """An aware time: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, UTC text on SQLite;
    read back aware, in UTC, on both."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


IdType = BigInteger().with_variant(Integer(), "sqlite")

# -- tables ------------------------------------------------------------------------------

metadata = MetaData()

SINGLE_ROW = 1
"""The id of the one row of ``erp_seller`` and ``erp_sms_gateway``."""

seller_table = Table(
    "erp_seller", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("nip", String(10), nullable=False),
    Column("address", Text, nullable=False),
    Column("bank_account", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
)

email_accounts_table = Table(
    "erp_email_accounts", metadata,
    Column("code", Text, primary_key=True),
    Column("address", Text, nullable=False),
    Column("smtp_host", Text, nullable=False),
    Column("smtp_port", Integer, nullable=False),
    Column("security", String(10), nullable=False),
    Column("username", Text),
    Column("password", Text, comment="Fernet token (SOA_HOME/secret.key)"),
)

sms_gateway_table = Table(
    "erp_sms_gateway", metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("token", Text, comment="Fernet token (SOA_HOME/secret.key)"),
    Column("sender", Text, nullable=False),
)

operators_table = Table(
    "erp_operators", metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email_account", Text),
    Column("email", Text),
    Column("phone", Text),
)

contractors_table = Table(
    "erp_contractors", metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("nip", String(10)),
    Column("email", Text),
    Column("phone", Text),
    Column("address", Text, nullable=False),
    Column("dunning_scheme", Text),
    Column("sales_blocked", Boolean, nullable=False),
)

products_table = Table(
    "erp_products", metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit", Text, nullable=False),
    Column("net_price", Money(), nullable=False),
    Column("vat_rate", String(2), nullable=False),
)

templates_table = Table(
    "erp_templates", metadata,
    Column("code", Text, primary_key=True),
    Column("channel", String(5), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
)

recurring_invoices_table = Table(
    "erp_recurring_invoices", metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", String(3), nullable=False),
    Column("contractor", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("every", Integer, nullable=False),
    Column("unit", String(5), nullable=False),
    Column("day_of_month", String(4), comment="1-31, last, or null"),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("payment_days", Integer, nullable=False),
    Column("mode", String(14), nullable=False),
    Column("operator", Text),
    Column("active", Boolean, nullable=False),
    Column("last_period", Date, comment="the latest period generated (by the engine)"),
)

recurring_invoice_lines_table = Table(
    "erp_recurring_invoice_lines", metadata,
    Column("recurring_invoice", Text, ForeignKey("erp_recurring_invoices.code"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("product", Text, nullable=False),
    Column("quantity", Quantity(), nullable=False),
    Column("net_price", Money()),
)

receivables_table = Table(
    "erp_receivables", metadata,
    Column("id", Text, primary_key=True),
    Column("contractor", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("amount", Money(), nullable=False),
    Column("remaining", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
)

dunning_schemes_table = Table(
    "erp_dunning_schemes", metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("skip_up_to", Money(), nullable=False),
)

dunning_stages_table = Table(
    "erp_dunning_stages", metadata,
    Column("scheme", Text, ForeignKey("erp_dunning_schemes.code"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("days", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("template", Text),
)

crm_tasks_table = Table(
    "erp_crm_tasks", metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("start_at", UtcTime(), nullable=False),
    Column("contractor", Text),
    Column("operator", Text),
    Column("employee", Text),
    Column("reminder_minutes_before", Integer, comment="null: no reminder"),
    Column("reminder_to", String(10)),
    Column("reminder_channel", String(5)),
    Column("reminder_template", Text),
    Column("reminder_phone", Text),
    Column("reminder_email", Text),
)

service_order_templates_table = Table(
    "erp_service_order_templates", metadata,
    Column("code", Text, primary_key=True),
    Column("contractor", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("every_months", Integer, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("remind_days_before", Integer, nullable=False),
    Column("next_date", Date, nullable=False, comment="advanced by each order made"),
    Column("notify_email", Boolean, nullable=False),
    Column("notify_sms", Boolean, nullable=False),
    Column("template", Text),
    Column("active", Boolean, nullable=False),
)

invoices_table = Table(
    "erp_invoices", metadata,
    Column("number", Text, primary_key=True),
    Column("seq", Integer, nullable=False, comment="the number's first digits, to sort by"),
    Column("type", String(3), nullable=False),
    Column("contractor", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(6), nullable=False),
    Column("template", Text),
    Column("period", Date),
    Column("net", Money(), nullable=False),
    Column("vat", Money(), nullable=False),
    Column("gross", Money(), nullable=False),
    Column("vat_by_rate", JSON, nullable=False,
           comment='{"23": {"net": "100.00", "vat": "23.00", "gross": "123.00"}, ...}'),
    Column("run_id", Text),
    Column("sent_at", UtcTime()),
    UniqueConstraint("template", "period", name="erp_invoices_template_period_key"),
    Index("erp_invoices_order_idx", "type", "issue_date", "seq"),
)

invoice_lines_table = Table(
    "erp_invoice_lines", metadata,
    Column("invoice", Text, ForeignKey("erp_invoices.number"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("product", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("quantity", Quantity(), nullable=False),
    Column("unit_net_price", Money(), nullable=False),
    Column("vat_rate", String(2), nullable=False),
    Column("net", Money(), nullable=False),
    Column("vat", Money(), nullable=False),
    Column("gross", Money(), nullable=False),
)

service_orders_table = Table(
    "erp_service_orders", metadata,
    Column("number", Text, primary_key=True),
    Column("template", Text, nullable=False),
    Column("contractor", Text, nullable=False),
    Column("order_date", Date, nullable=False),
    Column("description", Text, nullable=False),
    Column("run_id", Text),
    UniqueConstraint("template", "order_date", name="erp_service_orders_template_date_key"),
)

dunning_history_table = Table(
    "erp_dunning_history", metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("entry_date", Date, nullable=False),
    Column("receivable", Text, nullable=False),
    Column("contractor", Text, nullable=False),
    Column("stage", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("created", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("run_id", Text),
    UniqueConstraint("receivable", "stage", name="erp_dunning_history_receivable_stage_key"),
    Index("erp_dunning_history_created_idx", "created"),
)

payment_reminders_table = Table(
    "erp_payment_reminders", metadata,
    Column("number", Text, primary_key=True),
    Column("receivable", Text, nullable=False),
    Column("contractor", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("amount", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("days_overdue", Integer, nullable=False),
)

numbering_table = Table(
    "erp_numbering", metadata,
    Column("series", Text, primary_key=True),
    Column("last", Integer, nullable=False),
)

outbox_table = Table(
    "erp_outbox", metadata,
    Column("id", IdType, primary_key=True, autoincrement=True, comment="queue order"),
    Column("key", Text, nullable=False, unique=True),
    Column("operation", Text, nullable=False),
    Column("channel", String(5), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("item", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("account", Text),
    Column("attachment", Text),
    Column("status", String(7), nullable=False),
    Column("message_id", Text),
    Column("sent_at", UtcTime()),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("given_up", Boolean, nullable=False, comment="a final failure: never tried again"),
    Column("created_at", UtcTime(), nullable=False),
    Index("erp_outbox_operation_status_idx", "operation", "status"),
)

PRODUCT_COLUMNS = {"code", "name", "unit", "net_price", "vat_rate"}
CONTRACTOR_DETAILS = {"country", "vat_id"}
"""Contractor fields kept beside ``erp_contractors`` (by the company gateway)."""
"""What ``erp_products`` keeps of a product (the rest is a subclass's)."""

_FIRST_DIGITS = re.compile(r"\d+")


def number_seq(number: str) -> int:
    """The first run of digits in ``number`` (``FA/12/03/2026`` → 12), 0 if none: what
    numbers of one series sort by."""
    match = _FIRST_DIGITS.search(number)
    return int(match.group()) if match and len(match.group()) < 10 else 0


def plain_quantity(quantity: Decimal) -> Decimal:
    """``quantity`` without trailing zeros nor an exponent (``2.5000`` → ``2.5``,
    ``100.0000`` → ``100``)."""
    normal = quantity.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _duplicate(error: IntegrityError) -> str | None:
    """What a unique violation names, without the values: the constraint (PostgreSQL,
    such as ``erp_invoices_template_period_key``) or the columns (SQLite, such as
    ``erp_invoices.template, erp_invoices.period``); None for another integrity error."""
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if isinstance(constraint, str):
        return constraint if getattr(error.orig, "sqlstate", None) == "23505" else None
    message = str(error.orig)
    prefix = "UNIQUE constraint failed: "
    return message.removeprefix(prefix) if message.startswith(prefix) else None


# -- statements --------------------------------------------------------------------------

class _Statements:
    """The statements of one dialect, built once. SQLAlchemy does not cache the compiled
    form of ``ON CONFLICT`` inserts, so the writer's are kept as text (whose compiled
    form is cached), in the syntax PostgreSQL and SQLite share."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect.name
        self._quote = dialect.identifier_preparer.quote
        last = self._quote("last")
        self.next_number = self._insert_text(
            numbering_table, ["series", "last"], ["series"],
            f"DO UPDATE SET {last} = {self._quote(numbering_table.name)}.{last} + 1 "
            f"RETURNING {last}",
        )
        self.add_outbox = self._insert_text(
            outbox_table, [column.name for column in outbox_table.columns if column.name != "id"],
            ["key"], "DO NOTHING",
        )
        self.add_invoice = insert(invoices_table)
        self.add_invoice_lines = insert(invoice_lines_table)
        self.add_service_order = insert(service_orders_table)
        self.add_dunning_entry = insert(dunning_history_table)
        self.add_payment_reminder = insert(payment_reminders_table)
        self.add_crm_task = insert(crm_tasks_table)
        self.advance_period = (
            update(recurring_invoices_table)
            .where(recurring_invoices_table.c.code == bindparam("b_template"))
            .where(or_(recurring_invoices_table.c.last_period.is_(None),
                       recurring_invoices_table.c.last_period < bindparam("b_period")))
            .values(last_period=bindparam("b_period"))
        )

    def _insert_text(self, table: Table, columns: Sequence[str], conflict: Sequence[str],
                     action: str) -> TextClause:
        """``INSERT INTO table (columns) VALUES (...) ON CONFLICT (conflict) action``, its
        parameters named and typed as the columns."""
        quote = self._quote
        sql = (f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
               f"VALUES ({', '.join(':' + name for name in columns)}) "
               f"ON CONFLICT ({', '.join(map(quote, conflict))}) {action}")
        return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type)
                                      for name in columns))

    def insert(self, table: Table) -> Insert:
        """An insert that can take ``ON CONFLICT`` (PostgreSQL's or SQLite's)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _on_conflict_update(self, statement: Insert, key: Sequence[Column[Any]],
                            values: dict[str, Any]) -> Insert:
        if isinstance(statement, postgresql.Insert):
            return statement.on_conflict_do_update(index_elements=key, set_=values)
        assert isinstance(statement, sqlite.Insert)
        return statement.on_conflict_do_update(index_elements=key, set_=values)

    def upsert(self, table: Table, columns: Iterable[str], *, keep: Iterable[str] = (),
               keep_if_null: Iterable[str] = ()) -> Insert:
        """Insert rows of ``columns``, or update those whose primary key exists: every
        column but ``keep``; a column of ``keep_if_null`` only with a non-null value."""
        statement = self.insert(table)
        excluded = cast(Any, statement).excluded
        key = list(table.primary_key.columns)
        kept = {*keep, *(column.name for column in key)}
        coalesced = set(keep_if_null)
        values: dict[str, Any] = {}
        for name in columns:
            if name in kept:
                continue
            values[name] = (func.coalesce(excluded[name], table.c[name]) if name in coalesced
                            else excluded[name])
        return self._on_conflict_update(statement, key, values)


# -- the writer --------------------------------------------------------------------------

class SqlErpWriter(ErpWriter):
    """The writes of one transaction, on one connection. Invoice lines and templates'
    last periods are written in bulk when the transaction ends."""

    def __init__(self, connection: Connection, statements: _Statements) -> None:
        self._connection = connection
        self._statements = statements
        self._lines: list[dict[str, Any]] = []
        self._periods: dict[str, date] = {}
        self.failure: str | None = None
        """The message of the :class:`AlreadyRecordedError` that doomed the transaction."""
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise RuntimeError("the ERP transaction has ended; start another")
        if self.failure is not None:
            raise AlreadyRecordedError(self.failure)

    def _record(self, statement: Any, row: dict[str, Any],
                describe: Callable[[str], str]) -> None:
        """Execute an insert; a unique violation dooms the transaction."""
        self._check()
        try:
            self._connection.execute(statement, row)
        except IntegrityError as error:
            violation = _duplicate(error)
            if violation is None:
                raise
            self.failure = f"{describe(violation)}; the transaction was rolled back"
            raise AlreadyRecordedError(self.failure) from None

    def next_number(self, series: str) -> int:
        self._check()
        value = self._connection.execute(self._statements.next_number,
                                         {"series": series, "last": 1}).scalar_one()
        return int(value)

    def add_invoice(self, invoice: Invoice) -> None:
        def describe(violation: str) -> str:
            if "period" in violation and invoice.template is not None:
                return (f"an invoice of template {invoice.template} for period "
                        f"{invoice.period} exists already")
            return f"invoice {invoice.number} exists already"

        self._record(self._statements.add_invoice, {
            "number": invoice.number, "seq": number_seq(invoice.number), "type": invoice.type,
            "contractor": invoice.contractor, "issue_date": invoice.issue_date,
            "sale_date": invoice.sale_date, "due_date": invoice.due_date,
            "currency": invoice.currency, "status": invoice.status,
            "template": invoice.template, "period": invoice.period,
            "net": invoice.totals.net, "vat": invoice.totals.vat,
            "gross": invoice.totals.gross,
            "vat_by_rate": {rate: amounts.as_json()
                            for rate, amounts in invoice.vat_by_rate.items()},
            "run_id": invoice.run_id, "sent_at": invoice.sent_at,
        }, describe)
        self._lines.extend(
            {"invoice": invoice.number, "position": position, "product": line.product,
             "name": line.name, "quantity": line.quantity,
             "unit_net_price": line.unit_net_price, "vat_rate": line.vat_rate,
             "net": line.amounts.net, "vat": line.amounts.vat, "gross": line.amounts.gross}
            for position, line in enumerate(invoice.lines)
        )
        if invoice.template is not None and invoice.period is not None:
            latest = self._periods.get(invoice.template)
            if latest is None or invoice.period > latest:
                self._periods[invoice.template] = invoice.period

    def add_service_order(self, order: ServiceOrder, next_date: date) -> None:
        def describe(violation: str) -> str:
            if "date" in violation:  # not the number's primary key
                return (f"service order template {order.template} has an order on "
                        f"{order.date} already")
            return f"service order {order.number} exists already"

        self._record(self._statements.add_service_order, {
            "number": order.number, "template": order.template,
            "contractor": order.contractor, "order_date": order.date,
            "description": order.description, "run_id": order.run_id,
        }, describe)
        self._connection.execute(
            update(service_order_templates_table)
            .where(service_order_templates_table.c.code == order.template)
            .values(next_date=next_date)
        )

    def add_dunning_entry(self, entry: DunningEntry) -> None:
        self._record(self._statements.add_dunning_entry, {
            "entry_date": entry.date, "receivable": entry.receivable,
            "contractor": entry.contractor, "stage": entry.stage, "action": entry.action,
            "created": entry.created, "subject": entry.subject,
            "description": entry.description, "mode": entry.mode, "outcome": entry.outcome,
            "run_id": entry.run_id,
        }, lambda violation: (f"receivable {entry.receivable} has a dunning history line "
                              f"for stage {entry.stage} already"))

    def add_payment_reminder(self, reminder: PaymentReminder) -> None:
        self._record(self._statements.add_payment_reminder, {
            "number": reminder.number, "receivable": reminder.receivable,
            "contractor": reminder.contractor, "document": reminder.document,
            "issue_date": reminder.issue_date, "due_date": reminder.due_date,
            "amount": reminder.amount, "currency": reminder.currency,
            "days_overdue": reminder.days_overdue,
        }, lambda violation: f"payment reminder {reminder.number} exists already")

    def add_crm_task(self, task_id: str, title: str, start: datetime, contractor: str | None,
                     operator: str | None) -> None:
        self._record(self._statements.add_crm_task, {
            "id": task_id, "title": title, "start_at": start, "contractor": contractor,
            "operator": operator,
        }, lambda violation: f"CRM task {task_id} exists already")

    def block_sales(self, contractor: str) -> None:
        self._check()
        self._connection.execute(
            update(contractors_table).where(contractors_table.c.code == contractor)
            .values(sales_blocked=True)
        )

    def add_outbox(self, entry: OutboxEntry) -> bool:
        self._check()
        result = self._connection.execute(self._statements.add_outbox, {
            "key": entry.key, "operation": entry.operation, "channel": entry.channel,
            "recipient": entry.to, "subject": entry.subject, "body": entry.text,
            "item": entry.item, "run_id": entry.run_id,
            "idempotency_key": entry.idempotency_key, "account": entry.account,
            "attachment": entry.attachment, "status": entry.status,
            "message_id": entry.message_id, "sent_at": entry.sent_at, "error": entry.error,
            "attempts": entry.attempts, "given_up": False,
            "created_at": entry.created_at or datetime.now(UTC),
        })
        return bool(result.rowcount == 1)

    def flush(self) -> None:
        """Write what waits for the end of the transaction."""
        self._check()
        if self._lines:
            lines, self._lines = self._lines, []
            self._connection.execute(self._statements.add_invoice_lines, lines)
        if self._periods:
            periods, self._periods = self._periods, {}
            self._connection.execute(self._statements.advance_period, [
                {"b_template": template, "b_period": period}
                for template, period in periods.items()
            ])


# -- the gateway -------------------------------------------------------------------------

_receivables = TypeAdapter(list[Receivable])


class SqlErpGateway(ErpGateway):
    """A company's ERP data in the ``erp_`` tables of its database (created on first
    use); secrets encrypted with ``secrets``. Safe to share between threads."""

    def __init__(self, engine: Engine, secrets: SecretBox) -> None:
        self.engine = engine
        self._secrets = secrets
        self._statements = _Statements(engine.dialect)
        self._lock = threading.Lock()
        self._created = False

    # -- tables ------------------------------------------------------------------------

    def _ready(self) -> None:
        if self._created:
            return
        with self._lock:
            if self._created:
                return
            with store_errors():
                try:
                    self._create_tables()
                except (OperationalError, ProgrammingError) as error:
                    if "already exists" not in str(error):
                        raise
                    self._create_tables()  # another process created some meanwhile
            self._created = True

    def _create_tables(self) -> None:
        """Create what is missing, one process or thread at a time (SQLite: under the
        write lock; PostgreSQL: under an advisory lock)."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": ERP_SCHEMA_LOCK_KEY})
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            for tables in self._metadatas():
                tables.create_all(connection, checkfirst=True)

    def _metadatas(self) -> tuple[MetaData, ...]:
        """The tables to create (a subclass adds its own)."""
        return (metadata,)

    def _load_more(self, c: Connection, document: ErpDocument, counts: dict[str, int]) -> None:
        """Load what a subclass keeps of ``document``, first in the load's transaction."""

    def _document_more(self, c: Connection) -> dict[str, Any]:
        """Keys of the exported document that a subclass keeps."""
        return {}

    def _writer(self, connection: Connection) -> SqlErpWriter:
        """The writer of one transaction (a subclass may record more)."""
        return SqlErpWriter(connection, self._statements)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        self._ready()
        with store_errors(), self.engine.connect() as connection:
            yield connection

    # -- the document ------------------------------------------------------------------

    def codes(self) -> StoredCodes:
        with self._reading() as c:
            def codes_of(table: Table) -> set[str]:
                return set(c.execute(select(table.c.code)).scalars())

            return StoredCodes(
                email_accounts=codes_of(email_accounts_table),
                operators=codes_of(operators_table),
                contractors=codes_of(contractors_table),
                products=codes_of(products_table),
                templates={row.code: row.channel for row in c.execute(
                    select(templates_table.c.code, templates_table.c.channel))},
                dunning_schemes={row.code: bool(row.is_default) for row in c.execute(
                    select(dunning_schemes_table.c.code, dunning_schemes_table.c.is_default))},
            )

    def load(self, document: ErpDocument) -> dict[str, int]:
        self._ready()
        counts: dict[str, int] = {}
        upsert = self._statements.upsert
        with store_errors(), self.engine.begin() as c:
            def put(key: str, table: Table, rows: list[dict[str, Any]], *,
                    keep_if_null: Iterable[str] = ()) -> None:
                if rows:
                    c.execute(upsert(table, rows[0], keep_if_null=keep_if_null), rows)
                    counts[key] = len(rows)

            def replace_children(table: Table, parent: Column[Any], codes: list[str],
                                 rows: list[dict[str, Any]]) -> None:
                for chunk in _chunks(codes):
                    c.execute(delete(table).where(parent.in_(chunk)))
                if rows:
                    c.execute(insert(table), rows)

            self._load_more(c, document, counts)

            if document.seller is not None:
                put("seller", seller_table,
                    [{"id": SINGLE_ROW, **document.seller.model_dump()}])
            put("email_accounts", email_accounts_table, [
                {**account.model_dump(exclude={"password"}),
                 "password": self._encrypt(account.password)}
                for account in document.email_accounts
            ], keep_if_null=["password"])
            if document.sms_gateway is not None:
                gateway = document.sms_gateway
                put("sms_gateway", sms_gateway_table, [{
                    "id": SINGLE_ROW, "url": gateway.url, "sender": gateway.sender,
                    "token": self._encrypt(gateway.token),
                }], keep_if_null=["token"])
            put("operators", operators_table,
                [operator.model_dump() for operator in document.operators])
            put("contractors", contractors_table,
                [contractor.model_dump(exclude=CONTRACTOR_DETAILS)
                 for contractor in document.contractors])
            put("products", products_table,
                [product.model_dump(include=PRODUCT_COLUMNS) for product in document.products])
            put("templates", templates_table,
                [template.model_dump() for template in document.templates])
            put("recurring_invoices", recurring_invoices_table, [
                {**invoice.model_dump(exclude={"lines", "start", "end", "day_of_month"}),
                 "start_date": invoice.start, "end_date": invoice.end,
                 "day_of_month": None if invoice.day_of_month is None
                 else str(invoice.day_of_month)}
                for invoice in document.recurring_invoices
            ])
            if document.recurring_invoices:
                replace_children(
                    recurring_invoice_lines_table,
                    recurring_invoice_lines_table.c.recurring_invoice,
                    [invoice.code for invoice in document.recurring_invoices],
                    [{"recurring_invoice": invoice.code, "position": position,
                      **line.model_dump()}
                     for invoice in document.recurring_invoices
                     for position, line in enumerate(invoice.lines)],
                )
            put("receivables", receivables_table,
                [receivable.model_dump() for receivable in document.receivables])
            put("dunning_schemes", dunning_schemes_table, [
                {"code": scheme.code, "name": scheme.name, "is_default": scheme.default,
                 "skip_up_to": scheme.skip_up_to}
                for scheme in document.dunning_schemes
            ])
            if document.dunning_schemes:
                replace_children(
                    dunning_stages_table, dunning_stages_table.c.scheme,
                    [scheme.code for scheme in document.dunning_schemes],
                    [{"scheme": scheme.code, "position": position, **stage.model_dump()}
                     for scheme in document.dunning_schemes
                     for position, stage in enumerate(scheme.stages)],
                )
            put("crm_tasks", crm_tasks_table,
                [_crm_task_row(task) for task in document.crm_tasks])
            self._load_order_templates(c, document.service_order_templates, counts)
        return counts

    def _load_order_templates(self, c: Connection, templates: list[ServiceOrderTemplate],
                              counts: dict[str, int]) -> None:
        """Upsert order templates; one without ``next_date`` keeps the stored one (a new
        one starts at ``start``)."""
        if not templates:
            return
        for given in (True, False):
            rows = [
                {**template.model_dump(exclude={"start", "next_date"}),
                 "start_date": template.start, "next_date": template.next_date or template.start}
                for template in templates if (template.next_date is not None) == given
            ]
            if rows:
                c.execute(self._statements.upsert(
                    service_order_templates_table, rows[0],
                    keep=() if given else ["next_date"]), rows)
        counts["service_order_templates"] = len(templates)

    def _encrypt(self, secret: SecretStr | None) -> str | None:
        return None if secret is None else self._secrets.encrypt(secret.get_secret_value())

    def data(self) -> ErpDocument:
        return self._document(with_secrets=True)

    def export(self) -> ErpDocument:
        """Everything stored, without secrets (so this station's key is not needed)."""
        return self._document(with_secrets=False)

    def _document(self, *, with_secrets: bool) -> ErpDocument:
        def secret(token: str | None) -> SecretStr | None:
            if token is None or not with_secrets:
                return None
            return SecretStr(self._secrets.decrypt(token))

        with self._reading() as c:
            def rows(table: Table, *order: ColumnElement[Any]) -> Sequence[Row[Any]]:
                return c.execute(select(table).order_by(*order)).all()

            receivable_keys = [column.name for column in receivables_table.columns]
            seller = c.execute(select(seller_table)).first()
            sms = c.execute(select(sms_gateway_table)).first()
            more = self._document_more(c)
            line_rows: dict[str, list[InvoiceLineTemplate]] = defaultdict(list)
            for row in rows(recurring_invoice_lines_table,
                            recurring_invoice_lines_table.c.recurring_invoice,
                            recurring_invoice_lines_table.c.position):
                line_rows[row.recurring_invoice].append(InvoiceLineTemplate(
                    product=row.product, quantity=plain_quantity(row.quantity),
                    net_price=row.net_price))
            stage_rows: dict[str, list[DunningStage]] = defaultdict(list)
            for row in rows(dunning_stages_table, dunning_stages_table.c.scheme,
                            dunning_stages_table.c.position):
                stage_rows[row.scheme].append(DunningStage(
                    days=row.days, action=row.action, template=row.template))
            document = ErpDocument(
                seller=None if seller is None else Seller(
                    name=seller.name, nip=seller.nip, address=seller.address,
                    bank_account=seller.bank_account, email=seller.email, phone=seller.phone),
                email_accounts=[
                    EmailAccount(code=row.code, address=row.address, smtp_host=row.smtp_host,
                                 smtp_port=row.smtp_port, security=row.security,
                                 username=row.username, password=secret(row.password))
                    for row in rows(email_accounts_table)
                ],
                sms_gateway=None if sms is None else SmsGatewayAccount(
                    url=sms.url, token=secret(sms.token), sender=sms.sender),
                operators=[
                    Operator(code=row.code, name=row.name, email_account=row.email_account,
                             email=row.email, phone=row.phone)
                    for row in rows(operators_table)
                ],
                contractors=[
                    Contractor(code=row.code, name=row.name, nip=row.nip, email=row.email,
                               phone=row.phone, address=row.address,
                               dunning_scheme=row.dunning_scheme,
                               sales_blocked=bool(row.sales_blocked),
                               **more.get("contractor_details", {}).get(row.code, {}))
                    for row in rows(contractors_table)
                ],
                products=[
                    Product(code=row.code, name=row.name, unit=row.unit,
                            net_price=row.net_price, vat_rate=row.vat_rate,
                            **more.get("product_details", {}).get(row.code, {}))
                    for row in rows(products_table)
                ],
                templates=[
                    Template(code=row.code, channel=row.channel, subject=row.subject,
                             body=row.body)
                    for row in rows(templates_table)
                ],
                recurring_invoices=[
                    RecurringInvoice(
                        code=row.code, name=row.name, type=row.type, contractor=row.contractor,
                        currency=row.currency, lines=line_rows[row.code], every=row.every,
                        unit=row.unit, day_of_month=_day_of_month(row.day_of_month),
                        start=row.start_date, end=row.end_date, payment_days=row.payment_days,
                        mode=row.mode, operator=row.operator, active=bool(row.active))
                    for row in rows(recurring_invoices_table)
                ],
                receivables=_receivables.validate_python(
                    [dict(zip(receivable_keys, row, strict=True))
                     for row in rows(receivables_table)]),
                dunning_schemes=[
                    DunningScheme(code=row.code, name=row.name, default=bool(row.is_default),
                                  skip_up_to=row.skip_up_to, stages=stage_rows[row.code])
                    for row in rows(dunning_schemes_table)
                ],
                crm_tasks=[_crm_task(row) for row in rows(crm_tasks_table)],
                service_order_templates=[
                    ServiceOrderTemplate(
                        code=row.code, contractor=row.contractor, description=row.description,
                        every_months=row.every_months, start=row.start_date,
                        remind_days_before=row.remind_days_before, next_date=row.next_date,
                        notify_email=bool(row.notify_email), notify_sms=bool(row.notify_sms),
                        template=row.template, active=bool(row.active))
                    for row in rows(service_order_templates_table)
                ],
                **{key: value for key, value in more.items()
                   if key not in ("product_details", "contractor_details")},
            )
        return _sorted(document)

    # -- what the operations keep ------------------------------------------------------

    def last_periods(self) -> dict[str, date]:
        table = recurring_invoices_table
        with self._reading() as c:
            return {row.code: row.last_period for row in c.execute(
                select(table.c.code, table.c.last_period).where(table.c.last_period.is_not(None))
            )}

    def dunning_stages_done(self) -> dict[str, set[int]]:
        table = dunning_history_table
        done: dict[str, set[int]] = defaultdict(set)
        with self._reading() as c:
            for row in c.execute(select(table.c.receivable, table.c.stage)):
                done[row.receivable].add(int(row.stage))
        return dict(done)

    def outbox_keys(self, prefix: str) -> set[str]:
        with self._reading() as c:
            return set(c.execute(
                select(outbox_table.c.key)
                .where(outbox_table.c.key.startswith(prefix, autoescape=True))
            ).scalars())

    def unsent_invoices(self) -> list[Invoice]:
        table = invoices_table
        return self._invoices(table.c.status == "issued", table.c.sent_at.is_(None))

    def invoice(self, number: str) -> Invoice | None:
        found = self._invoices(invoices_table.c.number == number)
        return found[0] if found else None

    def payment_reminder(self, number: str) -> PaymentReminder | None:
        table = payment_reminders_table
        with self._reading() as c:
            row = c.execute(select(table).where(table.c.number == number)).first()
        if row is None:
            return None
        return PaymentReminder(
            number=row.number, receivable=row.receivable, contractor=row.contractor,
            document=row.document, issue_date=row.issue_date, due_date=row.due_date,
            amount=row.amount, currency=row.currency, days_overdue=row.days_overdue)

    def transaction(self) -> AbstractContextManager[ErpWriter]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[ErpWriter]:
        self._ready()
        with store_errors(), self.engine.connect() as connection:
            transaction = connection.begin()
            writer = self._writer(connection)
            try:
                yield writer
                if writer.failure is None:
                    writer.flush()
            except BaseException:
                writer.closed = True
                transaction.rollback()
                raise
            writer.closed = True
            if writer.failure is None:
                transaction.commit()
            else:  # the caller went on after AlreadyRecordedError: nothing is kept
                transaction.rollback()

    # -- the outbox --------------------------------------------------------------------

    def outbox_to_deliver(self, operation: str, *, max_attempts: int) -> list[OutboxEntry]:
        table = outbox_table
        return self._outbox(
            table.c.operation == operation, table.c.given_up.is_(False),
            or_(table.c.status == "pending",
                (table.c.status == "failed") & (table.c.attempts < max_attempts)),
        )

    @translating_store_errors
    def record_delivery(self, key: str, *, message_id: str, sent_at: datetime) -> None:
        self._ready()
        table = outbox_table
        with self.engine.begin() as c:
            item = c.execute(select(table.c.item).where(table.c.key == key)).scalar()
            c.execute(update(table).where(table.c.key == key).values(
                status="sent", message_id=message_id, sent_at=sent_at, error=None))
            if item is not None and key.startswith("invoice:"):
                c.execute(update(invoices_table).where(invoices_table.c.number == item)
                          .values(sent_at=sent_at))

    @translating_store_errors
    def record_delivery_failure(self, key: str, *, error: str, final: bool) -> None:
        """Also, when ``final``, the history line of the payment reminder the entry
        attaches (its ``created`` is the reminder's number) becomes ``failed``."""
        self._ready()
        table = outbox_table
        history = dunning_history_table
        with self.engine.begin() as c:
            entry = c.execute(select(table.c.item, table.c.attachment)
                              .where(table.c.key == key)).first()
            values: dict[str, Any] = {"status": "failed", "error": error,
                                      "attempts": table.c.attempts + 1}
            if final:
                values["given_up"] = True
            c.execute(update(table).where(table.c.key == key).values(values))
            if not final:
                return
            c.execute(update(history).where(history.c.created == key).values(outcome="failed"))
            if entry is not None and entry.attachment \
                    and entry.attachment.startswith("payment_reminder:"):
                c.execute(update(history)
                          .where(history.c.created == entry.attachment.partition(":")[2])
                          .where(history.c.receivable == entry.item)
                          .values(outcome="failed"))

    # -- views -------------------------------------------------------------------------

    def invoices(self) -> list[Invoice]:
        return self._invoices()

    def service_orders(self) -> list[ServiceOrder]:
        with self._reading() as c:
            orders = [
                ServiceOrder(number=row.number, template=row.template, contractor=row.contractor,
                             date=row.order_date, description=row.description,
                             run_id=row.run_id)
                for row in c.execute(select(service_orders_table))
            ]
        return sorted(orders, key=lambda order: (order.date, number_seq(order.number),
                                                 order.number))

    def dunning_history(self) -> list[DunningEntry]:
        with self._reading() as c:
            entries = [
                DunningEntry(date=row.entry_date, receivable=row.receivable,
                             contractor=row.contractor, stage=row.stage, action=row.action,
                             created=row.created, subject=row.subject,
                             description=row.description, mode=row.mode, outcome=row.outcome,
                             run_id=row.run_id)
                for row in c.execute(select(dunning_history_table))
            ]
        return sorted(entries, key=lambda entry: (entry.date, entry.receivable, entry.stage))

    def outbox(self, status: OutboxStatus | None = None) -> list[OutboxEntry]:
        return self._outbox() if status is None else self._outbox(
            outbox_table.c.status == status)

    # -- reading helpers ---------------------------------------------------------------

    def _outbox(self, *where: ColumnElement[bool]) -> list[OutboxEntry]:
        table = outbox_table
        with self._reading() as c:
            return [
                OutboxEntry(
                    key=row.key, operation=row.operation, channel=row.channel,
                    to=row.recipient, subject=row.subject, text=row.body, item=row.item,
                    run_id=row.run_id, idempotency_key=row.idempotency_key,
                    account=row.account, attachment=row.attachment, status=row.status,
                    message_id=row.message_id, sent_at=row.sent_at, error=row.error,
                    attempts=row.attempts, created_at=row.created_at)
                for row in c.execute(select(table).where(*where).order_by(table.c.id))
            ]

    def _invoices(self, *where: ColumnElement[bool]) -> list[Invoice]:
        """Invoices (all, or those ``where`` selects) by type, issue date and number."""
        table, lines_table = invoices_table, invoice_lines_table
        with self._reading() as c:
            heads = c.execute(
                select(table).where(*where)
                .order_by(table.c.type, table.c.issue_date, table.c.seq, table.c.number)
            ).all()
            if not heads:
                return []
            lines: dict[str, list[InvoiceLine]] = defaultdict(list)
            line_query = select(lines_table).order_by(lines_table.c.invoice,
                                                      lines_table.c.position)
            if where:
                line_query = line_query.where(
                    lines_table.c.invoice.in_(select(table.c.number).where(*where)))
            for (number, _, product, name, quantity, price, rate, net, vat,
                 gross) in c.execute(line_query):
                lines[number].append(InvoiceLine(product, name, plain_quantity(quantity), price,
                                                 rate, Amounts(net, vat, gross)))
        return [
            Invoice(
                number=row.number, type=row.type, contractor=row.contractor,
                issue_date=row.issue_date, sale_date=row.sale_date, due_date=row.due_date,
                currency=row.currency, status=row.status, template=row.template,
                period=row.period, lines=tuple(lines[row.number]),
                vat_by_rate=_vat_by_rate(row.vat_by_rate),
                totals=Amounts(row.net, row.vat, row.gross), run_id=row.run_id,
                sent_at=row.sent_at)
            for row in heads
        ]


def _vat_by_rate(stored: Any) -> dict[Any, Amounts]:
    """The stored per-rate amounts, in the order of :data:`VAT_RATES`."""
    return {
        rate: Amounts(Decimal(stored[rate]["net"]), Decimal(stored[rate]["vat"]),
                      Decimal(stored[rate]["gross"]))
        for rate in VAT_RATES if rate in stored
    }


def _day_of_month(stored: str | None) -> int | Literal["last"] | None:
    if stored is None:
        return None
    return int(stored) if stored.isdigit() else "last"


def _crm_task_row(task: CrmTask) -> dict[str, Any]:
    reminder = task.reminder
    return {
        "id": task.id, "title": task.title, "start_at": task.start,
        "contractor": task.contractor, "operator": task.operator, "employee": task.employee,
        "reminder_minutes_before": None if reminder is None else reminder.minutes_before,
        "reminder_to": None if reminder is None else reminder.to,
        "reminder_channel": None if reminder is None else reminder.channel,
        "reminder_template": None if reminder is None else reminder.template,
        "reminder_phone": None if reminder is None else reminder.phone,
        "reminder_email": None if reminder is None else reminder.email,
    }


def _crm_task(row: Row[Any]) -> CrmTask:
    reminder = None if row.reminder_minutes_before is None else Reminder(
        minutes_before=row.reminder_minutes_before, to=row.reminder_to,
        channel=row.reminder_channel, template=row.reminder_template,
        phone=row.reminder_phone, email=row.reminder_email)
    return CrmTask(id=row.id, title=row.title, start=row.start_at, contractor=row.contractor,
                   operator=row.operator, employee=row.employee, reminder=reminder)


def _sorted(document: ErpDocument) -> ErpDocument:
    """``document`` with every list in the order of its codes (the same on every
    database, whatever its collation)."""
    return document.model_copy(update={
        "email_accounts": sorted(document.email_accounts, key=lambda entry: entry.code),
        "operators": sorted(document.operators, key=lambda entry: entry.code),
        "contractors": sorted(document.contractors, key=lambda entry: entry.code),
        "products": sorted(document.products, key=lambda entry: entry.code),
        "templates": sorted(document.templates, key=lambda entry: entry.code),
        "recurring_invoices": sorted(document.recurring_invoices, key=lambda entry: entry.code),
        "receivables": sorted(document.receivables, key=lambda entry: entry.id),
        "dunning_schemes": sorted(document.dunning_schemes, key=lambda entry: entry.code),
        "crm_tasks": sorted(document.crm_tasks, key=lambda entry: entry.id),
        "service_order_templates": sorted(document.service_order_templates,
                                          key=lambda entry: entry.code),
    })


class SqlErpGateways(ErpGateways):
    """One gateway per company database URL, on the database's pooled engine; ``build``
    makes a gateway of an engine (default: :class:`SqlErpGateway` with ``secrets``)."""

    def __init__(self, secrets: SecretBox,
                 build: Callable[[Engine], SqlErpGateway] | None = None) -> None:
        self._build = build or (lambda engine: SqlErpGateway(engine, secrets))
        self._gateways: dict[str, SqlErpGateway] = {}
        self._lock = threading.Lock()

    def for_database(self, database: CompanyDatabase) -> ErpGateway:
        engine = database.sql_engine()
        with self._lock:
            gateway = self._gateways.get(database.url)
            if gateway is None or gateway.engine is not engine:
                gateway = self._gateways[database.url] = self._build(engine)
            return gateway
