"""The company gateway the host uses: the ERP data of :mod:`engine.adapters.erp_sqlalchemy`
plus the trade data, the change log and the synchronisations' state of
:mod:`engine.adapters.erp_trade_sql` (the :class:`SyncGateway` port).

Partner credentials and login tokens are encrypted with a :class:`CipherBox` (AES-GCM),
bound to the partner's name, and never leave this module decrypted except in a
:class:`PartnerConnection`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, delete, insert, select, update

from engine.adapters import erp_trade_sql as trade
from engine.adapters.cipher_box import CipherBox
from engine.adapters.erp_sqlalchemy import (
    PRODUCT_COLUMNS,
    SqlErpGateway,
    SqlErpGateways,
    SqlErpWriter,
    contractors_table,
    invoices_table,
    numbering_table,
    products_table,
    receivables_table,
)
from engine.adapters.erp_sqlalchemy import metadata as erp_metadata
from engine.adapters.secret_box import SecretBox
from engine.adapters.sql import store_errors
from engine.erp.document import Contractor, ErpDocument, Product, Receivable
from engine.erp.model import Invoice
from engine.erp.references import StoredCodes
from engine.erp.sync import (
    Change,
    ImportWriter,
    PartnerConnection,
    ProductRecord,
    SyncGateway,
    SyncStatus,
)
from engine.erp.trade import SalesOrder

CONTRACTOR_COLUMNS = ("code", "name", "nip", "email", "phone", "address", "dunning_scheme",
                      "sales_blocked")
_DELETABLE = {"products": (products_table, "product"),
              "contractors": (contractors_table, "contractor")}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqlCompanyGateway(SqlErpGateway, SyncGateway):
    """A company's ERP data, trade data and synchronisation state in its database."""

    def __init__(self, engine: Engine, secrets: SecretBox, cipher: CipherBox) -> None:
        super().__init__(engine, secrets)
        self._cipher = cipher

    def _metadatas(self) -> tuple[MetaData, ...]:
        return (erp_metadata, trade.metadata)

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
        details: dict[str, Any] = {}
        for chunk in trade.chunks(list(given)):
            for row in c.execute(select(products_table).where(products_table.c.code.in_(chunk))):
                stored[row.code] = (row.name, row.unit, row.net_price, row.vat_rate)
            details.update(c.execute(select(trade.product_details_table.c.code,
                                            trade.product_details_table.c.data)
                                     .where(trade.product_details_table.c.code.in_(chunk)))
                           .tuples().all())
        changed = []
        new_details = []
        for code, product in given.items():
            extra = product.model_dump(mode="json", exclude=PRODUCT_COLUMNS)
            if stored.get(code) != (product.name, product.unit, product.net_price,
                                    product.vat_rate) or trade.as_json(details.get(code)) != extra:
                changed.append(code)
                new_details.append({"code": code, "data": extra})
        for chunk in trade.chunks([row["code"] for row in new_details]):
            c.execute(delete(trade.product_details_table)
                      .where(trade.product_details_table.c.code.in_(chunk)))
        if new_details:
            c.execute(insert(trade.product_details_table), new_details)
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
        more["product_details"] = {
            code: trade.as_json(data) for code, data in c.execute(
                select(trade.product_details_table.c.code,
                       trade.product_details_table.c.data)).tuples()}
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
        with store_errors(), self.engine.begin() as c:
            yield SqlImportWriter(c, self)

    # -- reads -----------------------------------------------------------------------------------

    def product_records(self, codes: Sequence[str]) -> list[ProductRecord]:
        stock: dict[str, dict[str, Decimal]] = {}
        prices: dict[str, dict[str, Decimal]] = {}
        products: list[Product] = []
        with self._reading() as c:
            for chunk in trade.chunks(list(codes)):
                details = dict(c.execute(
                    select(trade.product_details_table.c.code,
                           trade.product_details_table.c.data)
                    .where(trade.product_details_table.c.code.in_(chunk))).tuples().all())
                for row in c.execute(select(products_table)
                                     .where(products_table.c.code.in_(chunk))):
                    products.append(Product.model_construct(
                        code=row.code, name=row.name, unit=row.unit,
                        net_price=row.net_price, vat_rate=row.vat_rate,
                        **_details(details.get(row.code))))
                for product, data in c.execute(
                        select(trade.stock_table.c.product, trade.stock_table.c.data)
                        .where(trade.stock_table.c.product.in_(chunk))).tuples():
                    level = trade.as_json(data)
                    stock.setdefault(product, {})[level["warehouse"]] = \
                        Decimal(level["quantity"])
                for product, data in c.execute(
                        select(trade.prices_table.c.product, trade.prices_table.c.data)
                        .where(trade.prices_table.c.product.in_(chunk))).tuples():
                    price = trade.as_json(data)
                    prices.setdefault(product, {})[price["price_type"]] = \
                        Decimal(price["net_price"])
        return [ProductRecord(product, stock.get(product.code, {}), prices.get(product.code, {}))
                for product in products]

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


def _receivables(c: Connection, *where: Any) -> list[Receivable]:
    return [Receivable.model_validate(dict(row._mapping))
            for row in c.execute(select(receivables_table).where(*where))]


class _ChangeRecordingWriter(SqlErpWriter):
    """An ERP transaction that records a change of every invoice it adds."""

    def add_invoice(self, invoice: Invoice) -> None:
        super().add_invoice(invoice)
        trade.touch(self._connection, "invoice", [invoice.number])


def _details(data: Any) -> dict[str, Any]:
    extra = trade.as_json(data) or {}
    return {"group": extra.get("group"), "ean": extra.get("ean"),
            "attributes": extra.get("attributes") or {}}


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
        table = contractors_table
        for column, value in ((table.c.nip, nip), (table.c.email, email)):
            if value:
                code = self._c.execute(select(table.c.code).where(column == value)
                                       .order_by(table.c.code).limit(1)).scalar()
                if code is not None:
                    return str(code)
        return None

    def put_contractor(self, contractor: Contractor) -> None:
        gateway = self._gateway
        gateway._note_contractor_changes(self._c, [contractor])
        row = contractor.model_dump()
        self._c.execute(gateway._statements.upsert(contractors_table, row), [row])

    def put_product(self, product: Product) -> None:
        gateway = self._gateway
        gateway._note_product_changes(self._c, [product])
        row = product.model_dump(include=PRODUCT_COLUMNS)
        self._c.execute(gateway._statements.upsert(products_table, row), [row])

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
        table = numbering_table
        done = self._c.execute(update(table).where(table.c.series == series)
                               .values(last=table.c.last + 1).returning(table.c.last)).scalar()
        if done is None:
            self._c.execute(insert(table), {"series": series, "last": 1})
            return 1
        return int(done)

    def set_position(self, partner: str, stream: str, position: str, *,
                     received: int = 0) -> None:
        trade.set_position(self._c, partner, stream, position)
        trade.add_counts(self._c, partner, received=received)


class SqlCompanyGateways(SqlErpGateways):
    """The gateway of each company database: a :class:`SqlCompanyGateway`."""

    def __init__(self, secrets: SecretBox, cipher: CipherBox) -> None:
        super().__init__(secrets, lambda engine: SqlCompanyGateway(engine, secrets, cipher))


__all__ = ["SqlCompanyGateway", "SqlCompanyGateways", "SqlImportWriter"]
