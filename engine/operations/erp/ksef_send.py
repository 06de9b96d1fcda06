"""``ksef_send``: every issued VAT invoice of the company that KSeF has not accepted yet
goes to KSeF as FA(3) XML, once, and is followed until KSeF answers.

Exactly once (see :mod:`engine.erp.ksef` for the states):

1. each new invoice is made into FA(3) XML and checked against the official XSD; an
   invalid one is recorded as rejected with the reason, and is not sent;
2. the XML and its SHA-256 are recorded (``prepared``) *before* the upload, and the
   session's reference just before it;
3. after the upload KSeF's references are recorded (``sent``); from then on runs only poll;
4. a ``prepared`` invoice found by a later run (a crash, a lost answer) is first looked up
   in its session by its hash; if KSeF has it, polling resumes; if not, the same bytes are
   sent again, and KSeF's duplicate rule (440, with the original KSeF number) makes the
   second upload a confirmation of the first;
5. the final answer is kept: the KSeF number, acceptance time and UPO, or the rejection's
   reason (a rejected invoice is not sent again until ``soa ksef reopen``).

Invoices still processing when the run's ``wait_seconds`` are over are polled by the next
run. 429 and 5xx answers are waited out and retried inside the KSeF client; if KSeF stays
unreachable the attempt fails and is retried, nothing being lost.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from engine.domain.errors import SoaError
from engine.erp.document import Contractor, Seller
from engine.erp.fields import WARSAW
from engine.erp.ksef import (
    KsefAcceptance,
    KsefLedger,
    KsefNotConfiguredError,
    KsefSettings,
    KsefSubmission,
    PreparedInvoice,
)
from engine.erp.model import Invoice
from engine.operations.contract import OperationPorts, RunContext
from engine.operations.erp.common import ErpJob, OperationParams, PlannedAction, batches
from engine.ports.ksef import (
    STATUS_ACCEPTED,
    KsefClient,
    KsefConnection,
    KsefDocumentError,
    KsefInvoiceDocument,
    KsefInvoiceStatus,
    KsefParty,
    KsefRefusedError,
    KsefUnavailableError,
    SentInvoice,
)

KIND = "ksef_send"

UPO_FETCHES_PER_RUN = 100
CHUNK = 100
"""Invoices recorded per transaction (prepared, uploaded in a session, sent)."""
GIVE_UP_AFTER = 3
"""Uploads in a row without an answer after which a run stops sending (KSeF is down)."""
LOCAL_REJECTION = 0
"""The code of a rejection by the engine's own XSD check (nothing was sent)."""


class KsefSendParams(OperationParams):
    limit: int = Field(default=1000, ge=1, le=100_000,
                       description="New invoices to send per run (the rest go next run).")
    wait_seconds: float = Field(default=60.0, ge=0, le=3600, description=(
        "How long a run polls for final answers; what is still processing is polled by "
        "the next run."))
    poll_seconds: float = Field(default=1.0, ge=0.01, le=60,
                                description="Pause between two polls of the same invoices.")
    resend_after_seconds: float = Field(default=60.0, ge=0, le=86_400, description=(
        "An upload another run prepared and left unanswered this long is looked up and, "
        "if KSeF does not have it, sent again."))


class KsefPendingError(SoaError):
    """Signals e-mails held back for invoices that KSeF is still processing; the next
    attempt polls again and sends them."""


@dataclass
class KsefOutcome:
    """What one pass did, as the run's counts."""

    prepared: int = 0
    sent: int = 0
    found: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    processing: int = 0
    unsent: list[str] = field(default_factory=list)
    """Errors of uploads that got no answer (the next run looks them up)."""

    def counts(self) -> dict[str, int]:
        return {"ksef_prepared": self.prepared, "ksef_sent": self.sent,
                "ksef_accepted": self.accepted, "ksef_duplicates": self.duplicates,
                "ksef_rejected": self.rejected, "ksef_processing": self.processing,
                "ksef_unanswered": len(self.unsent)}


