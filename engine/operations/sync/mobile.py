"""``sync_mobile``: master data out to the sales reps' app (Mobile Sprzedaż); the reps'
orders, new customers and collected payments in (contract: docs/partners/mobile.md).

- Customers (``POST /customers``), products (``POST /products``) and receivables (``POST
  /receivables``) follow their change-log entities; a deleted one is removed with the
  endpoint's ``/delete``. A deleted product's prices and stock are removed with it.
- A product's stock or price change (``product_stock``, ``product_price``) sends every price (``POST
  /prices``) and every stock level (``POST /stock``) of the product, within the chosen
  price types and warehouses (all when none is chosen); the pairs of those price types and
  warehouses the product no longer has are removed (``/prices/delete``, ``/stock/delete``).
- Orders (``GET /orders``) become customer orders in the chosen series, numbered
  ``ZS/N/YEAR/SERIES``; a customer given as an object (one the rep added) is brought in
  as a new customer first.
- New customers (``GET /customers/new``) become contractors coded ``MOB-<id>``; with
  ``check_duplicate_nip`` one whose NIP a contractor has is matched to it instead (and
  warned about).
- Payments (``GET /payments``) become payments ``MOB-<id>``.

Every entry brought in carries ``partner`` and ``partner_id`` where its model has them;
contractors are recognised by their ``MOB-`` code, so a page fetched again creates
nothing. The app takes no acknowledgements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, ValidationError

from engine.erp.document import Contractor
from engine.erp.money import money_text
from engine.erp.sync import ImportWriter
from engine.erp.trade import OrderLine, Payment, SalesOrder
from engine.operations.sync.core import Export, Import, PartnerSettings, PartnerSync, SyncJob
from engine.operations.sync.mapping import address_text, page_fetcher, quantity_text, valid_nip

PARTNER: Literal["mobile"] = "mobile"
CODE_PREFIX = "MOB-"
OrderPaymentForm = Literal["transfer", "cash", "card", "online"]
PaymentForm = Literal["cash", "card", "transfer"]


class MobileSettings(PartnerSettings):
    series: str = Field(default="MOB", min_length=1, max_length=20,
                        description="Numbering series of the orders brought in.")
    check_duplicate_nip: bool = Field(
        default=True, description="A new customer whose NIP a contractor has is matched to "
        "that contractor (and warned about) instead of being created.")
    warehouse: str | None = Field(default=None, description="Warehouse of an order the app "
                                  "sends without one (default: none).")
    warehouses: list[str] = Field(default_factory=list, description="Warehouse codes whose "
                                  "stock is sent (empty: all).")
    price_types: list[str] = Field(default_factory=list, description="Price types whose "
                                   "prices are sent (empty: all).")



class MobileSync(PartnerSync):
    partner = PARTNER
    settings_model = MobileSettings

    def exports(self) -> list[Export]:
        return [Export("customers", ("contractor",), self._send_customers),
                Export("products", ("product",), self._send_products),
                Export("levels", ("product_stock", "product_price"), self._send_levels),
                Export("receivables", ("receivable",), self._send_receivables)]

    def imports(self) -> list[Import]:
        return [Import("customers", page_fetcher("/customers/new", "customers"),
                       self._store_customers),
                Import("orders", page_fetcher("/orders", "orders"), self._store_orders),
                Import("payments", page_fetcher("/payments", "payments"),
                       self._store_payments)]

    # -- master data out ---------------------------------------------------------------------

    def _send_customers(self, job: SyncJob, upserted: list[str], deleted: list[str],
                        key: str) -> int:
        customers = job.gateway.contractors_of(upserted)
        if customers:
            job.http.send("POST", "/customers", {"customers": [
                {"code": customer.code, "name": customer.name, "nip": customer.nip,
                 "address": customer.address, "email": customer.email,
                 "phone": customer.phone} for customer in customers]},
                idempotency_key=key + "/customers")
        if deleted:
            job.http.send("POST", "/customers/delete", {"codes": deleted},
                          idempotency_key=key + "/delete")
        return len(customers) + len(deleted)

    def _send_products(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        records = job.gateway.product_records(upserted)
        if records:
            job.http.send("POST", "/products", {"products": [
                {"code": record.product.code, "name": record.product.name,
                 "unit": record.product.unit, "vat_rate": record.product.vat_rate,
                 "group": record.product.group} for record in records]},
                idempotency_key=key + "/products")
        if deleted:
            job.http.send("POST", "/products/delete", {"codes": deleted},
                          idempotency_key=key + "/delete")
            price_keys = [[code, kind] for code in deleted for kind in _price_types(job)]
            stock_keys = [[code, place] for code in deleted for place in _warehouses(job)]
            if price_keys:
                job.http.send("POST", "/prices/delete", {"keys": price_keys},
                              idempotency_key=key + "/prices-delete")
            if stock_keys:
                job.http.send("POST", "/stock/delete", {"keys": stock_keys},
                              idempotency_key=key + "/stock-delete")
        return len(records) + len(deleted)

    def _send_levels(self, job: SyncJob, upserted: list[str], deleted: list[str],
                     key: str) -> int:
        """Every price and stock level of the changed products; a product's level changes
        are never deletions (a deleted product goes with the products stream)."""
        records = job.gateway.product_records(upserted)
        if not records:
            return 0
        price_types, warehouses = _price_types(job), _warehouses(job)
        settings: MobileSettings = job.settings
        prices = [{"product": record.product.code, "price_type": kind,
                   "net_price": money_text(price)}
                  for record in records for kind, price in sorted(record.prices.items())
                  if not settings.price_types or kind in settings.price_types]
        stock = [{"product": record.product.code, "warehouse": place,
                  "quantity": quantity_text(quantity)}
                 for record in records for place, quantity in sorted(record.stock.items())
                 if not settings.warehouses or place in settings.warehouses]
        gone_prices = [[record.product.code, kind] for record in records
                       for kind in price_types if kind not in record.prices]
        gone_stock = [[record.product.code, place] for record in records
                      for place in warehouses if place not in record.stock]
        for path, body, suffix in (
                ("/prices", {"prices": prices}, "/prices"),
                ("/stock", {"stock": stock}, "/stock"),
                ("/prices/delete", {"keys": gone_prices}, "/prices-delete"),
                ("/stock/delete", {"keys": gone_stock}, "/stock-delete")):
            if next(iter(body.values())):
                job.http.send("POST", path, body, idempotency_key=key + suffix)
        return len(records)

    def _send_receivables(self, job: SyncJob, upserted: list[str], deleted: list[str],
                          key: str) -> int:
        receivables = job.gateway.receivables_of(upserted)
        if receivables:
            job.http.send("POST", "/receivables", {"receivables": [
                {"id": receivable.id, "customer": receivable.contractor,
                 "document": receivable.document, "due_date": receivable.due_date.isoformat(),
                 "amount": money_text(receivable.amount),
                 "remaining": money_text(receivable.remaining),
                 "currency": receivable.currency} for receivable in receivables]},
                idempotency_key=key + "/receivables")
        if deleted:
            job.http.send("POST", "/receivables/delete", {"codes": deleted},
                          idempotency_key=key + "/delete")
        return len(receivables) + len(deleted)

    # -- the reps' data in -------------------------------------------------------------------

    def _store_customers(self, job: SyncJob, writer: ImportWriter,
                         customers: list[dict[str, Any]]) -> int:
        resolver = _Customers(job, writer)
        for customer in customers:
            resolver.bring_in(customer)
        return resolver.created

    def _store_orders(self, job: SyncJob, writer: ImportWriter,
                      orders: list[dict[str, Any]]) -> int:
        settings: MobileSettings = job.settings
        known = writer.known("sales_orders", PARTNER, [str(order.get("id")) for order in orders])
        resolver = _Customers(job, writer)
        resolver.preload(order.get("customer") for order in orders)
        created = 0
        for order in orders:
            order_id = str(order.get("id") or "")
            if not order_id or order_id in known:
                continue
            known.add(order_id)
            contractor = resolver.of(order.get("customer"))
            if contractor is None:
                job.warn(f"order {order_id[:60]} of the mobile app was not brought in: its "
                         "customer matches no contractor")
                continue
            try:
                day = _day(order.get("date"), job.instant.date())
                lines = [_line(line) for line in order.get("lines") or []]
                sequence_series = f"ZS/{day.year}/{settings.series}"
                draft = SalesOrder(
                    number="?", series=settings.series, partner=PARTNER,
                    partner_order_id=order_id, contractor=contractor, date=day, lines=lines,
                    payment_form=_order_payment(order.get("payment")),
                    warehouse=order.get("warehouse") or settings.warehouse,
                    status_reported="new")
            except (ValidationError, ValueError, InvalidOperation, TypeError):
                job.warn(f"order {order_id[:60]} of the mobile app was not brought in: its "
                         "lines, date or warehouse are not valid")
                continue
            sequence = writer.next_number(sequence_series)
            writer.add("sales_orders", draft.model_copy(update={
                "number": f"ZS/{sequence}/{day.year}/{settings.series}"}))
            created += 1
        return created

    def _store_payments(self, job: SyncJob, writer: ImportWriter,
                        payments: list[dict[str, Any]]) -> int:
        known = writer.known("payments", PARTNER, [str(item.get("id")) for item in payments])
        resolver = _Customers(job, writer)
        resolver.preload(item.get("customer") for item in payments)
        created = 0
        for item in payments:
            payment_id = str(item.get("id") or "")
            if not payment_id or payment_id in known:
                continue
            known.add(payment_id)
            contractor = resolver.of(item.get("customer"))
            if contractor is None and item.get("customer"):
                job.warn(f"payment {payment_id[:60]} of the mobile app names an unknown "
                         "customer; it is kept without one")
            try:
                payment = Payment(
                    id=_code(payment_id), partner=PARTNER, partner_id=payment_id,
                    contractor=contractor, document=item.get("document") or None,
                    date=_day(item.get("date"), job.instant.date()),
                    amount=Decimal(str(item.get("amount"))),
                    form=_payment_form(item.get("form")))
            except (ValidationError, ValueError, InvalidOperation, TypeError):
                job.warn(f"payment {payment_id[:60]} of the mobile app was not brought in: "
                         "its amount or date is not valid")
                continue
            writer.add("payments", payment)
            created += 1
        return created


class _Customers:
    """Finds or brings in the contractors of one import page: a code the app sends is the
    contractor's (or the ``MOB-`` code of a customer a rep added); an object is a customer
    a rep added, created as ``MOB-<id>`` unless its NIP matches (``check_duplicate_nip``)."""

    def __init__(self, job: SyncJob, writer: ImportWriter) -> None:
        self.job = job
        self.writer = writer
        self.made: set[str] = set()
        self.stored: set[str] = set()
        self.looked_up: set[str] = set()
        self.created = 0

    def preload(self, customers: Iterable[Any]) -> None:
        """Look up at once the stored contractors a page's customer codes may name."""
        codes = {candidate for customer in customers if isinstance(customer, (str, dict))
                 for candidate in _candidates(customer)}
        self.stored.update(contractor.code
                           for contractor in self.job.gateway.contractors_of(sorted(codes)))
        self.looked_up.update(codes)

    def exists(self, code: str) -> bool:
        if code not in self.looked_up:
            self.preload([code])
        return code in self.made or code in self.stored

    def of(self, customer: Any) -> str | None:
        if isinstance(customer, dict):
            return self.bring_in(customer)
        if not customer:
            return None
        return next((code for code in _candidates(customer) if self.exists(code)), None)

    def bring_in(self, customer: dict[str, Any]) -> str | None:
        """The contractor of a customer a rep added: matched, found or created."""
        settings: MobileSettings = self.job.settings
        ident = str(customer.get("id") or "")
        if not ident:
            self.job.warn("a new customer of the mobile app without an id was not brought in")
            return None
        code = _code(ident)
        if self.exists(code):
            return code
        nip = valid_nip(customer.get("nip"))
        if nip and settings.check_duplicate_nip:
            found = self.writer.find_contractor(nip=nip)
            if found is not None:
                self.job.warn(f"new customer {ident[:60]} of the mobile app has the NIP of "
                              f"contractor {found}; matched to it, not created")
                self.job.counts["customers_matched"] += 1
                return found
        contractor = _contractor(code, customer, nip)
        if contractor is None:
            self.job.warn(f"new customer {ident[:60]} of the mobile app was not brought in: "
                          "it has no name, or its id is not a valid code")
            return None
        self.writer.put_contractor(contractor)
        self.made.add(code)
        self.created += 1
        self.job.counts["customers_created"] += 1
        return code


