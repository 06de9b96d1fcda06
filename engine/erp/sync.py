"""The port the partner synchronisations use: the change log, each partner's connection
and positions, the data they send out and the writes of what they bring in.

A **change** is the latest change of one key of one entity (``product``, ``contractor``,
...), numbered in commit order; an export stream keeps the number it sent up to (its
watermark) and asks for the changes after it. An **import** writes what a partner sent,
keyed by the partner's id, together with the stream's new cursor in one transaction, so
a crash leaves either both or neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from engine.erp.document import Contractor, Product, Receivable
from engine.erp.model import Invoice
from engine.erp.money import VatRate
from engine.erp.trade import SalesOrder


class Change(NamedTuple):
    """The latest change of ``key`` of ``entity``: its number, and whether it deleted it
    (a tuple: exports read hundreds of thousands)."""

    entity: str
    key: str
    seq: int
    deleted: bool


@dataclass(frozen=True)
class PartnerConnection:
    """How the company reaches a partner, with its credential decrypted."""

    partner: str
    url: str
    credential: str | None = field(repr=False)
    tokens: dict[str, Any] | None = field(repr=False)
    settings: dict[str, Any]
    batch_size: int
    rate_limit: float | None
    generation: int
    full_requested: bool


@dataclass(frozen=True)
class SyncStatus:
    """What ``soa sync status`` shows of one partner."""

    partner: str
    url: str
    last_full: datetime | None
    last_differential: datetime | None
    sent: int
    received: int
    watermark: dict[str, str]
    last_error: str | None
    full_requested: bool

    def as_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {"partner": self.partner, "url": self.url, "last_full": iso(self.last_full),
                "last_differential": iso(self.last_differential), "sent": self.sent,
                "received": self.received, "watermark": self.watermark,
                "last_error": self.last_error, "full_requested": self.full_requested}


@dataclass(frozen=True, slots=True)
class ProductData:
    """A product's own fields, as :class:`engine.erp.document.Product` has them (a light
    record: exports read hundreds of thousands)."""

    code: str
    name: str
    unit: str
    net_price: Decimal
    vat_rate: VatRate
    group: str | None = None
    ean: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, product: Product) -> ProductData:
        return cls(product.code, product.name, product.unit, product.net_price,
                   product.vat_rate, product.group, product.ean, dict(product.attributes))


@dataclass(frozen=True)
class ProductRecord:
    """A product with what partners show of it: stock per warehouse, net price per price
    type."""

    product: ProductData
    stock: dict[str, Decimal]
    prices: dict[str, Decimal]

    def stock_in(self, warehouses: Sequence[str]) -> Decimal:
        """Stock summed over ``warehouses`` (every one when empty)."""
        if not warehouses:
            return sum(self.stock.values(), Decimal(0))
        return sum((self.stock.get(code, Decimal(0)) for code in warehouses), Decimal(0))

    def net_price(self, price_type: str | None) -> Decimal:
        """The price of ``price_type``; the product's own price when it has none."""
        if price_type and price_type in self.prices:
            return self.prices[price_type]
        return self.product.net_price


class ImportWriter(ABC):
    """The writes of one import transaction (see :meth:`SyncGateway.importing`)."""

    @abstractmethod
    def known(self, key: str, partner: str, ids: Sequence[str]) -> set[str]:
        """Which of the partner's ``ids`` are stored under document key ``key``
        (``sales_orders``, ``retail_documents``, ``cash_entries``, ``payments``)."""

    @abstractmethod
    def add(self, key: str, entry: Any) -> None:
        """Store ``entry`` under document key ``key`` (an entry of engine.erp.trade)."""

    @abstractmethod
    def put(self, key: str, entry: Any) -> None:
        """Insert or replace ``entry`` under document key ``key`` by its code (recording
        a change if it differs from the stored one)."""

    @abstractmethod
    def find_contractor(self, *, nip: str | None = None, email: str | None = None) -> str | None:
        """The code of a contractor with that NIP (first) or e-mail, or None."""

    @abstractmethod
    def put_contractor(self, contractor: Contractor) -> None:
        """Insert or replace a contractor (recording its change)."""

    @abstractmethod
    def put_product(self, product: Product) -> None:
        """Insert or replace a product (recording its change)."""

    @abstractmethod
    def put_price(self, product: str, price_type: str, net_price: Decimal) -> None:
        """Insert or replace a price."""

    @abstractmethod
    def delete(self, key: str, codes: Sequence[str]) -> int:
        """Delete entries of document key ``key`` (products, contractors, ...) by code."""

    @abstractmethod
    def take_stock(self, product: str, warehouse: str, quantity: Decimal, day: date) -> Decimal:
        """Lower ``product``'s stock in ``warehouse`` by ``quantity`` (raise it for a
        negative one); never below zero: return what was missing (0 if none), which is
        kept as a shortfall of ``day`` and warehouse."""

    @abstractmethod
    def next_number(self, series: str) -> int:
        """The next number of ``series``, gap-free (see ErpWriter.next_number)."""

    @abstractmethod
    def set_position(self, partner: str, stream: str, position: str, *,
                     received: int = 0) -> None:
        """Keep the stream's cursor (and count what came in), in this transaction."""


