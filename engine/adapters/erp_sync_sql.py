"""The company gateway the host uses: the ERP data of :mod:`engine.adapters.erp_sqlalchemy`
plus the trade data, the change log and the synchronisations' state of
:mod:`engine.adapters.erp_trade_sql` (the :class:`SyncGateway` port).

Partner credentials and login tokens are encrypted with a :class:`CipherBox` (AES-GCM),
bound to the partner's name, and never leave this module decrypted except in a
:class:`PartnerConnection`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Index,
    MetaData,
    Select,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from engine.adapters import erp_ksef_sql as ksef_sql
from engine.adapters import erp_trade_sql as trade
from engine.adapters.cipher_box import CipherBox
from engine.adapters.erp_ksef_sql import SqlKsefLedger
from engine.adapters.erp_sqlalchemy import (
    CONTRACTOR_DETAILS,
    PRODUCT_COLUMNS,
    SqlErpGateway,
    SqlErpGateways,
    SqlErpWriter,
    contractors_table,
    invoices_table,
    products_table,
    receivables_table,
)
from engine.adapters.erp_sqlalchemy import metadata as erp_metadata
from engine.adapters.erp_trade_sql import as_json
from engine.adapters.secret_box import SecretBox
from engine.adapters.sql import store_errors
from engine.erp.document import Contractor, ErpDocument, Product, Receivable
from engine.erp.model import Invoice
from engine.erp.references import StoredCodes
from engine.erp.sync import (
    Change,
    ImportWriter,
    PartnerConnection,
    ProductData,
    ProductRecord,
    SyncGateway,
    SyncStatus,
)
from engine.erp.trade import SalesOrder

CONTRACTOR_COLUMNS = ("code", "name", "nip", "email", "phone", "address", "dunning_scheme",
                      "sales_blocked")
CONTRACTOR_INDEXES = (
    Index("erp_contractors_nip_idx", contractors_table.c.nip),
    Index("erp_contractors_email_idx", contractors_table.c.email),
)
"""How imports find a buyer by NIP or e-mail without reading every contractor."""
_DELETABLE = {"products": (products_table, "product"),
              "contractors": (contractors_table, "contractor")}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqlCompanyGateway(SqlErpGateway, SqlKsefLedger, SyncGateway):
    """A company's ERP data, trade data, synchronisation state and KSeF submissions in
    its database."""

    def __init__(self, engine: Engine, secrets: SecretBox, cipher: CipherBox) -> None:
        super().__init__(engine, secrets)
        self._cipher = cipher
        self._upserts: dict[str, Any] = {}

    def _upsert(self, table: Table) -> Any:
        """The upsert of every column of ``table`` by its key, built once."""
        statement = self._upserts.get(table.name)
        if statement is None:
            quote = self.engine.dialect.identifier_preparer.quote
            key = [column.name for column in table.primary_key.columns]
            columns = [column.name for column in table.columns]
            update_set = ", ".join(f"{quote(name)} = excluded.{quote(name)}"
                                   for name in columns if name not in key)
            # as text: SQLAlchemy would compile an ON CONFLICT insert on every call
            statement = self._upserts[table.name] = self._statements._insert_text(
                table, columns, key, f"DO UPDATE SET {update_set}")
        return statement

    def _metadatas(self) -> tuple[MetaData, ...]:
        return (erp_metadata, trade.metadata, ksef_sql.metadata)

    def _create_tables(self) -> None:
        super()._create_tables()
        with self.engine.begin() as connection:  # tables of an earlier release lack them
            for index in CONTRACTOR_INDEXES:
                index.create(connection, checkfirst=True)

    def codes(self) -> StoredCodes:
        codes = super().codes()
        with self._reading() as c:
            for name in ("warehouses", "price_types", "product_groups"):
                table = trade.KINDS_BY_KEY[name].table
                setattr(codes, name, set(c.execute(select(table.c.code)).scalars()))
        return codes

    # -- the document ------------------------------------------------------------------------

    def _load_more(self, c: Connection, document: ErpDocument, counts: dict[str, int]) -> None:
        self._note_product_changes(c, document.products)
        self._note_contractor_changes(c, document.contractors)
        ksef_sql.store_contractor_details(c, {
            contractor.code: (contractor.country, contractor.vat_id)
            for contractor in document.contractors})
        self._note_receivable_changes(c, document.receivables)
        for kind in trade.RECORD_KINDS:
            entries = getattr(document, kind.key)
            if entries:
                counts[kind.key] = trade.load_records(c, kind, entries)
        for partner in document.partners:
            self._configure(c, partner.partner, url=partner.url,
                            credential=None if partner.credential is None
                            else partner.credential.get_secret_value(),
                            settings=partner.settings, batch_size=partner.batch_size,
                            rate_limit=partner.rate_limit, replace_settings=True)
        if document.partners:
            counts["partners"] = len(document.partners)
        deleted = 0
        for deletion in document.deletions:
            deleted += self._delete(c, deletion.entity, [deletion.code])
        if document.deletions:
            counts["deletions"] = deleted

    def _note_product_changes(self, c: Connection, products: Sequence[Product]) -> None:
        """Record a change of each product that differs from the stored one, and keep its
        group, EAN and attributes."""
        if not products:
            return
        given = {product.code: product for product in products}
        stored: dict[str, tuple[Any, ...]] = {}
        details = trade.product_details_table
        for chunk in trade.chunks(list(given)):
            for row in c.execute(
                    select(products_table, details.c.product_group, details.c.ean,
                           details.c.attributes)
                    .select_from(products_table.outerjoin(
                        details, details.c.code == products_table.c.code))
                    .where(products_table.c.code.in_(chunk))):
                extra = trade.details_of(row)
                stored[row.code] = (row.name, row.unit, row.net_price, row.vat_rate,
                                    extra["group"], extra["ean"], extra["attributes"])
        changed = [code for code, product in given.items() if stored.get(code) != (
            product.name, product.unit, product.net_price, product.vat_rate, product.group,
            product.ean, dict(product.attributes))]
        for chunk in trade.chunks(changed):
            c.execute(delete(details).where(details.c.code.in_(chunk)))
        rows = [trade.detail_row(code, given[code].group, given[code].ean,
                                 given[code].attributes) for code in changed]
        if rows:
            c.execute(insert(details), rows)
        trade.touch(c, "product", changed)

    def _note_contractor_changes(self, c: Connection, contractors: Sequence[Contractor]) -> None:
        if not contractors:
            return
        given = {contractor.code: contractor for contractor in contractors}
        stored: dict[str, tuple[Any, ...]] = {}
        for chunk in trade.chunks(list(given)):
            for row in c.execute(select(contractors_table)
                                 .where(contractors_table.c.code.in_(chunk))):
                stored[row.code] = tuple(row._mapping[name] for name in CONTRACTOR_COLUMNS)
        trade.touch(c, "contractor", [
            code for code, contractor in given.items()
            if stored.get(code) != tuple(getattr(contractor, name)
                                         for name in CONTRACTOR_COLUMNS)])

    def _note_receivable_changes(self, c: Connection,
                                 receivables: Sequence[Receivable]) -> None:
        if not receivables:
            return
        given = {receivable.id: receivable for receivable in receivables}
        stored: dict[str, Receivable] = {}
        for chunk in trade.chunks(list(given)):
            stored.update((receivable.id, receivable) for receivable in _receivables(
                c, receivables_table.c.id.in_(chunk)))
        trade.touch(c, "receivable", [
            code for code, receivable in given.items() if stored.get(code) != receivable])

    def _invoices(self, *where: ColumnElement[bool]) -> list[Invoice]:
        invoices = super()._invoices(*where)
        with self._reading() as c:
            return self.with_ksef(c, invoices)

    def _writer(self, connection: Connection) -> SqlErpWriter:
        return _ChangeRecordingWriter(connection, self._statements)

    def _delete(self, c: Connection, entity: str, codes: Sequence[str]) -> int:
        if entity in _DELETABLE:
            table, change = _DELETABLE[entity]
            found = [code for code in codes
                     if c.execute(select(table.c.code).where(table.c.code == code)).first()]
            for code in found:
                c.execute(delete(table).where(table.c.code == code))
                if entity == "products":
                    for kind in (trade.KINDS_BY_KEY["stock"], trade.KINDS_BY_KEY["prices"]):
                        c.execute(delete(kind.table).where(kind.table.c.product == code))
                    c.execute(delete(trade.product_details_table)
                              .where(trade.product_details_table.c.code == code))
            trade.touch(c, change, found, deleted=True)
            return len(found)
        return trade.delete_records(c, trade.KINDS_BY_KEY[entity], codes)

    def _document_more(self, c: Connection) -> dict[str, Any]:
        more: dict[str, Any] = {
            kind.key: trade.read_records(c, kind) for kind in trade.RECORD_KINDS}
        more["contractor_details"] = ksef_sql.contractor_details(c)
        more["product_details"] = {
            row.code: trade.details_of(row)
            for row in c.execute(select(trade.product_details_table))}
        more["partners"] = [
            {"partner": row.partner, "url": row.url, "credential": None,
             "settings": trade.as_json(row.settings), "batch_size": row.batch_size,
             "rate_limit": row.rate_limit}
            for row in c.execute(select(trade.partners_table)
                                 .order_by(trade.partners_table.c.partner))]
        return more

    # -- partners ------------------------------------------------------------------------------

    def _aad(self, partner: str) -> str:
        return f"partner:{partner}"

    def connection(self, partner: str) -> PartnerConnection | None:
        with self._reading() as c:
            row = trade.partner_row(c, partner)
        if row is None:
            return None
        credential = None if row["credential"] is None \
            else self._cipher.decrypt(row["credential"], self._aad(partner))
        tokens = None if row["tokens"] is None \
            else json.loads(self._cipher.decrypt(row["tokens"], self._aad(partner) + ":tokens"))
        return PartnerConnection(
            partner=partner, url=row["url"], credential=credential, tokens=tokens,
            settings=trade.as_json(row["settings"]), batch_size=row["batch_size"],
            rate_limit=row["rate_limit"], generation=row["generation"],
            full_requested=bool(row["full_requested"]))

    def configure(self, partner: str, *, url: str, credential: str | None,
                  settings: dict[str, Any], batch_size: int | None = None,
                  rate_limit: float | None = None) -> None:
        self._ready()
        with store_errors(), self.engine.begin() as c:
            self._configure(c, partner, url=url, credential=credential, settings=settings,
                            batch_size=batch_size, rate_limit=rate_limit)

    def _configure(self, c: Connection, partner: str, *, url: str, credential: str | None,
                   settings: dict[str, Any], batch_size: int | None,
                   rate_limit: float | None, replace_settings: bool = False) -> None:
        table = trade.partners_table
        row = trade.partner_row(c, partner)
        secret = None if credential is None else self._cipher.encrypt(credential,
                                                                      self._aad(partner))
        if row is None:
            c.execute(insert(table), {
                "partner": partner, "url": url, "credential": secret, "tokens": None,
                "settings": settings, "batch_size": batch_size or 500,
                "rate_limit": rate_limit, "sent": 0, "received": 0, "full_requested": True,
                "full_running": False, "generation": 1})
            return
        values: dict[str, Any] = {
            "url": url,
            "settings": settings if replace_settings
            else {**trade.as_json(row["settings"]), **settings}}
        if secret is not None:
            values["credential"] = secret
            values["tokens"] = None
        if batch_size is not None:
            values["batch_size"] = batch_size
        if rate_limit is not None or replace_settings:
            values["rate_limit"] = rate_limit
        c.execute(update(table).where(table.c.partner == partner).values(values))

    def save_tokens(self, partner: str, tokens: dict[str, Any]) -> None:
        self._update_partner(partner, tokens=self._cipher.encrypt(
            json.dumps(tokens), self._aad(partner) + ":tokens"))

    def _update_partner(self, partner: str, **values: Any) -> int:
        self._ready()
        table = trade.partners_table
        with store_errors(), self.engine.begin() as c:
            return int(c.execute(update(table).where(table.c.partner == partner)
                                 .values(values)).rowcount)

    def request_full(self, partner: str) -> bool:
        return self._update_partner(partner, full_requested=True, full_running=False) == 1

    def statuses(self) -> list[SyncStatus]:
        table = trade.partners_table
        with self._reading() as c:
            rows = c.execute(select(table).order_by(table.c.partner)).all()
            return [SyncStatus(
                partner=row.partner, url=row.url, last_full=_moment(row.last_full),
                last_differential=_moment(row.last_differential), sent=int(row.sent),
                received=int(row.received), watermark=trade.positions(c, row.partner),
                last_error=row.last_error, full_requested=bool(row.full_requested))
                for row in rows]

    # -- a run -----------------------------------------------------------------------------------

    def positions(self, partner: str) -> dict[str, str]:
        with self._reading() as c:
            return trade.positions(c, partner)

    def begin_full(self, partner: str) -> int:
        self._ready()
        table = trade.partners_table
        with store_errors(), self.engine.begin() as c:
            running = c.execute(select(table.c.full_running, table.c.generation)
                                .where(table.c.partner == partner)).first()
            if running is not None and running.full_running:
                return int(running.generation)  # resumed where the interrupted one stopped
            c.execute(delete(trade.sync_positions_table)
                      .where(trade.sync_positions_table.c.partner == partner)
                      .where(trade.sync_positions_table.c.stream.like("out:%")))
            c.execute(update(table).where(table.c.partner == partner)
                      .values(generation=table.c.generation + 1, full_running=True))
            return int(c.execute(select(table.c.generation)
                                 .where(table.c.partner == partner)).scalar_one())

    def last_change(self) -> int:
        with self._reading() as c:
            return trade.last_change(c)

    def changes(self, entities: Sequence[str], after: int, limit: int) -> list[Change]:
        with self._reading() as c:
            return trade.changes_after(c, entities, after, limit)

    def save_position(self, partner: str, stream: str, position: str, *,
                      sent: int = 0) -> None:
        self._ready()
        with store_errors(), self.engine.begin() as c:
            trade.set_position(c, partner, stream, position)
            trade.add_counts(c, partner, sent=sent)

    def finish(self, partner: str, *, full: bool, at: datetime) -> None:
        values: dict[str, Any] = {"last_error": None}
        if full:
            values.update(last_full=_iso(at), full_requested=False, full_running=False)
        else:
            values["last_differential"] = _iso(at)
        self._update_partner(partner, **values)

    def record_error(self, partner: str, message: str) -> None:
        self._update_partner(partner, last_error=message)

    def importing(self) -> AbstractContextManager[ImportWriter]:
        return self._importing()

    @contextmanager
    def _importing(self) -> Iterator[ImportWriter]:
        self._ready()
        with store_errors(), self.engine.begin() as c, trade.deferring_changes(c):
            yield SqlImportWriter(c, self)

    # -- reads -----------------------------------------------------------------------------------

    def product_records(self, codes: Sequence[str]) -> list[ProductRecord]:
        statements = _product_statements()
        levels: dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]] = {}
        found: list[tuple[Any, ...]] = []
        with self._reading() as c:
            for chunk in trade.chunks(list(codes)):
                found += c.execute(statements.products, {"codes": chunk}).tuples().all()
                for statement, index in ((statements.stock, 0), (statements.prices, 1)):
                    for product, detail, amount in c.execute(statement, {"codes": chunk}):
                        levels.setdefault(product, ({}, {}))[index][detail] = Decimal(amount)
        empty: tuple[dict[str, Decimal], dict[str, Decimal]] = ({}, {})
        return [
            ProductRecord(ProductData(code, name, unit, net_price, vat_rate, group, ean,
                                      as_json(attributes) or {}),
                          *levels.get(code, empty))
            for code, name, unit, net_price, vat_rate, group, ean, attributes in found]

    def contractors_of(self, codes: Sequence[str]) -> list[Contractor]:
        with self._reading() as c:
            found: list[Contractor] = []
            for chunk in trade.chunks(list(codes)):
                found += [Contractor.model_construct(**{
                    name: row._mapping[name] for name in CONTRACTOR_COLUMNS})
                    for row in c.execute(select(contractors_table)
                                         .where(contractors_table.c.code.in_(chunk)))]
            return found

    def records(self, key: str, codes: Sequence[str]) -> list[Any]:
        with self._reading() as c:
            return trade.read_records(c, trade.KINDS_BY_KEY[key], codes=codes)

    def invoices_of(self, numbers: Sequence[str]) -> list[Invoice]:
        found: list[Invoice] = []
        for chunk in trade.chunks(list(numbers)):
            found += self._invoices(invoices_table.c.number.in_(chunk))
        return found

    def receivables_of(self, ids: Sequence[str]) -> list[Receivable]:
        with self._reading() as c:
            found: list[Receivable] = []
            for chunk in trade.chunks(list(ids)):
                found += _receivables(c, receivables_table.c.id.in_(chunk))
            return found

    def all_records(self, key: str) -> list[Any]:
        with self._reading() as c:
            return trade.read_records(c, trade.KINDS_BY_KEY[key])

    def sales_orders(self, partner: str | None = None) -> list[SalesOrder]:
        kind = trade.KINDS_BY_KEY["sales_orders"]
        with self._reading() as c:
            query = select(kind.table.c.data)
            if partner is not None:
                query = query.where(kind.table.c.partner == partner)
            orders = [SalesOrder.model_validate(trade.as_json(data))
                      for data in c.execute(query).scalars()]
        return sorted(orders, key=lambda order: (order.date, order.number))

    def update_sales_order(self, number: str, **changes: Any) -> None:
        kind = trade.KINDS_BY_KEY["sales_orders"]
        self._ready()
        with store_errors(), self.engine.begin() as c:
            stored = trade.read_records(c, kind, codes=[number])
            if stored:
                changed = stored[0].model_copy(update=changes)
                c.execute(update(kind.table).where(kind.table.c.code == number)
                          .values(data=changed.model_dump(mode="json")))
                trade.touch(c, "sales_order", [number])


def _receivables(c: Connection, *where: Any) -> list[Receivable]:
    return [Receivable.model_validate(dict(row._mapping))
            for row in c.execute(select(receivables_table).where(*where))]


class _ChangeRecordingWriter(SqlErpWriter):
    """An ERP transaction that records a change of every invoice it adds."""

    def add_invoice(self, invoice: Invoice) -> None:
        super().add_invoice(invoice)
        trade.touch(self._connection, "invoice", [invoice.number])


@functools.cache
def _contractor_by(column: str) -> Select[Any]:
    """The first contractor code (by code) whose ``column`` has the value ``value``."""
    table = contractors_table
    return (select(table.c.code).where(table.c[column] == bindparam("value"))
            .order_by(table.c.code).limit(1))


@dataclass(frozen=True)
class _ProductStatements:
    products: Select[Any]
    stock: Select[Any]
    prices: Select[Any]


@functools.cache
def _product_statements() -> _ProductStatements:
    """The reads of :meth:`SqlCompanyGateway.product_records`, built once (their compiled
    form is cached; the code list expands at execution)."""
    codes: BindParameter[Any] = bindparam("codes", expanding=True)
    products, details = products_table, trade.product_details_table
    return _ProductStatements(
        products=select(products.c.code, products.c.name, products.c.unit,
                        products.c.net_price, products.c.vat_rate, details.c.product_group,
                        details.c.ean, details.c.attributes)
        .select_from(products.outerjoin(details, details.c.code == products.c.code))
        .where(products.c.code.in_(codes)),
        stock=select(trade.stock_table.c.product, trade.stock_table.c.detail,
                     trade.stock_table.c.amount).where(trade.stock_table.c.product.in_(codes)),
        prices=select(trade.prices_table.c.product, trade.prices_table.c.detail,
                      trade.prices_table.c.amount)
        .where(trade.prices_table.c.product.in_(codes)),
    )


class SqlImportWriter(ImportWriter):
    """The writes of one import, on one connection in a transaction."""

    def __init__(self, connection: Connection, gateway: SqlCompanyGateway) -> None:
        self._c = connection
        self._gateway = gateway

    def known(self, key: str, partner: str, ids: Sequence[str]) -> set[str]:
        return trade.known_partner_ids(self._c, trade.KINDS_BY_KEY[key], partner, ids)

    def add(self, key: str, entry: Any) -> None:
        kind = trade.KINDS_BY_KEY[key]
        self._c.execute(insert(kind.table), kind.row(entry))
        if kind.entity is not None:
            trade.touch(self._c, kind.entity, [kind.change_key(entry)])

    def put(self, key: str, entry: Any) -> None:
        trade.load_records(self._c, trade.KINDS_BY_KEY[key], [entry])

    def find_contractor(self, *, nip: str | None = None, email: str | None = None) -> str | None:
        for column, value in (("nip", nip), ("email", email)):
            if value:
                code = self._c.execute(_contractor_by(column), {"value": value}).scalar()
                if code is not None:
                    return str(code)
        return None

    def put_contractor(self, contractor: Contractor) -> None:
        gateway = self._gateway
        gateway._note_contractor_changes(self._c, [contractor])
        self._c.execute(gateway._upsert(contractors_table),
                        [contractor.model_dump(exclude=CONTRACTOR_DETAILS)])

    def put_product(self, product: Product) -> None:
        gateway = self._gateway
        gateway._note_product_changes(self._c, [product])
        self._c.execute(gateway._upsert(products_table),
                        [product.model_dump(include=PRODUCT_COLUMNS)])

    def put_price(self, product: str, price_type: str, net_price: Decimal) -> None:
        from engine.erp.trade import Price

        trade.load_records(self._c, trade.KINDS_BY_KEY["prices"],
                           [Price(product=product, price_type=price_type, net_price=net_price)])

    def delete(self, key: str, codes: Sequence[str]) -> int:
        return self._gateway._delete(self._c, key, codes)

    def take_stock(self, product: str, warehouse: str, quantity: Decimal, day: date) -> Decimal:
        from engine.erp.trade import StockLevel

        kind = trade.KINDS_BY_KEY["stock"]
        stored = trade.read_records(self._c, kind, codes=[f"{product}|{warehouse}"])
        on_hand = stored[0].quantity if stored else Decimal(0)
        left = on_hand - quantity
        missing = -left if left < 0 else Decimal(0)
        trade.load_records(self._c, kind, [StockLevel(product=product, warehouse=warehouse,
                                                      quantity=max(left, Decimal(0)))])
        if missing:
            trade.add_shortfall(self._c, day.isoformat(), warehouse, product, missing)
        return missing

    def next_number(self, series: str) -> int:
        statement = self._gateway._statements.next_number
        return int(self._c.execute(statement, {"series": series, "last": 1}).scalar_one())

    def set_position(self, partner: str, stream: str, position: str, *,
                     received: int = 0) -> None:
        trade.set_position(self._c, partner, stream, position)
        trade.add_counts(self._c, partner, received=received)


class SqlCompanyGateways(SqlErpGateways):
    """The gateway of each company database: a :class:`SqlCompanyGateway`."""

    def __init__(self, secrets: SecretBox, cipher: CipherBox) -> None:
        super().__init__(secrets, lambda engine: SqlCompanyGateway(engine, secrets, cipher))


__all__ = ["SqlCompanyGateway", "SqlCompanyGateways", "SqlImportWriter"]
