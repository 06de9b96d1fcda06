"""KSeF 2.0's API (the part ``ksef-client`` uses for online sessions) as the simulator
answers it, without HTTP and without faults: :class:`KsefApi` takes a :class:`Request`
(path below ``/v2``) and gives an :class:`Answer`. Logins are :mod:`.logins`.

- Sessions: the AES-256 key arrives RSA-OAEP-encrypted; invoices arrive AES-256-CBC
  encrypted, their hashes and sizes checked at once (400). Each invoice is in status 150
  for ``processing_seconds``; then, in upload order: 435 (cannot be decrypted), 450 (not
  FA(3) by the XSD, or an issue date later than the day of receipt in Polish
  time), 410 (the seller is not the session's NIP), 440 (the same seller,
  kind and number was accepted before: ``extensions`` name the original), or 200 with a
  KSeF number. Processing is done by the first request (or ``state``) after an
  invoice's time is over, in upload order: seen from outside, as if done in the
  background.
- Errors have KSeF's shapes (:mod:`.wire`). Exception code 21405 is KSeF's
  input-validation code; the simulator's other codes (21404 not found, 21180 closed
  session) are its own choice.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from engine.simulators.ksef.documents import (
    InvoiceFacts,
    UpoEntry,
    invoice_facts,
    invoice_problem,
    ksef_number,
    upo_xml,
)
from engine.simulators.ksef.keys import SYMMETRIC_KEY_ENCRYPTION, KeyRing
from engine.simulators.ksef.logins import Logins
from engine.simulators.ksef.wire import (
    NOT_FOUND,
    WARSAW,
    Answer,
    Obj,
    Refusal,
    Request,
    b64,
    invalid,
    json_answer,
    now,
    parse_json,
    reference,
    refusal,
    sha256,
    stamp,
)

SESSION_SECONDS = 12 * 3600
MAX_INVOICE_BYTES = 1_000_000
DEFAULT_PAGE = 10
MAX_PAGE = 1000
FORM_CODE = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
SESSION_CLOSED = 21180


@dataclass
class _Invoice:
    reference: str
    session: _Session
    ordinal: int
    received: datetime
    due: float
    invoice_hash: str
    xml: bytes | None
    facts: InvoiceFacts | None
    code: int = 150
    description: str = "Trwa przetwarzanie"
    details: list[str] = field(default_factory=list)
    extensions: dict[str, str] | None = None
    ksef_number: str | None = None
    accepted: datetime | None = None

    @property
    def final(self) -> bool:
        return self.code >= 200


@dataclass
class _Session:
    reference: str
    nip: str
    key: bytes
    iv: bytes
    created: datetime
    valid_until: datetime
    updated: datetime
    closed: bool = False
    upo_reference: str | None = None
    invoices: list[_Invoice] = field(default_factory=list)


@dataclass(frozen=True)
class _Route:
    method: str
    path: tuple[str, ...]
    credential: str
    """``none``, ``authentication``, ``access`` or ``refresh``."""
    handler: Callable[[Request, tuple[str, ...], str], Answer]

    def match(self, request: Request) -> tuple[str, ...] | None:
        if request.method != self.method or len(request.path) != len(self.path):
            return None
        params: list[str] = []
        for pattern, segment in zip(self.path, request.path, strict=True):
            if pattern == "{}":
                params.append(segment)
            elif pattern != segment:
                return None
        return tuple(params)


class KsefApi:
    """KSeF's state in memory and its answers; thread-safe (one lock). ``base_url``
    gives the simulator's URL for the UPO links it lists."""

    def __init__(self, keys: KeyRing, base_url: Callable[[], str], *, seed: int | None,
                 processing_seconds: float) -> None:
        self._keys = keys
        self._base_url = base_url
        self._rng = random.Random(seed)
        self._processing = processing_seconds
        self._lock = threading.Lock()
        self._logins = Logins(keys, self._rng)
        self._routes = self._declare()
        self.reset()

    def reset(self) -> None:
        """Forget tokens, logins, sessions and invoices (keys and the CA stay)."""
        with self._lock:
            self._logins.reset()
            self._sessions: dict[str, _Session] = {}
            self._pending: list[_Invoice] = []
            self._accepted: dict[tuple[str, str, str], _Invoice] = {}
            self._all_invoices: list[_Invoice] = []
            self._uploads: Counter[tuple[str, str, str]] = Counter()
            self._counts: Counter[str] = Counter()

    # --- for the simulator ---------------------------------------------------------

    def issue_token(self, nip: str) -> str:
        """A new KSeF token for context ``nip`` (shaped like KSeF's: reference, NIP and
        a secret, separated by ``|``)."""
        with self._lock:
            return self._logins.issue_token(nip)

    def state(self) -> Obj:
        """Accepted and rejected invoices, upload, login and session counts."""
        with self._lock:
            self._settle()
            accepted = [self._invoice_state(invoice) for invoice in self._all_invoices
                        if invoice.code == 200]
            rejected = [{**self._invoice_state(invoice), "code": invoice.code,
                         "description": invoice.description, "details": invoice.details}
                        for invoice in self._all_invoices if invoice.code >= 300]
            return {
                "accepted": accepted,
                "rejected": rejected,
                "processing": sum(not invoice.final for invoice in self._all_invoices),
                "uploads": self._counts["uploads"],
                "logins": {name: self._logins.counts[name]
                           for name in ("token", "certificate", "refused")},
                "sessions": [{"reference": session.reference, "nip": session.nip,
                              "closed": session.closed, "invoices": len(session.invoices)}
                             for session in self._sessions.values()],
            }

    def _invoice_state(self, invoice: _Invoice) -> Obj:
        facts = invoice.facts or InvoiceFacts("", "", "", "")
        return {"seller_nip": facts.seller_nip, "kind": facts.kind,
                "invoice_number": facts.number, "ksef_number": invoice.ksef_number,
                "session": invoice.session.reference, "reference": invoice.reference,
                "uploads": self._uploads[facts.key] if invoice.facts else 1}

    def answer(self, request: Request) -> Answer:
        """KSeF's answer to ``request`` (the work done, if any, under the lock)."""
        for route in self._routes:
            params = route.match(request)
            if params is None:
                continue
            with self._lock:
                try:
                    self._settle()
                    nip = ("" if route.credential == "none" else
                           self._logins.authorize(request, route.credential))
                    return route.handler(request, params, nip)
                except Refusal as refused:
                    return refused.answer
        known = any(len(route.path) == len(request.path) and all(
            pattern in ("{}", segment) for pattern, segment in zip(
                route.path, request.path, strict=True)) for route in self._routes)
        if known:
            return json_answer(405, {"title": "Method Not Allowed", "status": 405,
                                     "detail": f"{request.method} is not allowed here"},
                               "application/problem+json")
        return refusal(404, NOT_FOUND, "Nie znaleziono zasobu.",
                       f"/v2/{'/'.join(request.path)}"[:200]).answer

    # --- routing ---------------------------------------------------------

    def _declare(self) -> list[_Route]:
        logins = self._logins
        table: list[tuple[str, str, str, Callable[[Request, tuple[str, ...], str], Answer]]]
        table = [
            ("GET", "security/public-key-certificates", "none", logins.public_keys),
            ("POST", "auth/challenge", "none", logins.challenge),
            ("POST", "auth/ksef-token", "none", logins.token_login),
            ("POST", "auth/xades-signature", "none", logins.xades_login),
            ("POST", "auth/token/redeem", "authentication", logins.redeem),
            ("POST", "auth/token/refresh", "refresh", logins.refresh),
            ("GET", "auth/{}", "authentication", logins.status),
            ("POST", "sessions/online", "access", self._open_session),
            ("POST", "sessions/online/{}/close", "access", self._close_session),
            ("POST", "sessions/online/{}/invoices", "access", self._upload),
            ("GET", "sessions/{}", "access", self._session_status),
            ("GET", "sessions/{}/invoices", "access", self._session_invoices),
            ("GET", "sessions/{}/invoices/failed", "access", self._session_invoices),
            ("GET", "sessions/{}/invoices/{}", "access", self._invoice_status),
            ("GET", "sessions/{}/invoices/{}/upo", "access", self._invoice_upo),
            ("GET", "sessions/{}/invoices/ksef/{}/upo", "access", self._invoice_upo_by_number),
            ("GET", "sessions/{}/upo/{}", "access", self._session_upo),
        ]
        return [_Route(method, tuple(path.split("/")), credential, handler)
                for method, path, credential, handler in table]

    # --- sessions ------------------------------------------------------------------

    def _open_session(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        body = parse_json(request.body)
        form = body.get("formCode")
        if not isinstance(form, dict) or {name: form.get(name) for name in FORM_CODE} != (
                FORM_CODE):
            raise invalid("'formCode' must be systemCode 'FA (3)', schemaVersion '1-0E', "
                          "value 'FA'.")
        encryption = body.get("encryption")
        if not isinstance(encryption, dict):
            raise invalid("'encryption' must not be empty.")
        encrypted_key = b64(encryption.get("encryptedSymmetricKey"), "encryptedSymmetricKey")
        iv = b64(encryption.get("initializationVector"), "initializationVector")
        try:
            key = self._keys.decrypt(SYMMETRIC_KEY_ENCRYPTION, encrypted_key)
        except ValueError:
            raise invalid("Nie udało się odszyfrować klucza symetrycznego (RSA-OAEP SHA-256 "
                          "kluczem SymmetricKeyEncryption).") from None
        if len(key) != 32 or len(iv) != 16:
            raise invalid("Expected a 256-bit AES key and a 16-byte initialization vector.")
        moment = now()
        session = _Session(reference(self._rng, "SO"), nip, key, iv, moment,
                           moment + timedelta(seconds=SESSION_SECONDS), moment)
        self._sessions[session.reference] = session
        return json_answer(201, {"referenceNumber": session.reference,
                                 "validUntil": stamp(session.valid_until)})

    def _session(self, reference: str, nip: str) -> _Session:
        session = self._sessions.get(reference)
        if session is None or session.nip != nip:
            raise refusal(404, NOT_FOUND, "Sesja o podanym numerze referencyjnym nie "
                          "istnieje.", reference[:80])
        return session

    def _open(self, reference: str, nip: str) -> _Session:
        session = self._session(reference, nip)
        if session.closed or session.valid_until < now():
            raise refusal(400, SESSION_CLOSED, "Status sesji nie pozwala na wykonanie "
                          "operacji.", f"Sesja {reference} jest zamknięta.")
        return session

    def _close_session(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        session = self._open(params[0], nip)
        session.closed = True
        session.updated = now()
        return Answer(204)

    def _upload(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        session = self._open(params[0], nip)
        body = parse_json(request.body)
        encrypted = b64(body.get("encryptedInvoiceContent"), "encryptedInvoiceContent")
        if body.get("encryptedInvoiceSize") != len(encrypted):
            raise invalid(f"'encryptedInvoiceSize' is {body.get('encryptedInvoiceSize')!r} "
                          f"but the encrypted invoice has {len(encrypted)} bytes.")
        if body.get("encryptedInvoiceHash") != sha256(encrypted):
            raise invalid("'encryptedInvoiceHash' is not the SHA-256 (base64) of the "
                          "encrypted invoice.")
        xml = _decrypt(encrypted, session.key, session.iv)
        if xml is not None:
            if len(xml) > MAX_INVOICE_BYTES:
                raise invalid(f"The invoice is over {MAX_INVOICE_BYTES} bytes.")
            if body.get("invoiceSize") != len(xml):
                raise invalid(f"'invoiceSize' is {body.get('invoiceSize')!r} but the "
                              f"decrypted invoice has {len(xml)} bytes.")
            if body.get("invoiceHash") != sha256(xml):
                raise invalid("'invoiceHash' is not the SHA-256 (base64) of the decrypted "
                              "invoice.")
        facts = invoice_facts(xml) if xml is not None else None
        moment = now()
        invoice = _Invoice(reference(self._rng, "EE"), session, len(session.invoices) + 1, moment,
                           time.monotonic() + self._processing,
                           str(body.get("invoiceHash", "")), xml, facts)
        session.invoices.append(invoice)
        session.updated = moment
        self._pending.append(invoice)
        self._all_invoices.append(invoice)
        self._counts["uploads"] += 1
        if facts is not None:
            self._uploads[facts.key] += 1
        return json_answer(202, {"referenceNumber": invoice.reference})

    # --- processing ----------------------------------------------------------------

    def _settle(self) -> None:
        """Give every invoice whose processing time is over its final status, in upload
        order."""
        clock = time.monotonic()
        while self._pending and self._pending[0].due <= clock:
            self._finish(self._pending.pop(0))

    def _finish(self, invoice: _Invoice) -> None:
        session = invoice.session
        if invoice.xml is None:
            self._reject(invoice, 435, "Błąd odszyfrowania pliku",
                         "Nie udało się odszyfrować faktury kluczem sesji (AES-256-CBC, "
                         "PKCS#7).")
            return
        problem = invoice_problem(invoice.xml)
        facts = invoice.facts
        if problem is not None or facts is None:
            self._reject(invoice, 450, "Błąd weryfikacji semantyki dokumentu faktury",
                         problem or "Nieprawidłowy XML")
            return
        received_on = invoice.received.astimezone(WARSAW).date().isoformat()
        if facts.issue_date > received_on:  # ISO dates compare as text
            self._reject(invoice, 450, "Błąd weryfikacji semantyki dokumentu faktury",
                         f"Data wystawienia faktury (P_1) {facts.issue_date} jest późniejsza "
                         f"niż data jej przyjęcia w KSeF {received_on} (czas polski).")
            return
        if facts.seller_nip != session.nip:
            self._reject(invoice, 410, "Nieprawidłowy zakres uprawnień",
                         f"NIP sprzedawcy {facts.seller_nip} nie jest NIP-em kontekstu "
                         f"sesji {session.nip}.")
            return
        original = self._accepted.get(facts.key)
        if original is not None:
            self._reject(invoice, 440, "Duplikat faktury",
                         f"Duplikat faktury. Faktura o numerze KSeF: {original.ksef_number} "
                         "została już prawidłowo przesłana do systemu w sesji: "
                         f"{original.session.reference}")
            invoice.extensions = {"originalSessionReferenceNumber": original.session.reference,
                                  "originalKsefNumber": original.ksef_number or ""}
            return
        invoice.code, invoice.description = 200, "Sukces"
        invoice.accepted = now()
        invoice.ksef_number = self._new_ksef_number(facts.seller_nip, invoice.received)
        self._accepted[facts.key] = invoice

    @staticmethod
    def _reject(invoice: _Invoice, code: int, description: str, detail: str) -> None:
        invoice.code, invoice.description, invoice.details = code, description, [detail]

    def _new_ksef_number(self, nip: str, received: datetime) -> str:
        taken = {invoice.ksef_number for invoice in self._accepted.values()}
        while True:
            number = ksef_number(nip, received.astimezone(WARSAW).date(),
                                 f"{self._rng.getrandbits(48):012X}")
            if number not in taken:
                return number

    # --- reading status ------------------------------------------------------------

    def _session_status(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        session = self._session(params[0], nip)
        invoices = session.invoices
        successful = sum(invoice.code == 200 for invoice in invoices)
        failed = sum(invoice.code >= 300 for invoice in invoices)
        data: Obj = {"dateCreated": stamp(session.created),
                     "dateUpdated": stamp(session.updated),
                     "validUntil": stamp(session.valid_until),
                     "invoiceCount": len(invoices), "successfulInvoiceCount": successful,
                     "failedInvoiceCount": failed}
        if not session.closed:
            data["status"] = {"code": 100, "description": "Sesja interaktywna otwarta"}
        elif not all(invoice.final for invoice in invoices):
            data["status"] = {"code": 170, "description": "Sesja interaktywna zamknięta"}
        elif not invoices:
            data["status"] = {"code": 440, "description": "Sesja anulowana",
                              "details": ["Nie przesłano faktur"]}
        elif not successful:
            data["status"] = {"code": 445, "description": "Błąd weryfikacji, brak poprawnych "
                              "faktur"}
        else:
            data["status"] = {"code": 200, "description": "Sesja interaktywna przetworzona "
                              "pomyślnie"}
            if session.upo_reference is None:
                session.upo_reference = reference(self._rng, "UP")
            expires = now() + timedelta(hours=1)
            data["upo"] = {"pages": [{
                "referenceNumber": session.upo_reference,
                "downloadUrl": f"{self._base_url()}/v2/sessions/{session.reference}/upo/"
                               f"{session.upo_reference}",
                "downloadUrlExpirationDate": stamp(expires)}]}
        return json_answer(200, data)

    def _session_invoices(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        session = self._session(params[0], nip)
        invoices = session.invoices
        if request.path[-1] == "failed":
            invoices = [invoice for invoice in invoices if invoice.code >= 300]
        size_text = request.query.get("pageSize", str(DEFAULT_PAGE))
        if not size_text.isdigit() or not DEFAULT_PAGE <= int(size_text) <= MAX_PAGE:
            raise invalid(f"'pageSize' must be from {DEFAULT_PAGE} to {MAX_PAGE}.")
        start_text = request.headers.get("x-continuation-token", "0") or "0"
        if not start_text.isdigit() or int(start_text) > len(invoices):
            raise invalid("'x-continuation-token' was not given by this session.")
        start, size = int(start_text), int(size_text)
        data: Obj = {"invoices": [self._invoice_json(invoice)
                                  for invoice in invoices[start:start + size]]}
        if start + size < len(invoices):
            data["continuationToken"] = str(start + size)
        return json_answer(200, data)

    def _invoice(self, params: tuple[str, ...], nip: str) -> _Invoice:
        session = self._session(params[0], nip)
        for invoice in session.invoices:
            if invoice.reference == params[1]:
                return invoice
        raise refusal(404, NOT_FOUND, "Faktura o podanym identyfikatorze nie istnieje.",
                      params[1][:80])

    def _invoice_status(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        return json_answer(200, self._invoice_json(self._invoice(params, nip)))

    def _invoice_json(self, invoice: _Invoice) -> Obj:
        status: Obj = {"code": invoice.code, "description": invoice.description}
        if invoice.details:
            status["details"] = list(invoice.details)
        if invoice.extensions:
            status["extensions"] = dict(invoice.extensions)
        data: Obj = {"ordinalNumber": invoice.ordinal, "referenceNumber": invoice.reference,
                     "invoicingDate": stamp(invoice.received),
                     "invoiceHash": invoice.invoice_hash, "invoicingMode": "Online",
                     "status": status}
        if invoice.facts is not None and invoice.facts.number:
            data["invoiceNumber"] = invoice.facts.number
        if invoice.ksef_number is not None and invoice.accepted is not None:
            data["ksefNumber"] = invoice.ksef_number
            data["acquisitionDate"] = stamp(invoice.accepted)
            data["permanentStorageDate"] = stamp(invoice.accepted)
        return data

    def _upo_answer(self, session: _Session, invoices: list[_Invoice]) -> Answer:
        entries = [UpoEntry(invoice.facts.seller_nip, invoice.ksef_number,
                            invoice.facts.number, invoice.facts.issue_date, invoice.received,
                            invoice.accepted, invoice.invoice_hash)
                   for invoice in invoices
                   if invoice.facts and invoice.ksef_number and invoice.accepted]
        return Answer(200, upo_xml(session.reference, session.nip, entries),
                      "application/xml; charset=utf-8")

    def _invoice_upo(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        invoice = self._invoice(params, nip)
        if invoice.code != 200:
            raise invalid(f"UPO nie jest dostępne: faktura {invoice.reference} nie została "
                          f"przyjęta (status {invoice.code}).")
        return self._upo_answer(invoice.session, [invoice])

    def _invoice_upo_by_number(self, request: Request, params: tuple[str, ...],
                               nip: str) -> Answer:
        session = self._session(params[0], nip)
        found = [invoice for invoice in session.invoices if invoice.ksef_number == params[1]]
        if not found:
            raise refusal(404, NOT_FOUND, "Faktura o podanym numerze KSeF nie istnieje w tej "
                          "sesji.", params[1][:80])
        return self._upo_answer(session, found)

    def _session_upo(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        session = self._session(params[0], nip)
        if session.upo_reference is None or session.upo_reference != params[1]:
            raise refusal(404, NOT_FOUND, "UPO o podanym numerze referencyjnym nie istnieje.",
                          params[1][:80])
        return self._upo_answer(session, [invoice for invoice in session.invoices
                                          if invoice.code == 200])


def _decrypt(data: bytes, key: bytes, iv: bytes) -> bytes | None:
    """AES-256-CBC with PKCS#7 padding; None if ``data`` does not decrypt."""
    if not data or len(data) % 16:
        return None
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None