class SyncGateway(ABC):
    """What the synchronisations read and write of a company's data."""

    # -- partners ------------------------------------------------------------------------

    @abstractmethod
    def connection(self, partner: str) -> PartnerConnection | None:
        """The partner's connection, or None if the company has not configured it."""

    @abstractmethod
    def configure(self, partner: str, *, url: str, credential: str | None,
                  settings: dict[str, Any], batch_size: int | None = None,
                  rate_limit: float | None = None) -> None:
        """Set the partner's connection; a None credential keeps the stored one; the
        settings given are merged into the stored ones."""

    @abstractmethod
    def save_tokens(self, partner: str, tokens: dict[str, Any]) -> None:
        """Keep the login's tokens (encrypted)."""

    @abstractmethod
    def request_full(self, partner: str) -> bool:
        """Ask for a full synchronisation next time; False if the partner is not
        configured."""

    @abstractmethod
    def statuses(self) -> list[SyncStatus]:
        """Every configured partner's state, by partner name."""

    # -- a run -----------------------------------------------------------------------------

    @abstractmethod
    def positions(self, partner: str) -> dict[str, str]:
        """Each stream's watermark or cursor."""

    @abstractmethod
    def begin_full(self, partner: str) -> int:
        """Start a full synchronisation: forget the export watermarks (imports keep their
        cursors), advance and return the generation; if one began and did not finish
        (a crash, a failed run), resume it instead: its generation and watermarks stay."""

    @abstractmethod
    def last_change(self) -> int:
        """The number of the latest change committed (0: none)."""

    @abstractmethod
    def changes(self, entities: Sequence[str], after: int, limit: int) -> list[Change]:
        """Changes of ``entities`` numbered above ``after``, in order, at most ``limit``."""

    @abstractmethod
    def save_position(self, partner: str, stream: str, position: str, *,
                      sent: int = 0) -> None:
        """Keep an export stream's watermark (and count what went out)."""

    @abstractmethod
    def finish(self, partner: str, *, full: bool, at: datetime) -> None:
        """Record a finished synchronisation and clear the last error (and, after a full
        one, the request for it)."""

    @abstractmethod
    def record_error(self, partner: str, message: str) -> None:
        """Keep the failed synchronisation's one-line error."""

    @abstractmethod
    def importing(self) -> AbstractContextManager[ImportWriter]:
        """A transaction of import writes: committed when the block ends."""

    # -- reads -----------------------------------------------------------------------------

    @abstractmethod
    def product_records(self, codes: Sequence[str]) -> list[ProductRecord]:
        """The products of ``codes`` that exist, with their stock and prices."""

    @abstractmethod
    def contractors_of(self, codes: Sequence[str]) -> list[Contractor]:
        """The contractors of ``codes`` that exist."""

    @abstractmethod
    def records(self, key: str, codes: Sequence[str]) -> list[Any]:
        """Entries of document key ``key`` (product_groups, employees, payments,
        cash_entries, sales_orders, retail_documents, payment_links, warehouses,
        price_types, stock, prices) with ``codes`` that exist."""

    @abstractmethod
    def invoices_of(self, numbers: Sequence[str]) -> list[Invoice]:
        """The invoices of ``numbers`` that exist."""

    @abstractmethod
    def receivables_of(self, ids: Sequence[str]) -> list[Receivable]:
        """The receivables of ``ids`` that exist."""

    @abstractmethod
    def all_records(self, key: str) -> list[Any]:
        """Every entry of document key ``key``, by code."""

    @abstractmethod
    def sales_orders(self, partner: str | None = None) -> list[SalesOrder]:
        """Customer orders (of ``partner``), by date and number."""

    @abstractmethod
    def update_sales_order(self, number: str, **changes: Any) -> None:
        """Change fields of a stored order (such as ``status_reported``)."""
