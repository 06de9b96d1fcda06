"""``sync_wszystkopl``: offers out to the wszystko.pl marketplace, orders in as customer
orders, their status and tracking numbers back (contract: docs/partners/wszystkopl.md).

- Offers: a product's own changes (name, VAT, unit) upsert its offer (``POST
  /me/offers``); changes of its stock or prices only go through the bulk ``PUT
  /me/update-offers`` (an offer the marketplace lacks is then created); a deleted product
  ends its offer. The price is the gross price of the chosen price type; the quantity
  is the stock summed over the chosen warehouses (all when none is chosen).
- Orders (``GET /me/sales``) become customer orders in the chosen series, numbered
  ``ZS/N/YEAR/SERIES``; the buyer is matched by NIP and e-mail, else created (settings);
  shipping becomes a line of the chosen service item; payment forms are mapped.
- An order's status and tracking numbers set in the ERP are reported back once each.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, ValidationError

from engine.erp.document import Contractor
from engine.erp.sync import ImportWriter, ProductRecord
from engine.erp.trade import OrderLine, SalesOrder, Shipping
from engine.operations.sync.core import (
    Export,
    Import,
    PartnerSettings,
    PartnerSync,
    SyncJob,
    changed_orders,
)
from engine.operations.sync.mapping import (
    address_text,
    gross,
    page_fetcher,
    partner_day,
    quantity_text,
    valid_nip,
)

PARTNER: Literal["wszystkopl"] = "wszystkopl"
PaymentForm = Literal["transfer", "cash", "card", "online"]
DEFAULT_PAYMENTS: dict[str, PaymentForm] = {"paid": "transfer", "cash_on_delivery": "cash"}


class WszystkoplSettings(PartnerSettings):
    warehouses: list[str] = Field(default_factory=list,
                                  description="Warehouse codes whose stock is summed (empty: all).")
    price_type: str | None = Field(default=None, description="Price type of the offers' "
                                   "price (default: the product's own net price).")
    series: str = Field(default="WSZ", min_length=1, max_length=20,
                        description="Numbering series of the orders brought in.")
    shipping_item: str | None = Field(default=None, description="Service item the shipping "
                                      "cost is invoiced as.")
    create_customers: bool = Field(default=True, description="Create a buyer not matched.")
    match_customers: Literal["nip_email", "nip", "email", "none"] = "nip_email"
    payment_forms: dict[str, PaymentForm] = Field(
        default_factory=dict, description="Marketplace payment (paid, cash_on_delivery, or a "
        "payment type) to ERP form; defaults: paid -> transfer, cash_on_delivery -> cash.")




class WszystkoplSync(PartnerSync):
    partner = PARTNER
    settings_model = WszystkoplSettings

    def exports(self) -> list[Export]:
        return [Export("offers", ("product",), self._send_offers),
                Export("offer_levels", ("product_stock", "product_price"), self._send_levels,
                       full_entities=())]

    def imports(self) -> list[Import]:
        return [Import("sales", page_fetcher("/me/sales", "sales", next_key="nextCursor"),
                       self._store_sales)]

    # -- login -------------------------------------------------------------------------------

    def auth_headers(self, job: SyncJob) -> dict[str, str]:
        tokens = job.connection.tokens or {}
        token = tokens.get("accessToken")
        if not token:
            raise_not_logged_in()
        return {"Authorization": f"Bearer {token}"}

    def on_unauthorized(self, job: SyncJob) -> None:
        """Refresh the tokens with the refresh token and keep the new pair."""
        tokens = job.connection.tokens or {}
        refresh = tokens.get("refreshToken")
        if not refresh:
            raise_not_logged_in()
        fresh = job.http.get("/integration/refresh", {"refreshToken": str(refresh)})
        job.gateway.save_tokens(self.partner, fresh)
        job.connection = job.gateway.connection(self.partner) or job.connection

    # -- offers ------------------------------------------------------------------------------

    def _offer(self, job: SyncJob, record: ProductRecord) -> dict[str, Any]:
        settings: WszystkoplSettings = job.settings
        product = record.product
        return {"externalId": product.code, "title": product.name,
                "price": gross(record.net_price(settings.price_type), product.vat_rate),
                "vatRate": product.vat_rate,
                "quantity": quantity_text(record.stock_in(settings.warehouses)),
                "unit": product.unit}

    def _send_offers(self, job: SyncJob, upserted: list[str], deleted: list[str],
                     key: str) -> int:
        sent = 0
        records = job.gateway.product_records(upserted)
        if records:
            job.http.send("POST", "/me/offers",
                          {"offers": [self._offer(job, record) for record in records]},
                          idempotency_key=key + "/offers")
            sent += len(records)
        if deleted:
            job.http.send("POST", "/me/offers/end", {"externalIds": deleted},
                          idempotency_key=key + "/end")
            sent += len(deleted)
        return sent

    def _send_levels(self, job: SyncJob, upserted: list[str], deleted: list[str],
                     key: str) -> int:
        records = job.gateway.product_records(upserted)
        if not records:
            return 0
        settings: WszystkoplSettings = job.settings
        answer = job.http.send("PUT", "/me/update-offers", {"offers": [
            {"externalId": record.product.code,
             "price": gross(record.net_price(settings.price_type), record.product.vat_rate),
             "quantity": quantity_text(record.stock_in(settings.warehouses))}
            for record in records]}, idempotency_key=key + "/levels")
        missing = set((answer or {}).get("missing") or ())
        if missing:
            job.http.send("POST", "/me/offers", {"offers": [
                self._offer(job, record) for record in records
                if record.product.code in missing]}, idempotency_key=key + "/missing")
        return len(records)

    # -- orders ------------------------------------------------------------------------------

    def _store_sales(self, job: SyncJob, writer: ImportWriter,
                     sales: list[dict[str, Any]]) -> int:
        settings: WszystkoplSettings = job.settings
        known = writer.known("sales_orders", PARTNER, [str(sale["id"]) for sale in sales])
        created = 0
        for sale in sales:
            if str(sale["id"]) in known:
                continue
            known.add(str(sale["id"]))
            try:  # checked whole before a number is taken: numbering stays gap-free
                order = self._order(job, sale)
            except (ValidationError, InvalidOperation, ValueError, TypeError):
                job.warn(f"order {str(sale['id'])[:60]} of wszystko.pl was not brought in: "
                         "its items, prices or shipping are not valid")
                continue
            contractor = self._buyer(job, writer, sale.get("buyer") or {})
            if contractor is None:
                job.warn(f"order {sale['id']} of wszystko.pl was not brought in: its buyer "
                         "matches no contractor and create_customers is off")
                continue
            sequence = writer.next_number(f"ZS/{order.date.year}/{settings.series}")
            writer.add("sales_orders", order.model_copy(update={
                "number": f"ZS/{sequence}/{order.date.year}/{settings.series}",
                "contractor": contractor}))
            created += 1
        return created

    def _order(self, job: SyncJob, sale: dict[str, Any]) -> SalesOrder:
        """The sale as a customer order, without its number and contractor yet.

        :raises ValidationError: (or ValueError) for items or amounts that are not valid.
        """
        settings: WszystkoplSettings = job.settings
        shipping = sale.get("shipping") or {}
        return SalesOrder(
            number="?", series=settings.series, partner=PARTNER,
            partner_order_id=str(sale["id"]), contractor="?",
            date=partner_day(sale.get("createdAt"), job.instant.date()),
            lines=[_line(item) for item in sale.get("items") or []],
            shipping=Shipping(item=settings.shipping_item,
                              method=str(shipping.get("method") or ""),
                              amount=Decimal(str(shipping.get("cost") or "0"))),
            payment_form=_payment_form(settings, sale.get("payment") or {}),
            status_reported="new")

    def _buyer(self, job: SyncJob, writer: ImportWriter, buyer: dict[str, Any]) -> str | None:
        settings: WszystkoplSettings = job.settings
        nip = valid_nip(buyer.get("nip"))
        email = buyer.get("email") or None
        match = settings.match_customers
        found = writer.find_contractor(
            nip=nip if match in ("nip_email", "nip") else None,
            email=email if match in ("nip_email", "email") else None)
        if found is not None or not settings.create_customers:
            return found
        login = str(buyer.get("login") or email or "klient")
        code = "WSZ-" + re.sub(r"[^0-9A-Za-z_.-]+", "-", login)[:50]
        address = buyer.get("address") or {}
        writer.put_contractor(Contractor.model_construct(
            code=code, name=str(buyer.get("companyName") or buyer.get("name") or login),
            nip=nip, email=email, phone=None,
            address=address_text(address),
            dunning_scheme=None, sales_blocked=False))
        job.counts["customers_created"] += 1
        return code

    # -- status back -------------------------------------------------------------------------

    def after_imports(self, job: SyncJob) -> None:
        for order in (order for batch in changed_orders(job) for order in batch):
            assert order.partner_order_id is not None
            if order.status != order.status_reported:
                job.http.send("PUT", "/me/sales/updateStatus",
                              {"sales": [{"id": order.partner_order_id, "status": order.status}]},
                              idempotency_key=job.key("status", order.number, order.status))
                job.gateway.update_sales_order(order.number, status_reported=order.status)
                job.counts["statuses_reported"] += 1
            if order.tracking_numbers and order.tracking_reported != order.tracking_numbers:
                job.http.send("PUT", f"/me/sales/{order.partner_order_id}/trackingNumbers",
                              {"trackingNumbers": order.tracking_numbers},
                              idempotency_key=job.key("tracking", order.number,
                                                      ",".join(order.tracking_numbers)))
                job.gateway.update_sales_order(order.number,
                                               tracking_reported=order.tracking_numbers)
                job.counts["tracking_reported"] += 1


def raise_not_logged_in() -> None:
    from engine.operations.sync.core import PartnerNotConfiguredError

    raise PartnerNotConfiguredError(
        "wszystko.pl is not logged in for this company; run soa sync login COMPANY "
        "wszystkopl first")


def _line(item: dict[str, Any]) -> OrderLine:
    return OrderLine(product=str(item.get("offerExternalId") or item.get("title") or "?"),
                     quantity=Decimal(str(item.get("quantity") or "1")),
                     unit_price=Decimal(str(item.get("price") or "0")),
                     vat_rate=str(item.get("vatRate") or "23"))  # type: ignore[arg-type]


def _payment_form(settings: WszystkoplSettings, payment: dict[str, Any]) -> PaymentForm:
    mapping = {**DEFAULT_PAYMENTS, **settings.payment_forms}
    kind = str(payment.get("type") or "")
    if kind in mapping:
        return mapping[kind]
    if kind == "cash_on_delivery":
        return mapping["cash_on_delivery"]
    return mapping["paid"] if payment.get("paid") else mapping.get(kind, "transfer")
