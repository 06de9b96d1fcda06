"""The company data the partner synchronisations exchange: warehouses and stock, price
types and prices, product groups, customer orders, retail documents, cash entries,
payments, employees, and each partner's connection settings.

These entries are keys of the same company data document as the rest
(:class:`engine.erp.document.ErpDocument`); docs/erp-data.md describes them. Every entry
that a partner sends in carries ``partner`` and ``partner_id``: one entry per pair, so a
repeated import creates nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from engine.erp.fields import Code, Currency, Entry, Money, Signed
from engine.erp.money import VatRate

PARTNERS = ("wszystkopl", "esklep", "detal", "mobile", "xl", "hrm", "apfino")
"""The partners, named as their task kinds without ``sync_``."""
PartnerName = Literal[
    "wszystkopl", "esklep", "detal", "mobile", "xl", "hrm", "apfino"]
ENTITIES = ("product", "product_stock", "product_price", "product_group", "contractor",
            "employee",
            "receivable", "invoice", "payment", "cash_entry", "retail_document", "sales_order")
"""What the change log follows: ``product`` is a product's own data (name, VAT, group,
...), ``product_stock`` and ``product_price`` its stock and its prices (a change of
either is keyed by the product's code)."""

__all__ = [
    "ENTITIES", "PARTNERS", "Absence", "CashEntry", "Contract", "Deletion", "Employee",
    "OrderLine", "Partner", "PartnerName", "Payment", "PaymentLink", "Price", "PriceType",
    "ProductGroup", "RetailDocument", "SalesOrder", "Shipping", "StockLevel", "Warehouse",
]


class Warehouse(Entry):
    code: Code
    name: str = Field(min_length=1)


class StockLevel(Entry):
    product: Code
    warehouse: Code
    quantity: Signed = Field(description="On hand; never written below zero by an import.")


class PriceType(Entry):
    code: Code
    name: str = Field(min_length=1)


class Price(Entry):
    product: Code
    price_type: Code
    net_price: Money


class ProductGroup(Entry):
    code: Code
    name: str = Field(min_length=1)
    parent: Code | None = None


class Contract(Entry):
    id: Code
    kind: Literal["employment", "mandate", "specific_task", "b2b"] = "employment"
    start: date
    end: date | None = None
    position: str = ""
    salary: Money | None = None


class Absence(Entry):
    id: Code
    kind: Literal["leave", "sick", "unpaid", "other"] = "leave"
    start: date
    end: date
    planned: bool = Field(default=False, description="Planned leave (from HRM).")

    @model_validator(mode="after")
    def _dates(self) -> Absence:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Employee(Entry):
    code: Code
    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    email: str | None = None
    phone: str | None = None
    department: str = ""
    contracts: list[Contract] = []
    absences: list[Absence] = []


class OrderLine(Entry):
    product: Code
    quantity: Signed
    unit_price: Money = Field(description="Gross unit price.")
    vat_rate: VatRate


class Shipping(Entry):
    item: Code | None = Field(default=None, description="The service item it is invoiced as.")
    method: str = ""
    amount: Money = Decimal("0.00")


class SalesOrder(Entry):
    """A customer order (a reservation of stock), numbered in a series: ``ZS/7/2026/WSZ``."""

    number: str = Field(min_length=1)
    series: Code
    partner: PartnerName | None = None
    partner_order_id: str | None = None
    contractor: Code
    date: date
    lines: list[OrderLine] = Field(min_length=1)
    shipping: Shipping | None = None
    payment_form: Literal["transfer", "cash", "card", "online"] = "transfer"
    status: Literal["new", "accepted", "sent", "cancelled", "done"] = "new"
    tracking_numbers: list[str] = []
    warehouse: Code | None = None
    status_reported: str | None = Field(
        default=None, description="The status last reported to the partner (by the engine).")
    tracking_reported: list[str] = Field(
        default=[], description="The tracking numbers last reported (by the engine).")

    @model_validator(mode="after")
    def _partner(self) -> SalesOrder:
        if (self.partner is None) != (self.partner_order_id is None):
            raise ValueError("partner and partner_order_id go together")
        return self


class RetailDocument(Entry):
    """A receipt, an invoice made from a receipt, or a correction, from a till."""

    number: str = Field(min_length=1)
    type: Literal["receipt", "invoice", "correction"]
    partner: PartnerName | None = None
    partner_id: str | None = None
    date: date
    warehouse: Code | None = None
    contractor: Code | None = None
    lines: list[OrderLine] = Field(min_length=1)
    payment_form: Literal["cash", "card", "transfer"] = "cash"
    from_receipt: str | None = Field(default=None, description="The receipt's number.")
    corrects: str | None = Field(default=None, description="The corrected document's number.")


class CashEntry(Entry):
    id: Code
    partner: PartnerName | None = None
    partner_id: str | None = None
    date: date
    kind: Literal["KP", "KW"] = Field(description="KP: cash in; KW: cash out.")
    amount: Money
    description: str = ""
    cash_register: str = Field(default="", description="The till or cash register.")


class Payment(Entry):
    id: Code
    partner: PartnerName | None = None
    partner_id: str | None = None
    contractor: Code | None = None
    document: str | None = Field(default=None, description="The invoice or receivable paid.")
    date: date
    amount: Money
    currency: Currency = "PLN"
    form: Literal["cash", "card", "transfer"] = "transfer"


class PaymentLink(Entry):
    """A payment link a partner (Apfino) made for an invoice."""

    invoice: str = Field(min_length=1)
    partner: PartnerName = "apfino"
    url: str = Field(pattern=r"^https?://\S+$")
    expires_at: str | None = None


class Partner(Entry):
    """How the company reaches one partner (``soa sync configure`` writes it too)."""

    partner: PartnerName
    url: str = Field(pattern=r"^https?://\S+$")
    credential: SecretStr | None = Field(
        default=None, description="API key or token: stored encrypted, never exported; null "
        "keeps the stored one.")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="The partner's own keys (docs/partners/).")
    batch_size: int = Field(default=500, ge=1, le=5000)
    rate_limit: float | None = Field(default=None, gt=0, le=10_000,
                                     description="Requests per second; null: no limit.")


class Deletion(Entry):
    """Deletes an entry (a partner is told at its next synchronisation)."""

    entity: Literal["products", "contractors", "product_groups", "employees", "prices",
                    "stock", "warehouses", "price_types", "payments", "cash_entries"]
    code: str = Field(min_length=1, description="Its code; prices and stock: PRODUCT|TYPE "
                      "and PRODUCT|WAREHOUSE.")
