"""``sync_esklep``: product groups and products (with price and stock) out to the e-Sklep
web shop; its new customers and its orders awaiting confirmation in; each order brought
in is confirmed to the shop once (contract: docs/partners/esklep.md).

- Groups: a product group's change upserts it (``POST /groups``); a deleted group is
  deleted (``POST /groups/delete``).
- Products: a product's own change and a change of its stock or prices both upsert the
  shop's product (``POST /products``, which carries the gross price of the shop's price
  type and the stock summed over the shop's warehouses); a deleted product is deleted
  (``POST /products/delete``).
- Customers (``GET /customers``) become contractors ``SKL-<id>``, unless one is matched
  by NIP or e-mail (settings) or that code exists already.
- Orders (``GET /orders?status=awaiting_confirmation``) become customer orders numbered
  ``ZS/N/YEAR/SERIES``; their buyer is found like a customer. After the imports, each
  order of the shop not confirmed yet is confirmed (``POST /orders/{id}/confirm`` with
  its ERP number) and marked ``status_reported="confirmed"``, so it is confirmed once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator

from engine.adapters.partners.http import PartnerRequestError
from engine.erp.document import Contractor, normal_nip
from engine.erp.fields import normal_phone
from engine.erp.money import money_text
from engine.erp.sync import ImportWriter, ProductRecord
from engine.erp.trade import OrderLine, ProductGroup, SalesOrder, Shipping
from engine.operations.sync.core import (
    Export,
    Import,
    PartnerSettings,
    PartnerSync,
    SyncJob,
    changed_orders,
)
from engine.operations.sync.wszystkopl import gross, quantity_text

PARTNER: Literal["esklep"] = "esklep"
CUSTOMER_PREFIX = "SKL-"
CONFIRMED = "confirmed"
CONFIRM_REFUSED = "confirm_refused"
"""``status_reported`` of an order the shop refused to confirm (404, 409): not tried again."""
PaymentForm = Literal["transfer", "cash", "card", "online"]
PAYMENT_FORMS: dict[str, PaymentForm] = {
    "transfer": "transfer", "cash_on_delivery": "cash", "online": "online", "card": "card"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EsklepSettings(PartnerSettings):
    price_type: str | None = Field(default=None, description="The shop's default price "
                                   "type (default: the product's own net price).")
    warehouses: list[str] = Field(default_factory=list,
                                  description="Warehouse codes whose stock is summed (empty: all).")
    series: str = Field(default="SKL", min_length=1, max_length=20,
                        description="Numbering series of the orders brought in.")
    shipping_item: str | None = Field(default=None, description="Service item the shipping "
                                      "cost is invoiced as.")
    create_customers: bool = Field(default=True, description="Create a customer not matched.")
    match_customers: Literal["nip_email", "nip", "email", "none"] = Field(
        default="nip_email", description="How a shop customer is matched to a contractor.")

    @field_validator("warehouses", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class EsklepSync(PartnerSync):
    partner = PARTNER
    settings_model = EsklepSettings

    def exports(self) -> list[Export]:
        return [Export("groups", ("product_group",), self._send_groups),
                Export("products", ("product", "product_level"), self._send_products,
                       full_entities=("product",))]

    def imports(self) -> list[Import]:
        return [Import("customers", self._fetch("/customers", "customers"),
                       self._store_customers),
                Import("orders", self._fetch("/orders", "orders",
                                             status="awaiting_confirmation"),
                       self._store_orders)]

    # -- out ---------------------------------------------------------------------------------

    def _send_groups(self, job: SyncJob, upserted: list[str], deleted: list[str],
                     key: str) -> int:
        groups: list[ProductGroup] = job.gateway.records("product_groups", upserted)
        kept = {group.code for group in groups}
        gone = [code for code in deleted if code not in kept]
        if groups:
            job.http.send("POST", "/groups", {"groups": [
                {"code": group.code, "name": group.name, "parent": group.parent}
                for group in groups]}, idempotency_key=key + "/groups")
        if gone:
            job.http.send("POST", "/groups/delete", {"codes": gone},
                          idempotency_key=key + "/delete")
        return len(groups) + len(gone)

    def _send_products(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        records = job.gateway.product_records(upserted)
        kept = {record.product.code for record in records}
        gone = [code for code in deleted if code not in kept]
        if records:
            job.http.send("POST", "/products",
                          {"products": [shop_product(job.settings, record)
                                        for record in records]},
                          idempotency_key=key + "/products")
        if gone:
            job.http.send("POST", "/products/delete", {"codes": gone},
                          idempotency_key=key + "/delete")
        return len(records) + len(gone)

    # -- in ----------------------------------------------------------------------------------

    @staticmethod
    def _fetch(path: str, answer: str, **query: str) -> Any:
        def fetch(job: SyncJob, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            params: dict[str, str | int] = {**query, "limit": min(job.connection.batch_size,
                                                                   1000)}
            if cursor:
                params["cursor"] = cursor
            page = job.http.get(path, params) or {}
            return list(page.get(answer) or []), page.get("next_cursor")
        return fetch

    def _store_customers(self, job: SyncJob, writer: ImportWriter,
                         customers: list[dict[str, Any]]) -> int:
        existing = existing_codes(job, customers)
        created = 0
        for customer in customers:
            if not customer.get("id"):
                job.warn("a customer of e-Sklep without an id was not brought in")
                continue
            code = customer_code(customer)
            if code in existing:
                continue
            found = self._contractor(job, writer, customer, existing)
            if found == code:
                created += 1
        return created

    def _store_orders(self, job: SyncJob, writer: ImportWriter,
                      orders: list[dict[str, Any]]) -> int:
        settings: EsklepSettings = job.settings
        known = writer.known("sales_orders", PARTNER, [str(order.get("id")) for order in orders])
        existing = existing_codes(job, (order.get("customer") or {} for order in orders))
        created = 0
        for order in orders:
            order_id = str(order.get("id") or "")
            if not order_id or order_id in known:
                continue
            known.add(order_id)
            try:
                lines = [order_line(line) for line in order.get("lines") or []]
                shipping = order.get("shipping") or {}
                delivery = Shipping(item=settings.shipping_item,
                                    method=str(shipping.get("method") or ""),
                                    amount=Decimal(str(shipping.get("cost") or "0")))
                if not lines:
                    raise ValueError("it has no lines")
            except (ValueError, InvalidOperation) as error:
                job.warn(f"order {order_id} of e-Sklep was not brought in: "
                         f"{one_line(error)}")
                continue
            contractor = self._contractor(job, writer, order.get("customer") or {}, existing)
            if contractor is None:
                job.warn(f"order {order_id} of e-Sklep was not brought in: its customer "
                         "matches no contractor and create_customers is off")
                continue
            day = order_day(order.get("created"), job.instant)
            sequence = writer.next_number(f"ZS/{day.year}/{settings.series}")
            writer.add("sales_orders", SalesOrder(
                number=f"ZS/{sequence}/{day.year}/{settings.series}", series=settings.series,
                partner=PARTNER, partner_order_id=order_id, contractor=contractor, date=day,
                lines=lines, shipping=delivery,
                payment_form=PAYMENT_FORMS.get(str(order.get("payment")), "transfer")))
            created += 1
        return created

    def _contractor(self, job: SyncJob, writer: ImportWriter, customer: dict[str, Any],
                    existing: set[str]) -> str | None:
        """The contractor of a shop customer: ``SKL-<id>`` if stored, else one matched
        (settings), else ``SKL-<id>`` created (if create_customers)."""
        settings: EsklepSettings = job.settings
        code = customer_code(customer) if customer.get("id") else None
        if code is not None and code in existing:
            return code
        nip = valid_nip(customer.get("nip"))
        email = valid_email(customer.get("email"))
        match = settings.match_customers
        found = writer.find_contractor(
            nip=nip if match in ("nip_email", "nip") else None,
            email=email if match in ("nip_email", "email") else None)
        if found is not None:
            job.counts["customers_matched"] += 1
            return found
        if code is None or not settings.create_customers:
            return None
        try:
            contractor = Contractor(
                code=code, name=str(customer.get("name") or "").strip() or code, nip=nip,
                email=email, phone=valid_phone(customer.get("phone")),
                address=address_text(customer.get("address")))
        except ValidationError as error:
            job.warn(f"customer {customer.get('id')} of e-Sklep was not brought in: "
                     f"{one_line(error)}")
            return None
        writer.put_contractor(contractor)
        existing.add(code)
        job.counts["customers_created"] += 1
        return code

    # -- confirmations -----------------------------------------------------------------------

    def after_imports(self, job: SyncJob) -> None:
        for order in (order for batch in changed_orders(job) for order in batch):
            assert order.partner_order_id is not None
            if order.status_reported in (CONFIRMED, CONFIRM_REFUSED):
                continue
            job.check_cancelled()
            try:
                job.http.send("POST", f"/orders/{quote(order.partner_order_id, safe='')}"
                              "/confirm", {"erp_number": order.number},
                              idempotency_key=job.key("confirm", order.partner_order_id))
            except PartnerRequestError as error:
                job.warn(f"order {order.partner_order_id} of e-Sklep was not confirmed as "
                         f"{order.number}: {one_line(error)}")
                job.gateway.update_sales_order(order.number, status_reported=CONFIRM_REFUSED)
                job.counts["confirmations_refused"] += 1
                continue
            job.gateway.update_sales_order(order.number, status_reported=CONFIRMED)
            job.counts["orders_confirmed"] += 1


def shop_product(settings: EsklepSettings, record: ProductRecord) -> dict[str, Any]:
    """A product as ``POST /products`` takes it."""
    product = record.product
    net = record.net_price(settings.price_type)
    return {"code": product.code, "name": product.name, "group": product.group,
            "unit": product.unit, "vat_rate": product.vat_rate, "net_price": money_text(net),
            "price": gross(net, product.vat_rate),
            "stock": quantity_text(record.stock_in(settings.warehouses)),
            "attributes": dict(product.attributes), "ean": product.ean}


def customer_code(customer: dict[str, Any]) -> str:
    return CUSTOMER_PREFIX + re.sub(r"[^0-9A-Za-z_.-]+", "-", str(customer["id"]))[:50]


def existing_codes(job: SyncJob, customers: Iterable[dict[str, Any]]) -> set[str]:
    """Which customers' ``SKL-<id>`` contractors exist (read before the page's writes)."""
    codes = [customer_code(customer) for customer in customers if customer.get("id")]
    return {contractor.code for contractor in job.gateway.contractors_of(codes)} \
        if codes else set()


def order_line(line: dict[str, Any]) -> OrderLine:
    return OrderLine(product=str(line.get("code") or ""),
                     quantity=Decimal(str(line.get("quantity") or "1")),
                     unit_price=Decimal(str(line.get("price") or "0")),
                     vat_rate=str(line.get("vat_rate") or "23"))  # type: ignore[arg-type]


def order_day(value: Any, default: datetime) -> date:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).date()
        except ValueError:
            pass
    return default.date()


def valid_nip(value: Any) -> str | None:
    if not value:
        return None
    try:
        return normal_nip(str(value))
    except ValueError:
        return None


def valid_email(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if EMAIL.match(text) and len(text) <= 254 else None


def valid_phone(value: Any) -> str | None:
    if not value:
        return None
    try:
        return normal_phone(str(value))
    except ValueError:
        return None


def address_text(address: Any) -> str:
    """A partner's address object (street, postal_code, city) as one line."""
    if isinstance(address, str):
        return address.strip()
    if not isinstance(address, dict):
        return ""
    town = " ".join(str(address.get(part) or "") for part in ("postal_code", "city")).strip()
    return ", ".join(part for part in (str(address.get("street") or "").strip(), town) if part)


def one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error).splitlines()[0] if str(error) else type(error).__name__
