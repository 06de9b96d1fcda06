"""``sync_detal``: products (with their retail price) and customers out to the Optima
Detal till; customers added at the till, its receipts, invoices and corrections, and its
cash entries in (contract: docs/partners/detal.md).

- Products: a product's own change and a change of its prices upsert the till's product
  (``POST /products``, the gross price of the chosen price type; the till's product
  carries no stock, so a stock change alone sends nothing); a deleted product is deleted
  (``POST /products/delete``).
- Customers: a contractor's change upserts the till's customer (``POST /customers``); a
  deleted contractor is deleted (``POST /customers/delete``).
- Customers added at the till (``GET /customers/new``) become contractors ``DET-<id>``
  unless one is matched by NIP (first) or e-mail, or that code exists already.
- Documents (``GET /documents``) become retail documents under the till's numbers.
  Receipts, and invoices not made from a receipt, take their lines' stock from the till's
  warehouse (setting ``warehouse``, else the document's) on the document's day; a
  correction's negative quantities give stock back; an invoice made from a receipt takes
  none again. Stock never goes below zero: what was missing is kept as a shortfall of
  the day and warehouse, and each run warns once per day and warehouse short.
- Cash entries (``GET /cash``) become cash entries ``DET-<id>``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, ValidationError

from engine.erp.sync import ImportWriter
from engine.erp.trade import CashEntry, OrderLine, RetailDocument
from engine.operations.sync.core import Export, Import, PartnerSettings, PartnerSync, SyncJob
from engine.operations.sync.mapping import (
    CustomerIntake,
    gross,
    one_line,
    page_fetcher,
)

PARTNER: Literal["detal"] = "detal"
PREFIX = "DET-"


class DetalSettings(PartnerSettings):
    price_type: str | None = Field(default=None, description="Price type of the till's "
                                   "retail price (default: the product's own net price).")
    warehouse: str | None = Field(default=None, description="The till's warehouse, whose "
                                  "stock receipts take (default: the document's warehouse).")
    create_customers: bool = Field(default=True, description="Create a customer added at "
                                   "the till that matches no contractor.")


class DetalSync(PartnerSync):
    partner = PARTNER
    settings_model = DetalSettings

    def __init__(self) -> None:
        self._shortfalls: dict[str, dict[tuple[date, str], Decimal]] = {}
        """Per run id: what stock was missing, by day and warehouse."""

    def exports(self) -> list[Export]:
        return [Export("products", ("product", "product_price"), self._send_products,
                       full_entities=("product",)),
                Export("customers", ("contractor",), self._send_customers)]

    def imports(self) -> list[Import]:
        return [Import("customers", page_fetcher("/customers/new", "customers"),
                       self._store_customers),
                Import("documents", page_fetcher("/documents", "documents"),
                       self._store_documents),
                Import("cash", page_fetcher("/cash", "entries"), self._store_cash)]

    def synchronise(self, job: SyncJob) -> None:
        """The core's run, then one warning per day and warehouse short of stock."""
        short = self._shortfalls[job.run_id] = {}
        try:
            super().synchronise(job)
        finally:
            self._shortfalls.pop(job.run_id, None)
            for (day, warehouse), missing in sorted(short.items()):
                job.warn(f"stock in {warehouse} on {day.isoformat()} was short by "
                         f"{format(missing.normalize(), 'f')} (units summed over products); "
                         "kept as a shortfall, stock was not made negative")

    # -- out ---------------------------------------------------------------------------------

    def _send_products(self, job: SyncJob, upserted: list[str], deleted: list[str],
                       key: str) -> int:
        settings: DetalSettings = job.settings
        records = job.gateway.product_records(upserted)
        kept = {record.product.code for record in records}
        gone = [code for code in deleted if code not in kept]
        if records:
            job.http.send("POST", "/products", {"products": [
                {"code": record.product.code, "name": record.product.name,
                 "unit": record.product.unit, "vat_rate": record.product.vat_rate,
                 "price": gross(record.net_price(settings.price_type),
                                record.product.vat_rate),
                 "ean": record.product.ean}
                for record in records]}, idempotency_key=key + "/products")
        if gone:
            job.http.send("POST", "/products/delete", {"codes": gone},
                          idempotency_key=key + "/delete")
        return len(records) + len(gone)

    def _send_customers(self, job: SyncJob, upserted: list[str], deleted: list[str],
                        key: str) -> int:
        contractors = job.gateway.contractors_of(upserted)
        kept = {contractor.code for contractor in contractors}
        gone = [code for code in deleted if code not in kept]
        if contractors:
            job.http.send("POST", "/customers", {"customers": [
                {"code": contractor.code, "name": contractor.name, "nip": contractor.nip,
                 "address": contractor.address, "email": contractor.email,
                 "phone": contractor.phone}
                for contractor in contractors]}, idempotency_key=key + "/customers")
        if gone:
            job.http.send("POST", "/customers/delete", {"codes": gone},
                          idempotency_key=key + "/delete")
        return len(contractors) + len(gone)

    # -- in ----------------------------------------------------------------------------------

    def _store_customers(self, job: SyncJob, writer: ImportWriter,
                         customers: list[dict[str, Any]]) -> int:
        return self._intake(job, writer).bring_in(customers)

    @staticmethod
    def _intake(job: SyncJob, writer: ImportWriter) -> CustomerIntake:
        """Till customers: ``DET-<id>`` if stored, else one matched by NIP (first) or
        e-mail, else ``DET-<id>`` created (if create_customers)."""
        settings: DetalSettings = job.settings
        return CustomerIntake(job, writer, PREFIX, "the Detal till",
                              create=settings.create_customers)

    def _store_documents(self, job: SyncJob, writer: ImportWriter,
                         documents: list[dict[str, Any]]) -> int:
        settings: DetalSettings = job.settings
        ids = [str(document.get("id") or "") for document in documents]
        known = writer.known("retail_documents", PARTNER, ids)
        # Every read of the gateway comes before the page's first write.
        fresh = [document for document in documents if str(document.get("id")) not in known]
        intake = self._intake(job, writer)
        intake.read_existing(document["customer"] for document in fresh
                             if isinstance(document.get("customer"), dict))
        named = {str(document["customer"]) for document in fresh
                 if isinstance(document.get("customer"), str) and document["customer"]}
        contractors = {contractor.code for contractor in job.gateway.contractors_of(
            sorted(named))} if named else set()
        products = {record.product.code for record in job.gateway.product_records(sorted({
            str(line.get("code")) for document in fresh for line in document.get("lines")
            or () if isinstance(line, dict) and line.get("code")}))}
        numbers = self._numbers(job, documents, known)
        short = self._shortfalls.setdefault(job.run_id, {})
        created = 0
        for document in fresh:
            document_id = str(document.get("id") or "")
            if not document_id or document_id in known:
                continue
            known.add(document_id)
            try:
                retail = self._retail_document(job, writer, document, numbers,
                                               contractors, intake)
            except (ValueError, InvalidOperation) as error:
                job.warn(f"document {document_id} of the Detal till was not brought in: "
                         f"{one_line(error)}")
                continue
            writer.add("retail_documents", retail)
            created += 1
            if retail.type == "invoice" and document.get("from_receipt"):
                continue  # its receipt took the stock
            warehouse = settings.warehouse or retail.warehouse
            if warehouse is None:
                job.warn(f"document {retail.number} of the Detal till took no stock: it "
                         "names no warehouse and the setting warehouse is not set")
                continue
            unknown = sorted({line.product for line in retail.lines
                              if line.product not in products})
            if unknown:
                job.warn(f"document {retail.number} of the Detal till took no stock of "
                         f"products the ERP lacks: {', '.join(unknown)[:200]}")
            for line in retail.lines:
                if line.product in products:
                    missing = writer.take_stock(line.product, warehouse, line.quantity,
                                                retail.date)
                    if missing > 0:
                        where = (retail.date, warehouse)
                        short[where] = short.get(where, Decimal(0)) + missing
                        job.counts["shortfalls"] += 1
        return created

    def _retail_document(self, job: SyncJob, writer: ImportWriter, document: dict[str, Any],
                         numbers: dict[str, str], contractors: set[str],
                         intake: CustomerIntake) -> RetailDocument:
        """The document as the ERP keeps it, its customer found or created.

        :raises ValueError: if it cannot be brought in.
        """
        kind = str(document.get("type") or "")
        if kind not in ("receipt", "invoice", "correction"):
            raise ValueError(f"unknown type {kind[:30]!r}")
        lines = [document_line(line) for line in document.get("lines") or []]
        if not lines:
            raise ValueError("it has no lines")
        payment = str(document.get("payment") or "cash")
        retail = RetailDocument.model_validate({
            "number": str(document.get("number") or ""), "type": kind, "partner": PARTNER,
            "partner_id": str(document["id"]), "date": str(document.get("date") or ""),
            "warehouse": document.get("warehouse") or None, "lines": lines,
            "payment_form": payment if payment in ("cash", "card", "transfer") else "cash",
            "from_receipt": reference(document.get("from_receipt"), numbers),
            "corrects": reference(document.get("corrects"), numbers)})
        customer = document.get("customer")
        contractor: str | None = None
        if isinstance(customer, str) and customer:
            if customer in contractors:
                contractor = customer
            else:
                job.warn(f"document {retail.number} of the Detal till names customer "
                         f"{customer[:60]} that the ERP lacks; kept without a customer")
        elif isinstance(customer, dict):
            contractor = intake.contractor_of(customer)
        return retail.model_copy(update={"contractor": contractor})

    def _numbers(self, job: SyncJob, documents: list[dict[str, Any]],
                 known: set[str]) -> dict[str, str]:
        """The till's document ids this page refers to (receipts of invoices, corrected
        documents), with their numbers: from the page, else from the stored documents."""
        numbers = {str(document.get("id")): str(document.get("number"))
                   for document in documents if document.get("id") and document.get("number")}
        wanted = {str(document.get(field)) for document in documents
                  for field in ("from_receipt", "corrects") if document.get(field)}
        if wanted - numbers.keys():
            # No gateway read by partner id: the stored till documents are read once.
            for stored in job.gateway.all_records("retail_documents"):
                if stored.partner == PARTNER and stored.partner_id in wanted:
                    numbers.setdefault(str(stored.partner_id), stored.number)
        return numbers

    def _store_cash(self, job: SyncJob, writer: ImportWriter,
                    entries: list[dict[str, Any]]) -> int:
        known = writer.known("cash_entries", PARTNER,
                             [str(entry.get("id") or "") for entry in entries])
        created = 0
        for entry in entries:
            entry_id = str(entry.get("id") or "")
            if not entry_id or entry_id in known:
                continue
            known.add(entry_id)
            try:
                cash = CashEntry.model_validate({
                    "id": PREFIX + entry_id, "partner": PARTNER, "partner_id": entry_id,
                    "date": str(entry.get("date") or ""), "kind": entry.get("kind"),
                    "amount": str(entry.get("amount") or ""),
                    "description": str(entry.get("description") or ""),
                    "cash_register": str(entry.get("register") or "")})
            except ValidationError as error:
                job.warn(f"cash entry {entry_id} of the Detal till was not brought in: "
                         f"{one_line(error)}")
                continue
            writer.add("cash_entries", cash)
            created += 1
        return created


def document_line(line: dict[str, Any]) -> OrderLine:
    """A till line: quantity may be negative (a correction); price is gross.

    :raises ValueError: if it is not a valid line.
    """
    return OrderLine.model_validate({
        "product": str(line.get("code") or ""),
        "quantity": Decimal(str(line.get("quantity") or "")),
        "unit_price": str(line.get("price") or ""),
        "vat_rate": str(line.get("vat_rate") or "23")})


def reference(document_id: Any, numbers: dict[str, str]) -> str | None:
    """The number of the till's document ``document_id`` (its id itself when unknown)."""
    if not document_id:
        return None
    return numbers.get(str(document_id), str(document_id))
