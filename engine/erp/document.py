"""The company data document: what ``soa erp load`` takes and ``soa erp export`` gives.

One JSON document, validated by pydantic; every list is upserted by its code (or id).
Money is ``Decimal``, written in JSON as a string with two decimals. Secrets (mail
passwords, the SMS token) are accepted on load and never exported: an absent or null
secret keeps the one stored. The field-by-field description is docs/erp-data.md.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from engine.erp.fields import (
    WARSAW,
    AwareDatetime,
    Code,
    Currency,
    Email,
    Entry,
    Money,
    Nip,
    Phone,
    Quantity,
    normal_nip,
    normal_phone,
    polish_time,
)
from engine.erp.money import VatRate
from engine.erp.placeholders import check_template
from engine.erp.trade import (
    CashEntry,
    Deletion,
    Employee,
    Partner,
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

__all__ = [
    "WARSAW", "AwareDatetime", "Code", "Currency", "Email", "Entry", "Money", "Nip", "Phone",
    "Quantity", "normal_nip", "normal_phone", "polish_time",
]

class Seller(Entry):
    name: str = Field(min_length=1)
    nip: Nip
    address: str = ""
    bank_account: str = ""
    email: Email | None = None
    phone: str | None = None


class EmailAccount(Entry):
    code: Code
    address: Email
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="Stored encrypted, never exported; null keeps the stored one."
    )


class SmsGatewayAccount(Entry):
    url: str = Field(pattern=r"^https?://\S+$")
    token: SecretStr | None = Field(
        default=None, description="Stored encrypted, never exported; null keeps the stored one."
    )
    sender: str = Field(min_length=1, max_length=11)


class Operator(Entry):
    code: Code
    name: str = Field(min_length=1)
    email_account: Code | None = None
    email: Email | None = None
    phone: Phone | None = None


class Contractor(Entry):
    code: Code
    name: str = Field(min_length=1)
    nip: Nip | None = Field(default=None, description="Optional for persons.")
    email: Email | None = None
    phone: Phone | None = None
    address: str = ""
    dunning_scheme: Code | None = None
    sales_blocked: bool = False
    country: str = Field(default="PL", pattern=r"^[A-Z]{2}$",
                         description="ISO 3166 code of the contractor's country.")
    vat_id: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z]{2,20}$",
        description="A foreign contractor's VAT or tax number, without a country prefix.")


class Product(Entry):
    code: Code
    name: str = Field(min_length=1)
    unit: str = Field(default="szt.", min_length=1)
    net_price: Money
    vat_rate: VatRate
    group: Code | None = Field(default=None, description="A product group's code.")
    ean: str | None = Field(default=None, pattern=r"^[0-9]{8,14}$")
    attributes: dict[str, str] = Field(default_factory=dict,
                                       description="Name to value, shown by shops.")


class Template(Entry):
    code: Code
    channel: Literal["email", "sms"]
    subject: str = ""
    body: str

    @field_validator("subject", "body")
    @classmethod
    def _placeholders(cls, text: str) -> str:
        check_template(text)
        return text


class InvoiceLineTemplate(Entry):
    product: Code
    quantity: Quantity
    net_price: Money | None = Field(default=None, description="Default: the product's price.")


class RecurringInvoice(Entry):
    code: Code
    name: str = Field(min_length=1)
    type: Literal["FA", "FPF"] = "FA"
    contractor: Code
    currency: Currency = "PLN"
    lines: list[InvoiceLineTemplate] = Field(min_length=1)
    every: int = Field(default=1, ge=1, le=1000)
    unit: Literal["day", "week", "month"] = "month"
    day_of_month: int | Literal["last"] | None = Field(
        default=None, description="1-31 or last (monthly only; default: the start's day)."
    )
    start: date
    end: date | None = None
    payment_days: int = Field(default=14, ge=0, le=365)
    mode: Literal["draft", "issue", "issue_and_send"] = "draft"
    operator: Code | None = None
    active: bool = True

    @field_validator("day_of_month")
    @classmethod
    def _day(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 31:
            raise ValueError("must be 1 to 31 or \"last\"")
        return value

    @model_validator(mode="after")
    def _dates(self) -> RecurringInvoice:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.day_of_month is not None and self.unit != "month":
            raise ValueError("day_of_month applies only to unit \"month\"")
        return self


class Receivable(Entry):
    id: Code
    contractor: Code
    document: str = Field(min_length=1)
    issue_date: date
    due_date: date
    amount: Money
    remaining: Money
    currency: Currency = "PLN"

    @model_validator(mode="after")
    def _remaining(self) -> Receivable:
        if self.remaining > self.amount:
            raise ValueError(f"remaining {self.remaining} is more than amount {self.amount}")
        return self


StageAction = Literal["email", "sms", "crm_task", "payment_reminder", "sales_block"]


class DunningStage(Entry):
    days: int = Field(ge=-365, le=3650, description="Days from the due date; negative before.")
    action: StageAction
    template: Code | None = None

    @model_validator(mode="after")
    def _template(self) -> DunningStage:
        if self.action in ("email", "sms", "payment_reminder") and self.template is None:
            raise ValueError(f"a stage with action {self.action!r} needs a template")
        return self


class DunningScheme(Entry):
    code: Code
    name: str = Field(min_length=1)
    default: bool = False
    skip_up_to: Money = Decimal("0.00")
    stages: list[DunningStage] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _ordered(cls, stages: list[DunningStage]) -> list[DunningStage]:
        days = [stage.days for stage in stages]
        if days != sorted(set(days)):
            raise ValueError("stages must be in increasing order of days, each day once")
        return stages


class Reminder(Entry):
    minutes_before: int = Field(default=15, ge=0, le=60 * 24 * 60)
    to: Literal["client", "operator", "employee"] = "client"
    channel: Literal["sms", "email"] = "sms"
    template: Code | None = None
    phone: Phone | None = Field(default=None, description="Overrides the recipient's phone.")
    email: Email | None = Field(default=None, description="Overrides the recipient's e-mail.")


class CrmTask(Entry):
    id: Code
    title: str = Field(min_length=1)
    start: AwareDatetime
    contractor: Code | None = None
    operator: Code | None = None
    employee: str | None = Field(default=None, description="The employee's name.")
    reminder: Reminder | None = None


class ServiceOrderTemplate(Entry):
    code: Code
    contractor: Code
    description: str = ""
    every_months: int = Field(default=1, ge=1, le=255)
    start: date
    remind_days_before: int = Field(default=0, ge=0, le=365)
    next_date: date | None = Field(default=None, description="Default: start.")
    notify_email: bool = False
    notify_sms: bool = False
    template: Code | None = None
    active: bool = True

    @model_validator(mode="after")
    def _notice(self) -> ServiceOrderTemplate:
        if (self.notify_email or self.notify_sms) and self.template is None:
            raise ValueError("a notice by e-mail or SMS needs a template")
        return self


class ErpDocument(Entry):
    """A company's data as one document; every key is optional on load."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"title": "SOA Engine company data"}
    )

    seller: Seller | None = None
    email_accounts: list[EmailAccount] = []
    sms_gateway: SmsGatewayAccount | None = None
    operators: list[Operator] = []
    contractors: list[Contractor] = []
    products: list[Product] = []
    templates: list[Template] = []
    recurring_invoices: list[RecurringInvoice] = []
    receivables: list[Receivable] = []
    dunning_schemes: list[DunningScheme] = []
    crm_tasks: list[CrmTask] = []
    service_order_templates: list[ServiceOrderTemplate] = []
    warehouses: list[Warehouse] = []
    stock: list[StockLevel] = []
    price_types: list[PriceType] = []
    prices: list[Price] = []
    product_groups: list[ProductGroup] = []
    employees: list[Employee] = []
    sales_orders: list[SalesOrder] = []
    retail_documents: list[RetailDocument] = []
    cash_entries: list[CashEntry] = []
    payments: list[Payment] = []
    payment_links: list[PaymentLink] = []
    partners: list[Partner] = []
    deletions: list[Deletion] = Field(default=[], description="Entries to delete (on load "
                                      "only; never exported).")


def json_path(location: tuple[Any, ...]) -> str:
    """A pydantic error location as a JSON path: ``contractors[2].nip``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "$"