def sendable_until(today: date) -> date:
    """The last issue date KSeF takes now: an invoice dated after today in Poland is
    refused (its issue date may not be later than its acceptance), so a run acting as of
    a later instant leaves such invoices for a run on or after their date."""
    return min(today, datetime.now(WARSAW).date())


def invoice_hash(xml: bytes) -> str:
    """SHA-256 of ``xml``, base64, as KSeF names an invoice's content."""
    return base64.b64encode(hashlib.sha256(xml).digest()).decode("ascii")


def party_of_seller(seller: Seller) -> KsefParty:
    return KsefParty(name=seller.name, address=seller.address, nip=seller.nip,
                     email=seller.email, phone=seller.phone)


def party_of_contractor(contractor: Contractor) -> KsefParty:
    return KsefParty(name=contractor.name, address=contractor.address, nip=contractor.nip,
                     country=contractor.country, vat_id=contractor.vat_id,
                     email=contractor.email, phone=contractor.phone)


class KsefSender:
    """One pass of sending and polling for a job (the ``ksef_send`` run, or the
    recurring invoices' run after issuing)."""

    def __init__(self, job: ErpJob, params: KsefSendParams,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(job.gateway, KsefLedger):
            raise KsefNotConfiguredError("this company's data keeps no KSeF state")
        if job.ksef is None:
            raise KsefNotConfiguredError("this host gives operations no KSeF client")
        self._job = job
        self._ledger: KsefLedger = job.gateway
        self._client: KsefClient = job.ksef
        self._params = params
        self._sleep = sleep
        self.outcome = KsefOutcome()

    # -- steps -----------------------------------------------------------------------------

    def run(self, settings: KsefSettings) -> KsefOutcome:
        """Prepare the new invoices, send what is prepared, poll what is sent."""
        self._prepare_new()
        resend_before = datetime.now(UTC) - timedelta(seconds=self._params.resend_after_seconds)
        to_send = [submission for submission in
                   self._ledger.ksef_submissions("prepared", with_xml=True)
                   if submission.run_id == self._job.run_id
                   or submission.session_reference is None
                   or submission.prepared_at <= resend_before]
        without_upo = self._ledger.ksef_without_upo(UPO_FETCHES_PER_RUN)
        if not to_send and not without_upo and not self._ledger.ksef_submissions("sent"):
            return self.outcome
        with self._client.connect(settings.credentials()) as connection:
            if to_send:
                self._send(connection, to_send)
            self._poll(connection)
            self._fetch_missing_upos(connection, without_upo)
        return self.outcome

    def _fetch_missing_upos(self, connection: KsefConnection,
                            submissions: list[KsefSubmission]) -> None:
        """UPOs that an earlier run could not fetch when KSeF accepted the invoice."""
        for submission in submissions:
            sent = submission.sent
            if sent is None:
                continue
            try:
                self._ledger.record_ksef_upo(submission.invoice, connection.upo(sent))
            except (KsefUnavailableError, KsefRefusedError) as error:
                self._job.warn(f"the UPO of invoice {submission.invoice} was not fetched: "
                               f"{error}")
                return

    def _prepare_new(self) -> None:
        """Make and check the XML of each new invoice and record them all as prepared
        (one transaction per chunk)."""
        job = self._job
        candidates = self._ledger.ksef_candidates(sendable_until(job.today),
                                                  self._params.limit)
        if not candidates:
            return
        seller = job.data.seller
        if seller is None:
            raise ValueError("the company has no seller data; load the seller first")
        contractors = job.by_code("contractors")
        for chunk in batches(candidates, CHUNK):
            job.check_cancelled(f"{self.outcome.prepared} invoice(s) prepared for KSeF")
            prepared: list[PreparedInvoice] = []
            for invoice in chunk:
                try:
                    xml = self._render(invoice, seller, contractors.get(invoice.contractor))
                except KsefDocumentError as error:
                    self._ledger.record_ksef_rejected(
                        invoice.number, code=LOCAL_REJECTION, reason=f"not sent: {error}",
                        xml=b"", run_id=job.run_id, at=datetime.now(UTC))
                    self.outcome.rejected += 1
                    job.warn(f"invoice {invoice.number} was not sent to KSeF: {error}")
                    continue
                prepared.append(PreparedInvoice(invoice.number, xml, invoice_hash(xml)))
            self.outcome.prepared += self._ledger.prepare_ksef(prepared, job.run_id,
                                                               datetime.now(UTC))

    def _render(self, invoice: Invoice, seller: Seller, contractor: Contractor | None) -> bytes:
        if contractor is None:
            raise KsefDocumentError(f"its contractor {invoice.contractor} does not exist")
        return self._client.render(KsefInvoiceDocument(
            invoice=invoice, seller=party_of_seller(seller),
            buyer=party_of_contractor(contractor), bank_account=seller.bank_account))

    def _send(self, connection: KsefConnection, submissions: list[KsefSubmission]) -> None:
        """Upload in one session what no earlier session holds: each chunk's session is
        recorded before its uploads, their references after them."""
        job = self._job
        pending = self._not_found_in_their_sessions(connection, submissions)
        if not pending:
            return
        session = connection.open_session()
        unavailable_in_a_row = 0
        try:
            for chunk in batches(pending, CHUNK):
                job.check_cancelled(f"{self.outcome.sent} invoice(s) sent to KSeF")
                if unavailable_in_a_row >= GIVE_UP_AFTER:
                    break
                self._ledger.record_ksef_upload([entry.invoice for entry in chunk],
                                                session.reference)
                sent: list[tuple[str, SentInvoice]] = []
                try:
                    for submission in chunk:
                        if unavailable_in_a_row >= GIVE_UP_AFTER:
                            break
                        assert submission.xml is not None
                        try:
                            sent.append((submission.invoice, session.send(submission.xml)))
                            unavailable_in_a_row = 0
                        except KsefUnavailableError as error:
                            unavailable_in_a_row += 1
                            self.outcome.unsent.append(f"{submission.invoice}: {error}")
                        except KsefRefusedError as error:
                            self._reject(submission.invoice, KsefInvoiceStatus(
                                code=400, description=str(error)))
                finally:
                    self._ledger.record_ksef_sent(sent, datetime.now(UTC))
                    self.outcome.sent += len(sent)
        finally:
            try:
                session.close()
            except (KsefUnavailableError, KsefRefusedError) as error:
                job.warn(f"the KSeF session {session.reference} was not closed: {error}")

    def _not_found_in_their_sessions(self, connection: KsefConnection,
                                     submissions: list[KsefSubmission]) -> list[KsefSubmission]:
        """Uploads of earlier attempts whose answers were lost, found in their sessions by
        hash, are recorded as sent; the rest is returned, to be uploaded."""
        by_session: dict[str, list[KsefSubmission]] = {}
        for submission in submissions:
            if submission.session_reference is not None:
                by_session.setdefault(submission.session_reference, []).append(submission)
        found: list[tuple[str, SentInvoice]] = []
        for session_reference, entries in by_session.items():
            try:
                uploads = connection.uploads_in(session_reference)
            except (KsefUnavailableError, KsefRefusedError):
                continue  # sent again: KSeF's duplicate rule answers for those it has
            found += [(entry.invoice, SentInvoice(session_reference,
                                                  uploads[entry.invoice_hash]))
                      for entry in entries if entry.invoice_hash in uploads]
        self._ledger.record_ksef_sent(found, datetime.now(UTC))
        self.outcome.found += len(found)
        recorded = {invoice for invoice, _ in found}
        return [entry for entry in submissions if entry.invoice not in recorded]

    def _poll(self, connection: KsefConnection) -> None:
        """Poll every sent invoice until each has a final answer or the run's wait is
        over; each round's acceptances are recorded together."""
        deadline = time.monotonic() + self._params.wait_seconds
        while True:
            accepted: list[KsefAcceptance] = []
            try:
                for submission in self._ledger.ksef_submissions("sent"):
                    self._job.check_cancelled("polling KSeF")
                    sent = submission.sent
                    assert sent is not None
                    status = connection.invoice_status(sent)
                    if status.is_accepted:
                        accepted.append(self._acceptance(connection, submission.invoice,
                                                         sent, status))
                    elif status.is_final:
                        self._reject(submission.invoice, status)
            finally:
                self._ledger.record_ksef_accepted(accepted)
                self.outcome.accepted += len(accepted)
                self.outcome.duplicates += sum(1 for entry in accepted if entry.code != 200)
            remaining = len(self._ledger.ksef_submissions("sent"))
            if not remaining or time.monotonic() >= deadline:
                self.outcome.processing = remaining
                return
            self._sleep(self._params.poll_seconds)

    def _acceptance(self, connection: KsefConnection, invoice: str, sent: SentInvoice,
                    status: KsefInvoiceStatus) -> KsefAcceptance:
        assert status.ksef_number is not None
        upo: str | None = None
        try:
            upo = connection.upo(sent)
        except (KsefUnavailableError, KsefRefusedError) as error:
            self._job.warn(f"the UPO of invoice {invoice} was not fetched: {error}")
        duplicate = status.code != STATUS_ACCEPTED
        return KsefAcceptance(invoice=invoice, ksef_number=status.ksef_number,
                              accepted_at=status.accepted_at or datetime.now(UTC),
                              code=status.code, reason=status.reason if duplicate else None,
                              upo=upo)

    def _reject(self, invoice: str, status: KsefInvoiceStatus) -> None:
        self._ledger.record_ksef_rejected(invoice, code=status.code, reason=status.reason)
        self.outcome.rejected += 1
        self._job.warn(f"KSeF rejected invoice {invoice}: {status.reason}")


def ksef_settings_of(job: ErpJob) -> KsefSettings | None:
    """The company's KSeF settings if it sends invoices to KSeF, else None."""
    if not isinstance(job.gateway, KsefLedger):
        return None
    settings = job.gateway.ksef_settings()
    return settings if settings is not None and settings.enabled else None


def send_to_ksef(job: ErpJob, params: KsefSendParams,
                 settings: KsefSettings) -> KsefOutcome:
    """One pass of :class:`KsefSender`; raises if KSeF was unreachable."""
    return KsefSender(job, params).run(settings)


class KsefSend:
    kind = KIND
    params_model = KsefSendParams

    def __init__(self, ports: OperationPorts | None = None) -> None:
        self._ports = ports

    def preview(self, job: ErpJob, params: KsefSendParams) -> list[PlannedAction]:
        settings = ksef_settings_of(job)
        if settings is None or not isinstance(job.gateway, KsefLedger):
            return []
        ledger = job.gateway
        return [
            PlannedAction("ksef", invoice.number, {
                "contractor": invoice.contractor, "issue_date": invoice.issue_date.isoformat(),
                "environment": settings.environment})
            for invoice in ledger.ksef_candidates(sendable_until(job.today), params.limit)
        ] + [
            PlannedAction("ksef_poll", submission.invoice, {
                "status": submission.status, "session": submission.session_reference})
            for submission in ledger.ksef_submissions("prepared", "sent")
        ]

    def run(self, ctx: RunContext) -> dict[str, int]:
        return self.execute(ErpJob.of(ctx, KIND), ctx.params)

    def execute(self, job: ErpJob, params: KsefSendParams) -> dict[str, int]:
        settings = ksef_settings_of(job)
        if settings is None:
            raise KsefNotConfiguredError(
                "KSeF is not configured or is disabled for this company; run "
                "`soa ksef configure` first")
        outcome = send_to_ksef(job, params, settings)
        if outcome.unsent:
            raise KsefUnavailableError(
                f"{len(outcome.unsent)} upload(s) got no answer (first: {outcome.unsent[0]}); "
                "the next attempt looks them up in KSeF before sending anything again")
        return outcome.counts()
