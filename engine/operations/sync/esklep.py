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

from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from engine.adapters.partners.http import PartnerRequestError
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
from engine.operations.sync.mapping import (
    CustomerIntake,
    gross,
    one_line,
    page_fetcher,
    partner_day,
    quantity_text,
)

PARTNER: Literal["esklep"] = "esklep"
CUSTOMER_PREFIX = "SKL-"
CONFIRMED = "confirmed"
CONFIRM_REFUSED = "confirm_refused"
"""``status_reported`` of an order the shop refused to confirm (404, 409): not tried again."""
PaymentForm = Literal["transfer", "cash", "card", "online"]
PAYMENT_FORMS: dict[str, PaymentForm] = {
    "transfer": "transfer", "cash_on_delivery": "cash", "online": "online", "card": "card"}


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



class EsklepSync(PartnerSync):
    partner = PARTNER
    settings_model = EsklepSettings

    def exports(self) -> list[Export]:
        return [Export("groups", ("product_group",), self._send_groups),
                Export("products", ("product", "product_stock", "product_price"),
                       self._send_products,
                       full_entities=("product",))]

    def imports(self) -> list[Import]:
        return [Import("customers", page_fetcher("/customers", "customers"),
                       self._store_customers),
                Import("orders", page_fetcher("/orders", "orders",
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

    def _store_customers(self, job: SyncJob, writer: ImportWriter,
                         customers: list[dict[str, Any]]) -> int:
        return self._intake(job, writer).bring_in(customers)

    @staticmethod
    def _intake(job: SyncJob, writer: ImportWriter) -> CustomerIntake:
        settings: EsklepSettings = job.settings
        match = settings.match_customers
        return CustomerIntake(job, writer, CUSTOMER_PREFIX, "e-Sklep",
                              create=settings.create_customers,
                              match_nip=match in ("nip_email", "nip"),
                              match_email=match in ("nip_email", "email"))

    def _store_orders(self, job: SyncJob, writer: ImportWriter,
                      orders: list[dict[str, Any]]) -> int:
        settings: EsklepSettings = job.settings
        known = writer.known("sales_orders", PARTNER, [str(order.get("id")) for order in orders])
        intake = self._intake(job, writer)
        intake.read_existing(order.get("customer") or {} for order in orders)
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
            contractor = intake.contractor_of(order.get("customer") or {})
            if contractor is None:
                job.warn(f"order {order_id} of e-Sklep was not brought in: its customer "
                         "matches no contractor and create_customers is off")
                continue
            day = partner_day(order.get("created"), job.instant.date())
            sequence = writer.next_number(f"ZS/{day.year}/{settings.series}")
            writer.add("sales_orders", SalesOrder(
                number=f"ZS/{sequence}/{day.year}/{settings.series}", series=settings.series,
                partner=PARTNER, partner_order_id=order_id, contractor=contractor, date=day,
                lines=lines, shipping=delivery,
                payment_form=PAYMENT_FORMS.get(str(order.get("payment")), "transfer")))
            created += 1
        return created

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


def order_line(line: dict[str, Any]) -> OrderLine:
    return OrderLine(product=str(line.get("code") or ""),
                     quantity=Decimal(str(line.get("quantity") or "1")),
                     unit_price=Decimal(str(line.get("price") or "0")),
                     vat_rate=str(line.get("vat_rate") or "23"))  # type: ignore[arg-type]
