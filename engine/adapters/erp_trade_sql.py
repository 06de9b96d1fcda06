"""The trade data of a company (:mod:`engine.erp.trade`), its change log and the
synchronisations' state, in ``erp_`` tables beside the rest of the ERP data.

- Every kind of entry is a table of its code, the entry as JSON (``data``), and where
  useful its product or the partner it came from (unique per partner and partner id).
- **The change log** (``erp_changes``) keeps, per entity and key, the sequence number of
  its latest change and whether it was a deletion. Numbers come from one counter row
  updated in the writing transaction, so writers take them in commit order (the row lock
  on PostgreSQL, the write lock on SQLite): a reader that saw number N will never later
  see a smaller one appear. A synchronisation's watermark is such a number.
- **Sync state** (``erp_partners``, ``erp_sync_positions``): each partner's connection
  (URL, encrypted credential, settings), its counters and last error, and the position
  (watermark or cursor) of each of its streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
    update,
)

from engine.erp.sync import Change
from engine.erp.trade import (
    CashEntry,
    Employee,
    Payment,
    PaymentLink,
    Price,
    PriceType,
    ProductGroup,
    RetailDocument,
    SalesOrder,
    StockLevel,
    Warehouse,
)

CHUNK = 500

metadata = MetaData()
"""The tables of this module (created with the other ERP tables)."""


def _record_table(name: str, *, product: bool = False, partner: bool = False) -> Table:
    columns: list[Any] = [Column("code", Text, primary_key=True), Column("data", JSON,
                                                                         nullable=False)]
    if product:
        columns += [Column("product", Text, nullable=False),
                    Column("detail", Text, nullable=False,
                           comment="the warehouse or price type (also in data)"),
                    Column("amount", Text, nullable=False,
                           comment="the quantity or net price as text (also in data)"),
                    Index(f"{name}_product_idx", "product")]
    if partner:
        columns += [Column("partner", Text), Column("partner_id", Text),
                    UniqueConstraint("partner", "partner_id", name=f"{name}_partner_key")]
    return Table(name, metadata, *columns)


product_details_table = Table(
    "erp_product_details", metadata,
    Column("code", Text, primary_key=True),
    Column("product_group", Text),
    Column("ean", Text),
    Column("attributes", JSON, comment="name to value; null when none"),
)

warehouses_table = _record_table("erp_warehouses")
stock_table = _record_table("erp_stock", product=True)
price_types_table = _record_table("erp_price_types")
prices_table = _record_table("erp_prices", product=True)
product_groups_table = _record_table("erp_product_groups")
employees_table = _record_table("erp_employees")
sales_orders_table = _record_table("erp_sales_orders", partner=True)
retail_documents_table = _record_table("erp_retail_documents", partner=True)
cash_entries_table = _record_table("erp_cash_entries", partner=True)
payments_table = _record_table("erp_payments", partner=True)
payment_links_table = _record_table("erp_payment_links")

changes_table = Table(
    "erp_changes", metadata,
    Column("entity", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Index("erp_changes_entity_seq_idx", "entity", "seq"),
)
change_counter_table = Table(
    "erp_change_counter", metadata,
    Column("id", Integer, primary_key=True),
    Column("last", BigInteger, nullable=False),
)
partners_table = Table(
    "erp_partners", metadata,
    Column("partner", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("credential", Text, comment="AES-GCM token (SOA_HOME/cipher.key)"),
    Column("tokens", Text, comment="AES-GCM token of the login's tokens, as JSON"),
    Column("settings", JSON, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("rate_limit", Float),
    Column("last_full", Text, comment="ISO 8601, UTC"),
    Column("last_differential", Text, comment="ISO 8601, UTC"),
    Column("sent", BigInteger, nullable=False, default=0),
    Column("received", BigInteger, nullable=False, default=0),
    Column("last_error", Text),
    Column("full_requested", Boolean, nullable=False, default=True),
    Column("full_running", Boolean, nullable=False, default=False,
           comment="a full synchronisation began and has not finished: the next resumes it"),
    Column("generation", Integer, nullable=False, default=1,
           comment="advanced by each full synchronisation; part of every idempotency key"),
)
sync_positions_table = Table(
    "erp_sync_positions", metadata,
    Column("partner", Text, primary_key=True),
    Column("stream", Text, primary_key=True),
    Column("position", Text, nullable=False),
)
stock_shortfalls_table = Table(
    "erp_stock_shortfalls", metadata,
    Column("day", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("product", Text, primary_key=True),
    Column("quantity", Text, nullable=False, comment="what was missing, summed"),
)


def detail_row(code: str, group: str | None, ean: str | None,
               attributes: Mapping[str, str]) -> dict[str, Any]:
    """The ``erp_product_details`` row of a product's group, EAN and attributes."""
    return {"code": code, "product_group": group, "ean": ean,
            "attributes": dict(attributes) or None}


