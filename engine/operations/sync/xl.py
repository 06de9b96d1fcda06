"""``sync_xl``: the branch installation of ERP XL: the branch's sales documents, cash
entries and payments out to headquarters; headquarters' products, customers and price
lists in (contract: docs/partners/xl.md).

- Documents (``POST /branch/documents``, by number): the company's issued invoices
  (entity ``invoice``; drafts and pro formas are not sales documents and stay home) and
  its retail documents (entity ``retail_document``: receipts, invoices from receipts,
  corrections), each with its net, VAT and gross and ``kind`` ``"sales"``. The data model
  has no purchase documents, so none are sent.
- Cash entries (``POST /branch/cash``) and payments (``POST /branch/payments``), by id.
- Headquarters takes no deletions: a document, cash entry or payment deleted in the
  branch is counted (``deletions_not_sent``) and warned about, to be corrected at
  headquarters.
- Products (``GET /hq/products``), customers (``GET /hq/customers``) and prices (``GET
  /hq/price-lists``) are written by their codes (the branch's own group, EAN, attributes,
  dunning scheme and sales block stay); an item with ``"deleted": true`` removes the
  entry; of several items of one key in a page only the last counts. An item equal to
  what is stored changes nothing, so a page fetched again creates nothing; ``received``
  counts the items that changed something.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, ValidationError

from engine.erp.document import Contractor, Product
from engine.erp.model import Invoice
from engine.erp.money import VatRate, money_text, to_grosz, vat_fraction
from engine.erp.sync import ImportWriter, ProductData
from engine.erp.trade import CashEntry, Payment, PriceType, RetailDocument
from engine.operations.sync.core import Export, Import, PartnerSettings, PartnerSync, SyncJob
from engine.operations.sync.mapping import address_text, page_fetcher

PARTNER: Literal["xl"] = "xl"


class XlSettings(PartnerSettings):
    documents_from: date | None = Field(
        default=None, description="Documents, cash entries and payments dated before this "
        "day are not sent (default: all).")
    retail_documents: bool = Field(default=True, description="Send the retail documents "
                                   "(receipts, invoices from receipts, corrections) too.")
    price_types: list[str] = Field(default_factory=list, description="Price types brought "
                                   "in from headquarters' price lists (empty: all).")
    apply_deletions: bool = Field(default=True, description="Delete the products and "
                                  "customers headquarters deletes.")



class XlSync(PartnerSync):
    partner = PARTNER
    settings_model = XlSettings

    def exports(self) -> list[Export]:
        return [Export("invoices", ("invoice",), self._send_invoices),
                Export("retail_documents", ("retail_document",), self._send_retail),
                Export("cash", ("cash_entry",), self._send_cash),
                Export("payments", ("payment",), self._send_payments)]

    def imports(self) -> list[Import]:
        return [Import("products", page_fetcher("/hq/products", "products"), self._store_products),
                Import("customers", page_fetcher("/hq/customers", "customers"),
                       self._store_customers),
                Import("prices", page_fetcher("/hq/price-lists", "prices"), self._store_prices)]

    # -- the branch's documents out ----------------------------------------------------------

    def _send_invoices(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        documents = [_invoice_document(invoice) for invoice in job.gateway.invoices_of(upserted)
                     if invoice.status == "issued" and invoice.type == "FA"
                     and _in_period(job, invoice.issue_date)]
        return _post(job, "/branch/documents", "documents", documents, key + "/documents") \
            + _unsent_deletions(job, "invoice", deleted)

    def _send_retail(self, job: SyncJob, upserted: list[str], deleted: list[str],
                     key: str) -> int:
        settings: XlSettings = job.settings
        if not settings.retail_documents:
            return 0
        documents = [_retail_document(document)
                     for document in job.gateway.records("retail_documents", upserted)
                     if _in_period(job, document.date)]
        return _post(job, "/branch/documents", "documents", documents, key + "/documents") \
            + _unsent_deletions(job, "retail document", deleted)

    def _send_cash(self, job: SyncJob, upserted: list[str], deleted: list[str],
                   key: str) -> int:
        entries: list[CashEntry] = job.gateway.records("cash_entries", upserted)
        return _post(job, "/branch/cash", "entries", [
            {"id": entry.id, "date": entry.date.isoformat(), "kind": entry.kind,
             "amount": money_text(entry.amount), "description": entry.description,
             "cash_register": entry.cash_register}
            for entry in entries if _in_period(job, entry.date)], key + "/cash") \
            + _unsent_deletions(job, "cash entry", deleted)

    def _send_payments(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        payments: list[Payment] = job.gateway.records("payments", upserted)
        return _post(job, "/branch/payments", "payments", [
            {"id": payment.id, "contractor": payment.contractor, "document": payment.document,
             "date": payment.date.isoformat(), "amount": money_text(payment.amount),
             "currency": payment.currency, "form": payment.form}
            for payment in payments if _in_period(job, payment.date)], key + "/payments") \
            + _unsent_deletions(job, "payment", deleted)

    # -- headquarters' master data in --------------------------------------------------------

    def _store_products(self, job: SyncJob, writer: ImportWriter,
                        items: list[dict[str, Any]]) -> int:
        items = _latest(items, "code")
        codes = [str(item.get("code") or "") for item in items]
        stored = {record.product.code: record.product
                  for record in job.gateway.product_records(codes)}
        changed = 0
        for code, item in zip(codes, items, strict=True):
            if item.get("deleted"):
                changed += _delete(job, writer, "products", code, stored)
                continue
            old = stored.get(code)
            try:
                product = Product.model_validate({
                    "code": code, "name": item.get("name"),
                    "unit": item.get("unit") or "szt.",
                    "net_price": Decimal(str(item.get("net_price"))),
                    "vat_rate": str(item.get("vat_rate")),
                    "group": old.group if old else None, "ean": old.ean if old else None,
                    "attributes": old.attributes if old else {}})
            except (ValidationError, InvalidOperation, ValueError):
                job.warn(f"product {code[:60]!r} of headquarters was not brought in: its "
                         "code, name, price or VAT rate is not valid")
                continue
            if old is not None and _same_product(old, ProductData.of(product)):
                continue
            writer.put_product(product)
            stored[code] = ProductData.of(product)
            changed += 1
        return changed

    def _store_customers(self, job: SyncJob, writer: ImportWriter,
                         items: list[dict[str, Any]]) -> int:
        items = _latest(items, "code")
        codes = [str(item.get("code") or "") for item in items]
        stored = {contractor.code: contractor for contractor in job.gateway.contractors_of(codes)}
        changed = 0
        for code, item in zip(codes, items, strict=True):
            if item.get("deleted"):
                changed += _delete(job, writer, "contractors", code, stored)
                continue
            contractor = _contractor(code, item, stored.get(code))
            if contractor is None:
                job.warn(f"customer {code[:60]!r} of headquarters was not brought in: its "
                         "code, name or NIP is not valid")
                continue
            if stored.get(code) == contractor:
                continue
            writer.put_contractor(contractor)
            stored[code] = contractor
            changed += 1
        return changed

    def _store_prices(self, job: SyncJob, writer: ImportWriter,
                      items: list[dict[str, Any]]) -> int:
        settings: XlSettings = job.settings
        items = _latest(items, "product", "price_type")
        pairs = [(str(item.get("product") or ""), str(item.get("price_type") or ""))
                 for item in items]
        records = {record.product.code: record
                   for record in job.gateway.product_records([product for product, _ in pairs])}
        current = {(code, kind): price for code, record in records.items()
                   for kind, price in record.prices.items()}
        types = {kind.code for kind in job.gateway.all_records("price_types")}
        changed = 0
        for (product, kind), item in zip(pairs, items, strict=True):
            if settings.price_types and kind not in settings.price_types:
                continue
            if item.get("deleted"):
                if settings.apply_deletions and current.pop((product, kind), None) is not None:
                    changed += writer.delete("prices", [f"{product}|{kind}"])
                continue
            if product not in records:
                job.warn(f"price {kind[:30]!r} of product {product[:60]!r} of headquarters "
                         "was not brought in: the product is not in the branch")
                continue
            try:
                price = Decimal(str(item.get("net_price")))
                if not price.is_finite() or price < 0 or not kind:
                    raise InvalidOperation
            except InvalidOperation:
                job.warn(f"price {kind[:30]!r} of product {product[:60]!r} of headquarters "
                         "was not brought in: it is not valid")
                continue
            if current.get((product, kind)) == price:
                continue
            if kind not in types:
                writer.put("price_types", PriceType(code=kind, name=kind))
                types.add(kind)
                job.counts["price_types_created"] += 1
            writer.put_price(product, kind, to_grosz(price))
            current[(product, kind)] = price
            changed += 1
        return changed


def _latest(items: list[dict[str, Any]], *fields: str) -> list[dict[str, Any]]:
    """The last item of each key in a page (a later one supersedes an earlier one), in
    the order of those last items."""
    last: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in items:
        key = tuple(str(item.get(name) or "") for name in fields)
        last.pop(key, None)
        last[key] = item
    return list(last.values())


def _post(job: SyncJob, path: str, name: str, items: Sequence[dict[str, Any]],
          key: str) -> int:
    if items:
        job.http.send("POST", path, {name: list(items)}, idempotency_key=key)
    return len(items)


def _unsent_deletions(job: SyncJob, what: str, deleted: list[str]) -> int:
    """Headquarters takes no deletions: warn once per batch and count them."""
    if deleted:
        shown = ", ".join(deleted[:3]) + (" ..." if len(deleted) > 3 else "")
        job.warn(f"ERP XL takes no deletions: {len(deleted)} deleted {what}(s) ({shown}) "
                 "must be corrected at headquarters")
        job.counts["deletions_not_sent"] += len(deleted)
    return 0


def _in_period(job: SyncJob, day: date) -> bool:
    settings: XlSettings = job.settings
    return settings.documents_from is None or day >= settings.documents_from


def _invoice_document(invoice: Invoice) -> dict[str, Any]:
    totals = invoice.totals
    return {"number": invoice.number, "kind": "sales", "type": invoice.type,
            "date": invoice.issue_date.isoformat(), "sale_date": invoice.sale_date.isoformat(),
            "due_date": invoice.due_date.isoformat(), "contractor": invoice.contractor,
            "net": money_text(totals.net), "vat": money_text(totals.vat),
            "gross": money_text(totals.gross), "currency": invoice.currency}


def _retail_document(document: RetailDocument) -> dict[str, Any]:
    """A retail document's amounts: its lines' gross values summed per VAT rate, the net
    of each rate taken out of its gross and rounded to the grosz."""
    gross_by_rate: dict[VatRate, Decimal] = defaultdict(Decimal)
    for line in document.lines:
        gross_by_rate[line.vat_rate] += to_grosz(line.quantity * line.unit_price)
    net = sum((to_grosz(gross / (1 + vat_fraction(rate)))
               for rate, gross in gross_by_rate.items()), Decimal(0))
    gross = sum(gross_by_rate.values(), Decimal(0))
    return {"number": document.number, "kind": "sales", "type": document.type,
            "date": document.date.isoformat(), "contractor": document.contractor,
            "net": money_text(net), "vat": money_text(gross - net),
            "gross": money_text(gross), "currency": "PLN", "warehouse": document.warehouse,
            "payment_form": document.payment_form, "from_receipt": document.from_receipt,
            "corrects": document.corrects}


def _delete(job: SyncJob, writer: ImportWriter, key: str, code: str,
            stored: dict[str, Any]) -> int:
    """Delete an entry headquarters deleted (if the branch has it and deletions apply)."""
    settings: XlSettings = job.settings
    if not settings.apply_deletions or stored.pop(code, None) is None:
        return 0
    deleted = writer.delete(key, [code])
    job.counts[f"{key}_deleted"] += deleted
    return deleted


def _same_product(old: ProductData, new: ProductData) -> bool:
    fields = ("name", "unit", "net_price", "vat_rate")
    return all(getattr(old, name) == getattr(new, name) for name in fields)


def _contractor(code: str, item: dict[str, Any], old: Contractor | None) -> Contractor | None:
    """Headquarters' customer as a contractor; the branch's dunning scheme and sales block
    stay; an e-mail or phone that is not valid is left out."""
    fields = {"code": code, "name": item.get("name"), "nip": item.get("nip") or None,
              "address": address_text(item.get("address")), "email": item.get("email") or None,
              "phone": item.get("phone") or None,
              "dunning_scheme": old.dunning_scheme if old else None,
              "sales_blocked": old.sales_blocked if old else False}
    for fallback in ({}, {"email": None, "phone": None}):
        try:
            return Contractor.model_validate({**fields, **fallback})
        except ValidationError:
            continue
    return None