def _contractor(code: str, customer: dict[str, Any], nip: str | None) -> Contractor | None:
    """A contractor of the customer's data; an e-mail or phone that is not valid is left
    out rather than losing the customer."""
    name = str(customer.get("name") or "").strip()
    if not name:
        return None
    fields = {"code": code, "name": name, "nip": nip, "address": address_text(customer.get(
        "address")), "email": customer.get("email") or None, "phone": customer.get("phone")
        or None}
    for fallback in ({}, {"email": None, "phone": None}):
        try:
            return Contractor.model_validate({**fields, **fallback})
        except ValidationError:
            continue
    return None


def _candidates(customer: Any) -> list[str]:
    """The contractor codes a customer of the app may be stored under."""
    if isinstance(customer, dict):
        return [_code(str(customer["id"]))] if customer.get("id") else []
    return [str(customer), _code(str(customer))]


def _price_types(job: SyncJob) -> list[str]:
    settings: MobileSettings = job.settings
    return settings.price_types or [kind.code for kind in job.gateway.all_records("price_types")]


def _warehouses(job: SyncJob) -> list[str]:
    settings: MobileSettings = job.settings
    return settings.warehouses or [place.code for place in job.gateway.all_records("warehouses")]


def _code(ident: str) -> str:
    return CODE_PREFIX + re.sub(r"\s+", "-", ident.strip())[:56]


def _day(value: Any, default: date) -> date:
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return default


def _line(line: dict[str, Any]) -> OrderLine:
    return OrderLine.model_validate({
        "product": str(line.get("code") or ""), "quantity": Decimal(str(line.get("quantity"))),
        "unit_price": Decimal(str(line.get("price"))),
        "vat_rate": str(line.get("vat_rate") or "23")})


def _order_payment(value: Any) -> OrderPaymentForm:
    forms: dict[str, OrderPaymentForm] = {
        "cash": "cash", "card": "card", "transfer": "transfer", "online": "online"}
    return forms.get(str(value or ""), "transfer")


def _payment_form(value: Any) -> PaymentForm:
    forms: dict[str, PaymentForm] = {"cash": "cash", "card": "card", "transfer": "transfer"}
    return forms.get(str(value or ""), "transfer")