def details_of(row: Any) -> dict[str, Any]:
    """A product's group, EAN and attributes from its details row (or none)."""
    if row is None:
        return {"group": None, "ean": None, "attributes": {}}
    return {"group": row.product_group, "ean": row.ean,
            "attributes": as_json(row.attributes) or {}}


@dataclass(frozen=True)
class RecordKind:
    """One document key kept as records: its table, how an entry is keyed, and what
    change (entity, key) storing or deleting it makes."""

    key: str
    table: Table
    model: type[BaseModel]
    code: Any
    entity: str | None = None
    change_key: Any = None
    product: Any = None
    level: Any = None
    """For a product's stock or price: (warehouse or price type, amount as text)."""

    def row(self, entry: BaseModel) -> dict[str, Any]:
        row: dict[str, Any] = {"code": self.code(entry), "data": entry.model_dump(mode="json")}
        if self.product is not None:
            row["product"] = self.product(entry)
            row["detail"], row["amount"] = self.level(entry)
        if "partner" in self.table.c:
            row["partner"] = getattr(entry, "partner", None)
            row["partner_id"] = getattr(entry, "partner_id", None) \
                or getattr(entry, "partner_order_id", None)
        return row


def _by_product(entry: Any) -> str:
    return str(entry.product)


def _code(entry: Any) -> str:
    return str(entry.code)


def _id(entry: Any) -> str:
    return str(entry.id)


def _number(entry: Any) -> str:
    return str(entry.number)


RECORD_KINDS: tuple[RecordKind, ...] = (
    RecordKind("warehouses", warehouses_table, Warehouse, _code),
    RecordKind("price_types", price_types_table, PriceType, _code),
    RecordKind("product_groups", product_groups_table, ProductGroup, _code,
               "product_group", _code),
    RecordKind("stock", stock_table, StockLevel, lambda e: f"{e.product}|{e.warehouse}",
               "product_stock", _by_product, _by_product,
               lambda e: (e.warehouse, str(e.quantity))),
    RecordKind("prices", prices_table, Price, lambda e: f"{e.product}|{e.price_type}",
               "product_price", _by_product, _by_product,
               lambda e: (e.price_type, str(e.net_price))),
    RecordKind("employees", employees_table, Employee, _code, "employee", _code),
    RecordKind("sales_orders", sales_orders_table, SalesOrder, _number, "sales_order",
               _number),
    RecordKind("retail_documents", retail_documents_table, RetailDocument, _number,
               "retail_document", _number),
    RecordKind("cash_entries", cash_entries_table, CashEntry, _id, "cash_entry", _id),
    RecordKind("payments", payments_table, Payment, _id, "payment", _id),
    RecordKind("payment_links", payment_links_table, PaymentLink, lambda e: str(e.invoice)),
)
KINDS_BY_KEY = {kind.key: kind for kind in RECORD_KINDS}


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


# -- the change log ------------------------------------------------------------------------

DEFERRED = "soa_deferred_changes"
"""The key of ``Connection.info`` under which :func:`deferring_changes` gathers changes."""


