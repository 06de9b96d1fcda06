"""What the partner adapters share to map data between the ERP and a partner: amounts
and quantities as partners take them, pages fetched after a cursor, the checks of a
partner's customer data, and bringing a partner's customer in as a contractor."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from engine.erp.document import Contractor, normal_nip, normal_phone
from engine.erp.money import VatRate, money_text, to_grosz, vat_fraction
from engine.erp.sync import ImportWriter
from engine.operations.sync.core import SyncJob

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PAGE = 1000
"""The largest page a partner serves (docs/partners/README.md)."""

Fetch = Callable[[SyncJob, str | None], tuple[list[dict[str, Any]], str | None]]


def gross(net: Decimal, rate: str) -> str:
    """The gross amount of ``net`` at VAT ``rate``, rounded half up to the grosz."""
    vat: VatRate = rate  # type: ignore[assignment]
    return money_text(to_grosz(net * (1 + vat_fraction(vat))))


def quantity_text(value: Decimal) -> str:
    """A stock quantity as partners take it: plain digits, never below zero."""
    return format(max(value, Decimal(0)).normalize(), "f")


def page_fetcher(path: str, answer: str, *, next_key: str = "next_cursor",
                 **query: str) -> Fetch:
    """An import's fetch: ``GET path?cursor=&limit=`` (the batch size, at most
    :data:`MAX_PAGE`), the items under ``answer`` and the cursor under ``next_key``."""

    def fetch(job: SyncJob, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, str | int] = {**query,
                                        "limit": min(job.connection.batch_size, MAX_PAGE)}
        if cursor:
            params["cursor"] = cursor
        page = job.http.get(path, params) or {}
        return list(page.get(answer) or []), page.get(next_key)

    return fetch


def valid_nip(value: Any) -> str | None:
    """``value`` as ten digits if it is a valid NIP, else None."""
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
    """``value`` in E.164 form if it is a phone number, else None."""
    if not value:
        return None
    try:
        return normal_phone(str(value))
    except ValueError:
        return None


def address_text(address: Any) -> str:
    """A partner's address (text, or an object of street, postal code and city, in
    snake_case or camelCase) as one line."""
    if isinstance(address, str):
        return address.strip()
    if not isinstance(address, dict):
        return ""
    postal = address.get("postal_code") or address.get("postalCode")
    town = " ".join(str(part or "").strip() for part in (postal, address.get("city"))).strip()
    return ", ".join(part for part in (str(address.get("street") or "").strip(), town) if part)


def partner_day(value: Any, default: date) -> date:
    """The day of a partner's ISO date or time, ``default`` when there is none."""
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).date()
        except ValueError:
            pass
    return default


def one_line(error: Exception) -> str:
    """An error as one line of a warning (a validation error: its first field)."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def prefixed_code(prefix: str, partner_id: Any, length: int = 50) -> str:
    """The contractor code of a partner's customer: ``prefix`` and its id, made safe."""
    return prefix + re.sub(r"[^0-9A-Za-z_.-]+", "-", str(partner_id))[:length]


@dataclass
class CustomerIntake:
    """Brings a partner's customers in as contractors coded ``PREFIX<id>``: one stored
    under that code is used; else one matched by NIP, then e-mail (as allowed); else a
    new one (if ``create``). Counts ``customers_matched`` and ``customers_created``."""

    job: SyncJob
    writer: ImportWriter
    prefix: str
    source: str
    """How warnings name the partner, such as "e-Sklep"."""
    create: bool = True
    match_nip: bool = True
    match_email: bool = True
    existing: set[str] | None = None

    def read_existing(self, customers: Iterable[dict[str, Any]]) -> None:
        """Note which customers' codes are stored (before the page's writes)."""
        codes = [prefixed_code(self.prefix, customer["id"]) for customer in customers
                 if customer.get("id")]
        self.existing = {contractor.code
                         for contractor in self.job.gateway.contractors_of(codes)} \
            if codes else set()

    def bring_in(self, customers: list[dict[str, Any]]) -> int:
        """Bring a page of the partner's customers in; return how many were created. A
        customer without an id is warned about; one whose code is stored is skipped."""
        self.read_existing(customers)
        created = 0
        for customer in customers:
            if not customer.get("id"):
                self.job.warn(f"a customer of {self.source} without an id was not brought in")
                continue
            code = prefixed_code(self.prefix, customer["id"])
            if self.existing is not None and code in self.existing:
                continue
            if self.contractor_of(customer) == code:
                created += 1
        return created

    def contractor_of(self, customer: dict[str, Any]) -> str | None:
        """The contractor code of ``customer``; None (with a warning for bad data) if it
        matches none and cannot or may not be created."""
        existing = self.existing if self.existing is not None else set()
        code = prefixed_code(self.prefix, customer["id"]) if customer.get("id") else None
        if code is not None and code in existing:
            return code
        nip = valid_nip(customer.get("nip"))
        email = valid_email(customer.get("email"))
        found = self.writer.find_contractor(nip=nip if self.match_nip else None,
                                            email=email if self.match_email else None)
        if found is not None:
            self.job.counts["customers_matched"] += 1
            return found
        if code is None or not self.create:
            return None
        try:
            contractor = Contractor(
                code=code, name=str(customer.get("name") or "").strip() or code, nip=nip,
                email=email, phone=valid_phone(customer.get("phone")),
                address=address_text(customer.get("address")))
        except ValidationError as error:
            self.job.warn(f"customer {customer.get('id')} of {self.source} was not brought "
                          f"in: {one_line(error)}")
            return None
        self.writer.put_contractor(contractor)
        existing.add(code)
        self.existing = existing
        self.job.counts["customers_created"] += 1
        return code
