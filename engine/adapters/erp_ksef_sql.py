"""The KSeF settings and submissions of a company (:mod:`engine.erp.ksef`), and the
contractors' country and foreign VAT number, in ``erp_`` tables beside the ERP data.

The token, the certificate and its private key are encrypted with the station's
:class:`~engine.adapters.cipher_box.CipherBox`, bound to ``ksef:<what>``. A submission's
row is written before each upload (hash and XML) and after each answer (references,
number, UPO), each in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from engine.adapters.cipher_box import CipherBox
from engine.adapters.erp_sqlalchemy import UtcTime, invoices_table
from engine.adapters.sql import store_errors
from engine.erp.ksef import (
    KSEF_STATUS_OF,
    KsefAcceptance,
    KsefLedger,
    KsefSettings,
    KsefSubmission,
    PreparedInvoice,
    SubmissionStatus,
)
from engine.erp.model import Invoice
from engine.ports.ksef import SentInvoice

metadata = MetaData()
"""The tables of this module (created with the other ERP tables)."""

SETTINGS_ROW = 1
CHUNK = 500

ksef_settings_table = Table(
    "erp_ksef_settings", metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", Text, nullable=False),
    Column("base_url", Text, nullable=False),
    Column("nip", String(10), nullable=False),
    Column("method", String(11), nullable=False),
    Column("since", Date, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("token", Text, comment="AES-GCM token (cipher.key), ksef:token"),
    Column("certificate", Text, comment="AES-GCM token (cipher.key), ksef:certificate"),
    Column("private_key", Text, comment="AES-GCM token (cipher.key), ksef:private_key"),
    Column("updated_at", UtcTime(), nullable=False),
)

ksef_submissions_table = Table(
    "erp_ksef_submissions", metadata,
    Column("invoice", Text, primary_key=True),
    Column("status", String(8), nullable=False),
    Column("invoice_hash", Text, nullable=False, comment="SHA-256 of the XML, base64"),
    Column("xml", Text, nullable=False),
    Column("prepared_at", UtcTime(), nullable=False),
    Column("run_id", Text, nullable=False),
    Column("uploads", Integer, nullable=False),
    Column("session_reference", Text),
    Column("invoice_reference", Text),
    Column("sent_at", UtcTime()),
    Column("ksef_number", Text, unique=True),
    Column("accepted_at", UtcTime()),
    Column("code", Integer),
    Column("reason", Text),
    Column("upo", Text),
    Index("erp_ksef_submissions_status_idx", "status"),
)

contractor_details_table = Table(
    "erp_contractor_details", metadata,
    Column("code", Text, primary_key=True),
    Column("country", String(2), nullable=False),
    Column("vat_id", Text),
)


def contractor_details(c: Connection) -> dict[str, dict[str, Any]]:
    """Per contractor code, its ``country`` and ``vat_id`` when stored."""
    return {row.code: {"country": row.country, "vat_id": row.vat_id}
            for row in c.execute(select(contractor_details_table))}


def store_contractor_details(c: Connection, details: dict[str, tuple[str, str | None]]) -> None:
    """Replace the rows of the given contractors; a Polish one without a VAT number needs
    none (the defaults)."""
    table = contractor_details_table
    codes = list(details)
    for start in range(0, len(codes), CHUNK):
        c.execute(delete(table).where(table.c.code.in_(codes[start:start + CHUNK])))
    rows = [{"code": code, "country": country, "vat_id": vat_id}
            for code, (country, vat_id) in details.items()
            if (country, vat_id) != ("PL", None)]
    if rows:
        c.execute(insert(table), rows)


class SqlKsefLedger(KsefLedger):
    """The ledger's SQL half; mixed into the company gateway, which gives ``engine``,
    ``_ready``, ``_reading`` and ``_cipher``."""

    engine: Engine
    _cipher: CipherBox

    if TYPE_CHECKING:
        def _ready(self) -> None: ...

        def _reading(self) -> AbstractContextManager[Connection]: ...

        def _invoices(self, *where: ColumnElement[bool]) -> list[Invoice]: ...

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        self._ready()
        with store_errors(), self.engine.begin() as connection:
            yield connection

    # -- settings --------------------------------------------------------------------------

    def _seal(self, text: str | None, what: str) -> str | None:
        return None if text is None else self._cipher.encrypt(text, f"ksef:{what}")

    def _open(self, token: str | None, what: str) -> str | None:
        return None if token is None else self._cipher.decrypt(token, f"ksef:{what}")

    def ksef_settings(self) -> KsefSettings | None:
        with self._reading() as c:
            row = c.execute(select(ksef_settings_table)).first()
        if row is None:
            return None
        return KsefSettings(
            environment=row.environment, base_url=row.base_url, nip=row.nip,
            method=row.method, since=row.since, enabled=bool(row.enabled),
            token=self._open(row.token, "token"),
            certificate_pem=self._open(row.certificate, "certificate"),
            private_key_pem=self._open(row.private_key, "private_key"),
            updated_at=row.updated_at)

    def configure_ksef(self, settings: KsefSettings) -> None:
        table = ksef_settings_table
        values: dict[str, Any] = {
            "environment": settings.environment, "base_url": settings.base_url,
            "nip": settings.nip, "method": settings.method, "since": settings.since,
            "enabled": settings.enabled, "updated_at": datetime.now(UTC)}
        secrets = {"token": self._seal(settings.token, "token"),
                   "certificate": self._seal(settings.certificate_pem, "certificate"),
                   "private_key": self._seal(settings.private_key_pem, "private_key")}
        with self._writing() as c:
            row = c.execute(select(table.c.method)).first()
            if row is None or row.method != settings.method:
                values.update(secrets)
            else:
                values.update({name: value for name, value in secrets.items()
                               if value is not None})
            if row is None:
                c.execute(insert(table), {"id": SETTINGS_ROW, **values})
            else:
                c.execute(update(table).values(values))

    # -- submissions -----------------------------------------------------------------------

    def ksef_candidates(self, today: date, limit: int) -> list[Invoice]:
        settings_table, submissions = ksef_settings_table, ksef_submissions_table
        with self._reading() as c:
            since = c.execute(select(settings_table.c.since)).scalar()
        if since is None:
            return []
        return self._invoices(
            invoices_table.c.type == "FA", invoices_table.c.status == "issued",
            invoices_table.c.issue_date >= since, invoices_table.c.issue_date <= today,
            ~invoices_table.c.number.in_(select(submissions.c.invoice)))[:limit]

    def ksef_submissions(self, *statuses: SubmissionStatus,
                         with_xml: bool = False) -> list[KsefSubmission]:
        table = ksef_submissions_table
        query = select(table).order_by(table.c.prepared_at, table.c.invoice)
        if statuses:
            query = query.where(table.c.status.in_(statuses))
        with self._reading() as c:
            return [_submission(row, with_xml=with_xml) for row in c.execute(query)]

    def ksef_without_upo(self, limit: int) -> list[KsefSubmission]:
        table = ksef_submissions_table
        with self._reading() as c:
            return [_submission(row, with_xml=False) for row in c.execute(
                select(table).where(table.c.status == "accepted", table.c.upo.is_(None),
                                    table.c.session_reference.is_not(None))
                .order_by(table.c.prepared_at, table.c.invoice).limit(limit))]

    def ksef_submission(self, invoice: str) -> KsefSubmission | None:
        table = ksef_submissions_table
        with self._reading() as c:
            row = c.execute(select(table).where(table.c.invoice == invoice)).first()
        return None if row is None else _submission(row, with_xml=True)

    def prepare_ksef(self, prepared: Sequence[PreparedInvoice], run_id: str,
                     at: datetime) -> int:
        table = ksef_submissions_table
        if not prepared:
            return 0
        try:
            with self._writing() as c:
                taken: set[str] = set()
                numbers = [entry.invoice for entry in prepared]
                for start in range(0, len(numbers), CHUNK):
                    taken.update(c.execute(select(table.c.invoice).where(
                        table.c.invoice.in_(numbers[start:start + CHUNK]))).scalars())
                rows = [{"invoice": entry.invoice, "status": "prepared",
                         "invoice_hash": entry.invoice_hash, "xml": entry.xml.decode("utf-8"),
                         "prepared_at": at, "run_id": run_id, "uploads": 0}
                        for entry in prepared if entry.invoice not in taken]
                if rows:
                    c.execute(insert(table), rows)
                return len(rows)
        except IntegrityError:  # another run prepared some meanwhile: one at a time
            if len(prepared) == 1:
                return 0
            return sum(self.prepare_ksef([entry], run_id, at) for entry in prepared)

    def record_ksef_upload(self, invoices: Sequence[str], session_reference: str) -> None:
        table = ksef_submissions_table
        with self._writing() as c:
            for start in range(0, len(invoices), CHUNK):
                c.execute(update(table).where(
                    table.c.invoice.in_(list(invoices[start:start + CHUNK])))
                    .values(uploads=table.c.uploads + 1,
                            session_reference=session_reference))

    def record_ksef_sent(self, sent: Sequence[tuple[str, SentInvoice]], at: datetime) -> None:
        table = ksef_submissions_table
        if not sent:
            return
        with self._writing() as c:
            c.execute(update(table).where(
                table.c.invoice == bindparam("number"),
                or_(table.c.status == "prepared", table.c.status == "sent")).values(
                status="sent", session_reference=bindparam("session"),
                invoice_reference=bindparam("reference"), sent_at=at),
                [{"number": invoice, "session": reference.session_reference,
                  "reference": reference.invoice_reference} for invoice, reference in sent])

    def record_ksef_accepted(self, accepted: Sequence[KsefAcceptance]) -> None:
        table = ksef_submissions_table
        if not accepted:
            return
        with self._writing() as c:
            c.execute(update(table).where(table.c.invoice == bindparam("number")).values(
                status="accepted", ksef_number=bindparam("ksef"),
                accepted_at=bindparam("at"), code=bindparam("answer"),
                reason=bindparam("why"), upo=bindparam("receipt")),
                [{"number": entry.invoice, "ksef": entry.ksef_number, "at": entry.accepted_at,
                  "answer": entry.code, "why": entry.reason, "receipt": entry.upo}
                 for entry in accepted])

    def _update(self, invoice: str, *where: Any, **values: Any) -> int:
        table = ksef_submissions_table
        with self._writing() as c:
            return int(c.execute(update(table).where(table.c.invoice == invoice, *where)
                                 .values(values)).rowcount)

    def record_ksef_upo(self, invoice: str, upo: str) -> None:
        self._update(invoice, upo=upo)

    def record_ksef_rejected(self, invoice: str, *, code: int, reason: str,
                             xml: bytes | None = None, run_id: str | None = None,
                             at: datetime | None = None) -> None:
        if xml is None:
            self._update(invoice, status="rejected", code=code, reason=reason)
            return
        with self._writing() as c:
            c.execute(insert(ksef_submissions_table), {
                "invoice": invoice, "status": "rejected", "invoice_hash": "",
                "xml": xml.decode("utf-8", errors="replace"), "prepared_at": at or
                datetime.now(UTC), "run_id": run_id or "", "uploads": 0, "code": code,
                "reason": reason})

    def record_ksef_by_hand(self, invoice: str, *, ksef_number: str,
                            accepted_at: datetime) -> None:
        table = ksef_submissions_table
        values = {"status": "accepted", "ksef_number": ksef_number,
                  "accepted_at": accepted_at, "code": None,
                  "reason": "KSeF number entered by hand"}
        with self._writing() as c:
            if not c.execute(update(table).where(table.c.invoice == invoice)
                             .values(values)).rowcount:
                c.execute(insert(table), {
                    "invoice": invoice, "invoice_hash": "", "xml": "",
                    "prepared_at": datetime.now(UTC), "run_id": "", "uploads": 0, **values})

    def reopen_ksef(self, invoice: str) -> bool:
        table = ksef_submissions_table
        with self._writing() as c:
            return bool(c.execute(delete(table).where(
                table.c.invoice == invoice, table.c.status == "rejected")).rowcount)

    def awaiting_ksef(self) -> set[str]:
        settings_table, submissions = ksef_settings_table, ksef_submissions_table
        with self._reading() as c:
            settings = c.execute(select(settings_table.c.since, settings_table.c.enabled)
                                 ).first()
            if settings is None or not settings.enabled:
                return set()
            return set(c.execute(
                select(invoices_table.c.number)
                .select_from(invoices_table.outerjoin(
                    submissions, submissions.c.invoice == invoices_table.c.number))
                .where(invoices_table.c.type == "FA", invoices_table.c.status == "issued",
                       invoices_table.c.issue_date >= settings.since,
                       and_(submissions.c.status.is_distinct_from("accepted")))).scalars())

    def with_ksef(self, c: Connection, invoices: Sequence[Invoice]) -> list[Invoice]:
        """``invoices`` with their KSeF fields; ``pending`` for one KSeF must still get."""
        if not invoices:
            return []
        table = ksef_submissions_table
        settings = c.execute(select(ksef_settings_table.c.since,
                                    ksef_settings_table.c.enabled)).first()
        numbers = [invoice.number for invoice in invoices]
        found: dict[str, Any] = {}
        for start in range(0, len(numbers), CHUNK):
            for row in c.execute(
                    select(table.c.invoice, table.c.status, table.c.ksef_number,
                           table.c.accepted_at, table.c.reason)
                    .where(table.c.invoice.in_(numbers[start:start + CHUNK]))):
                found[row.invoice] = row
        result = []
        for invoice in invoices:
            stored = found.get(invoice.number)
            if stored is not None:
                invoice = replace(invoice, ksef_status=KSEF_STATUS_OF[stored.status],
                                  ksef_number=stored.ksef_number,
                                  ksef_accepted_at=stored.accepted_at,
                                  ksef_reason=stored.reason)
            elif (settings is not None and settings.enabled and invoice.type == "FA"
                  and invoice.status == "issued" and invoice.issue_date >= settings.since):
                invoice = replace(invoice, ksef_status="pending")
            result.append(invoice)
        return result


def _submission(row: Any, *, with_xml: bool) -> KsefSubmission:
    return KsefSubmission(
        invoice=row.invoice, status=row.status, invoice_hash=row.invoice_hash,
        prepared_at=row.prepared_at, run_id=row.run_id,
        session_reference=row.session_reference, invoice_reference=row.invoice_reference,
        sent_at=row.sent_at, ksef_number=row.ksef_number, accepted_at=row.accepted_at,
        code=row.code, reason=row.reason, upo=row.upo, uploads=int(row.uploads),
        xml=row.xml.encode("utf-8") if with_xml else None)