@contextmanager
def deferring_changes(c: Connection) -> Iterator[None]:
    """Gather the changes :func:`touch` records on ``c`` and record them together when the
    block ends (before the transaction commits): many small writes then take one round
    of sequence numbers. A key touched twice keeps its last touch."""
    gathered: dict[tuple[str, str], bool] = {}
    c.info[DEFERRED] = gathered
    try:
        yield
    finally:
        del c.info[DEFERRED]
    by_kind: dict[tuple[str, bool], list[str]] = {}
    for (entity, key), deleted in gathered.items():
        by_kind.setdefault((entity, deleted), []).append(key)
    for (entity, deleted), keys in by_kind.items():
        touch(c, entity, keys, deleted=deleted)


def touch(c: Connection, entity: str, keys: Iterable[str], *, deleted: bool = False) -> int:
    """Record a change of each of ``keys`` (of ``entity``) in this transaction; return how
    many. Takes the next sequence numbers from the counter row (locking it until the
    transaction ends)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return 0
    gathered = c.info.get(DEFERRED)
    if gathered is not None:
        for key in unique:
            gathered.pop((entity, key), None)  # the latest touch goes last
            gathered[(entity, key)] = deleted
        return len(unique)
    last = c.execute(
        update(change_counter_table).where(change_counter_table.c.id == 1)
        .values(last=change_counter_table.c.last + len(unique))
        .returning(change_counter_table.c.last)
    ).scalar()
    if last is None:
        c.execute(insert(change_counter_table), {"id": 1, "last": len(unique)})
        last = len(unique)
    first = int(last) - len(unique) + 1
    rows = [{"entity": entity, "key": key, "seq": first + index, "deleted": deleted}
            for index, key in enumerate(unique)]
    for chunk in chunks(unique):
        c.execute(delete(changes_table).where(changes_table.c.entity == entity)
                  .where(changes_table.c.key.in_(chunk)))
    c.execute(insert(changes_table), rows)
    return len(unique)


def changes_after(c: Connection, entities: Sequence[str], after: int,
                  limit: int) -> list[Change]:
    """Changes of ``entities`` with a sequence number above ``after``, in order
    of their numbers, at most ``limit``."""
    table = changes_table
    rows = c.execute(
        select(table.c.entity, table.c.key, table.c.seq, table.c.deleted)
        .where(table.c.entity.in_(list(entities))).where(table.c.seq > after)
        .order_by(table.c.seq).limit(limit)
    ).all()
    return [Change(entity, key, int(seq), bool(deleted)) for entity, key, seq, deleted in rows]


def last_change(c: Connection) -> int:
    return int(c.execute(select(change_counter_table.c.last)).scalar() or 0)


# -- records -------------------------------------------------------------------------------

def load_records(c: Connection, kind: RecordKind, entries: Sequence[BaseModel]) -> int:
    """Upsert ``entries`` of ``kind``; record a change for each one that differs from what
    was stored. Return how many were given."""
    if not entries:
        return 0
    rows = {row["code"]: row for row in (kind.row(entry) for entry in entries)}
    stored: dict[str, Any] = {}
    for chunk in chunks(list(rows)):
        stored.update(c.execute(select(kind.table.c.code, kind.table.c.data)
                                .where(kind.table.c.code.in_(chunk))).tuples().all())
    changed = [code for code, row in rows.items() if as_json(stored.get(code)) != row["data"]]
    fresh = [rows[code] for code in changed if code not in stored]
    updated = [rows[code] for code in changed if code in stored]
    if fresh:
        c.execute(insert(kind.table), fresh)
    for row in updated:
        c.execute(update(kind.table).where(kind.table.c.code == row["code"])
                  .values({name: value for name, value in row.items() if name != "code"}))
    if kind.entity is not None:
        given = entries_by_code(kind, entries)
        touch(c, kind.entity, (kind.change_key(given[code]) for code in changed))
    return len(entries)


def entries_by_code(kind: RecordKind, entries: Sequence[BaseModel]) -> dict[str, Any]:
    return {kind.code(entry): entry for entry in entries}


def as_json(value: Any) -> Any:
    """A JSON column's value (SQLite may give it back as text)."""
    return json.loads(value) if isinstance(value, str) else value


def read_records(c: Connection, kind: RecordKind, *, codes: Sequence[str] | None = None,
                 products: Sequence[str] | None = None) -> list[Any]:
    """Entries of ``kind`` (with ``codes``, or of ``products``), by code."""
    table = kind.table
    query = select(table.c.data).order_by(table.c.code)
    if codes is None and products is None:
        return [kind.model.model_validate(as_json(data)) for data in c.execute(query).scalars()]
    found: list[Any] = []
    column, wanted = (table.c.code, codes) if codes is not None else (table.c.product, products)
    for chunk in chunks(list(wanted or ())):
        found += [kind.model.model_validate(as_json(data))
                  for data in c.execute(query.where(column.in_(chunk))).scalars()]
    return found


def delete_records(c: Connection, kind: RecordKind, codes: Sequence[str]) -> int:
    """Delete entries of ``kind`` by code, recording the change (a deletion, or for a
    product's stock or price, a change of the product)."""
    stored = read_records(c, kind, codes=codes)
    if not stored:
        return 0
    for chunk in chunks([kind.code(entry) for entry in stored]):
        c.execute(delete(kind.table).where(kind.table.c.code.in_(chunk)))
    if kind.entity is not None:
        touch(c, kind.entity, [kind.change_key(entry) for entry in stored],
              deleted=kind.product is None)
    return len(stored)


def known_partner_ids(c: Connection, kind: RecordKind, partner: str,
                      ids: Sequence[str]) -> set[str]:
    """Which of the partner's ``ids`` are stored as ``kind`` already."""
    table = kind.table
    known: set[str] = set()
    for chunk in chunks(list(ids)):
        known.update(c.execute(select(table.c.partner_id).where(table.c.partner == partner)
                               .where(table.c.partner_id.in_(chunk))).scalars())
    return known


def by_partner_id(c: Connection, kind: RecordKind, partner: str,
                  ids: Sequence[str]) -> dict[str, Any]:
    table = kind.table
    found: dict[str, Any] = {}
    for chunk in chunks(list(ids)):
        for partner_id, data in c.execute(
                select(table.c.partner_id, table.c.data).where(table.c.partner == partner)
                .where(table.c.partner_id.in_(chunk))):
            found[partner_id] = kind.model.model_validate(as_json(data))
    return found


def add_shortfall(c: Connection, day: str, warehouse: str, product: str, missing: Any) -> None:
    table = stock_shortfalls_table
    key = and_(table.c.day == day, table.c.warehouse == warehouse, table.c.product == product)
    stored = c.execute(select(table.c.quantity).where(key)).scalar()
    if stored is None:
        c.execute(insert(table), {"day": day, "warehouse": warehouse, "product": product,
                                  "quantity": str(missing)})
    else:
        from decimal import Decimal
        c.execute(update(table).where(key).values(quantity=str(Decimal(stored) + missing)))


def shortfalls(c: Connection) -> list[dict[str, str]]:
    table = stock_shortfalls_table
    return [dict(row._mapping) for row in c.execute(
        select(table).order_by(table.c.day, table.c.warehouse, table.c.product))]


# -- sync state ------------------------------------------------------------------------------

def positions(c: Connection, partner: str) -> dict[str, str]:
    table = sync_positions_table
    return dict(c.execute(select(table.c.stream, table.c.position)
                          .where(table.c.partner == partner)).tuples().all())


def set_position(c: Connection, partner: str, stream: str, position: str) -> None:
    table = sync_positions_table
    done = c.execute(update(table).where(table.c.partner == partner)
                     .where(table.c.stream == stream).values(position=position))
    if done.rowcount == 0:
        c.execute(insert(table), {"partner": partner, "stream": stream, "position": position})


def add_counts(c: Connection, partner: str, *, sent: int = 0, received: int = 0) -> None:
    if sent or received:
        table = partners_table
        c.execute(update(table).where(table.c.partner == partner).values(
            sent=table.c.sent + sent, received=table.c.received + received))


def partner_row(c: Connection, partner: str) -> Mapping[str, Any] | None:
    row = c.execute(select(partners_table).where(partners_table.c.partner == partner)).first()
    return None if row is None else dict(row._mapping)


