"""The KSeF port (:mod:`engine.ports.ksef`) on the ``ksef-client`` SDK (KSeF API 2.0).

Errors, one line each, never holding a token, a key, a certificate or a header:

==========================  ===========================================================
class                       when
==========================  ===========================================================
``KsefRefusedError``        a 4xx other than 429 (KSeF's own message quoted), a 401
                            after a new login, a login KSeF did not accept (auth status
                            other than 200), credentials that cannot be used
``KsefUnavailableError``    every attempt failed on 429, 5xx or a transport error; an
                            upload whose answer was lost (see :meth:`SdkKsefSession.send`);
                            a login that did not finish in time; an answer the SDK
                            could not read
``KsefDocumentError``       :meth:`SdkKsefClient.render` (see :mod:`.ksef_fa3`)
==========================  ===========================================================

A request is tried up to ``max_attempts`` times: again after a 429 (waiting its
``Retry-After``, at most ``max_retry_after`` seconds), a 5xx or a transport error, after
a pause drawn uniformly from 0 to ``min(backoff_max, backoff_base * 2 ** (failures - 1))``
(full jitter). The access token is refreshed shortly before it expires and once on a 401;
if the refresh token is refused too, the connection logs in again.
"""

from __future__ import annotations

import functools
import logging
import random as random_module
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import ksef_client
from ksef_client import KsefClientOptions, KsefHttpError, KsefRateLimitError
from ksef_client.models import FormCode, PublicKeyCertificateUsage, SessionInvoicesResponse
from ksef_client.services.crypto import EncryptionData
from ksef_client.services.workflows import AuthCoordinator, AuthResult, OnlineSessionWorkflow
from ksef_client.utils.datetime_parsing import try_parse_api_datetime
from ksef_client.utils.ksef_number import validate_ksef_number

from engine.adapters.ksef_fa3 import DEFAULT_EXEMPTION_BASIS, render_fa3
from engine.ports.ksef import (
    STATUS_DUPLICATE,
    KsefClient,
    KsefConnection,
    KsefCredentials,
    KsefInvoiceDocument,
    KsefInvoiceStatus,
    KsefRefusedError,
    KsefSession,
    KsefUnavailableError,
    SentInvoice,
)

T = TypeVar("T")
SdkFactory = Callable[[KsefClientOptions], ksef_client.KsefClient]

log = logging.getLogger(__name__)

FA3_FORM_CODE = FormCode(schema_version="1-0E", system_code="FA (3)", value="FA")
KSEF_NUMBER = re.compile(r"\b\d{10}-\d{8}-[0-9A-F]{12}-[0-9A-F]{2}\b")
MAX_MESSAGE_CHARS = 300
LOST_ANSWER_ERRORS = (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError)
"""Transport errors after a request was sent: KSeF may have acted on it."""
UNUSABLE_REQUEST_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


@dataclass(frozen=True)
class SdkKsefOptions:
    """Timeouts, retries and login polling; the defaults suit KSeF's public environments.

    ``token_refresh_margin``: seconds before the access token's expiry when it is renewed.
    """

    timeout_seconds: float = 30.0
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0
    auth_poll_interval: float = 0.2
    auth_poll_attempts: int = 150
    token_refresh_margin: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts!r}")
        if not 0 <= self.backoff_base <= self.backoff_max:
            raise ValueError("backoff must have 0 <= backoff_base <= backoff_max")
        if not (self.timeout_seconds > 0 and self.auth_poll_attempts >= 1):
            raise ValueError("timeout_seconds and auth_poll_attempts must be positive")


class SdkKsefClient(KsefClient):
    """KSeF through ``ksef-client``. ``sdk_factory`` builds the SDK's client from its
    options (tests: one with a mock transport); ``sleep`` and ``random`` pace retries;
    ``exemption_basis`` is the legal basis exempt (``zw``) invoices name."""

    def __init__(
        self,
        options: SdkKsefOptions | None = None,
        *,
        exemption_basis: str = DEFAULT_EXEMPTION_BASIS,
        sdk_factory: SdkFactory = ksef_client.KsefClient,
        sleep: Callable[[float], None] = time.sleep,
        random: random_module.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._options = options or SdkKsefOptions()
        self._exemption_basis = exemption_basis
        self._sdk_factory = sdk_factory
        self._retrying = _Retrying(self._options, sleep,
                                   random if random is not None else random_module.Random())
        self._clock = clock

    def render(self, document: KsefInvoiceDocument) -> bytes:
        return render_fa3(document, exemption_basis=self._exemption_basis)

    def is_ksef_number(self, text: str) -> bool:
        return validate_ksef_number(text).is_valid

    def connect(self, credentials: KsefCredentials) -> SdkKsefConnection:
        sdk = self._sdk_factory(KsefClientOptions(
            base_url=credentials.base_url, timeout_seconds=self._options.timeout_seconds))
        connection = SdkKsefConnection(sdk, credentials, self._options, self._retrying,
                                       self._clock)
        try:
            connection.log_in()
        except BaseException:
            connection.close()
            raise
        return connection


class SdkKsefConnection(KsefConnection):
    """A logged-in SDK client for one NIP. Thread-safe: the token is renewed under a
    lock; sessions may be used from several threads."""

    def __init__(self, sdk: ksef_client.KsefClient, credentials: KsefCredentials,
                 options: SdkKsefOptions, retrying: _Retrying,
                 clock: Callable[[], datetime]) -> None:
        self._sdk = sdk
        self._credentials = credentials
        self._options = options
        self._retrying = retrying
        self._clock = clock
        self._lock = threading.Lock()
        self._access_token = ""
        self._refresh_token = ""
        self._expires_at = datetime.min.replace(tzinfo=UTC)
        self._sessions: dict[str, SdkKsefSession] = {}
        self._secrets = tuple(secret for secret in (credentials.token,) if secret)

    def log_in(self) -> None:
        """Authenticate with the KSeF token or the XAdES certificate.

        :raises KsefRefusedError: if KSeF refused the login or the credentials are unusable.
        :raises KsefUnavailableError: if KSeF could not be reached or did not finish.
        """
        credentials = self._credentials
        if credentials.method == "certificate" and not (
                credentials.certificate_pem and credentials.private_key_pem):
            raise KsefRefusedError(
                f"KSeF login for NIP {credentials.nip}: give a KSeF token or a certificate "
                "with its private key")
        result = self._retrying.call("KSeF login", self._authenticate, secrets=self._secrets)
        with self._lock:
            self._keep(result.access_token, result.tokens.access_token.valid_until)
            self._refresh_token = result.refresh_token

    def open_session(self) -> SdkKsefSession:
        certificate = self._retrying.call(
            "KSeF public key", lambda: self._sdk.security.get_public_key_certificate_pem(
                PublicKeyCertificateUsage.SYMMETRICKEYENCRYPTION))
        workflow = OnlineSessionWorkflow(self._sdk.sessions)
        handle = self.authorized("KSeF open session", lambda token: workflow.open_session(
            form_code=FA3_FORM_CODE, public_certificate=certificate, access_token=token))
        session = SdkKsefSession(self, workflow, handle.reference_number,
                                 handle.encryption_data)
        with self._lock:
            self._sessions[session.reference] = session
        return session

    def invoice_status(self, sent: SentInvoice) -> KsefInvoiceStatus:
        answer = self.authorized(
            "KSeF invoice status", lambda token: self._sdk.sessions.get_session_invoice_status(
                sent.session_reference, sent.invoice_reference, access_token=token))
        status = answer.status
        details = tuple(" ".join(str(detail).split()) for detail in status.details or ())
        ksef_number = answer.ksef_number
        if status.code == STATUS_DUPLICATE and not ksef_number:
            original = (status.extensions or {}).get("originalKsefNumber")
            found = KSEF_NUMBER.search(" ".join(details))
            ksef_number = original or (found.group(0) if found else None)
        return KsefInvoiceStatus(
            code=status.code, description=" ".join(status.description.split()),
            details=details, ksef_number=ksef_number or None,
            accepted_at=try_parse_api_datetime(answer.acquisition_date))

    def uploads_in(self, session_reference: str) -> dict[str, str]:
        """Page through the session's invoices (KSeF lists every upload it received)."""
        uploads: dict[str, str] = {}
        continuation: str | None = None
        while True:
            page = self.authorized("KSeF session invoices", functools.partial(
                self._session_invoices, session_reference, continuation))
            uploads.update((invoice.invoice_hash, str(invoice.reference_number))
                           for invoice in page.invoices
                           if invoice.invoice_hash and invoice.reference_number)
            continuation = page.continuation_token
            if not continuation:
                return uploads

    def _session_invoices(self, session_reference: str, continuation: str | None,
                          token: str) -> SessionInvoicesResponse:
        return self._sdk.sessions.get_session_invoices(
            session_reference, page_size=100, continuation_token=continuation,
            access_token=token)

    def upo(self, sent: SentInvoice) -> str:
        content = self.authorized(
            "KSeF UPO", lambda token: self._sdk.sessions.get_session_invoice_upo_by_ref(
                sent.session_reference, sent.invoice_reference, access_token=token))
        return content.decode("utf-8")

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            try:
                session.close()
            except Exception as error:  # closing is best effort; the session expires
                log.warning("closing KSeF session %s failed: %s", session.reference, error)
        try:
            self._sdk.close()
        except Exception as error:
            log.warning("closing the KSeF client failed: %s", type(error).__name__)

    def authorized(self, what: str, action: Callable[[str], T], *,
                   lost_answer_is_final: bool = False) -> T:
        """``action(access_token)`` with retries; a 401 renews the token once."""
        renewed = False
        while True:
            token = self._current_token()
            try:
                return self._retrying.call(what, functools.partial(action, token),
                                           secrets=(*self._secrets, token),
                                           lost_answer_is_final=lost_answer_is_final)
            except _UnauthorizedError:
                if renewed:
                    raise
                renewed = True
                log.info("%s: 401, renewing the access token", what)
                self._renew(token)

    def forget(self, session: SdkKsefSession) -> None:
        with self._lock:
            self._sessions.pop(session.reference, None)

    def _authenticate(self) -> AuthResult:
        credentials = self._credentials
        coordinator = AuthCoordinator(self._sdk.auth)
        interval, polls = self._options.auth_poll_interval, self._options.auth_poll_attempts
        try:
            if credentials.token is not None:
                certificate = self._sdk.security.get_public_key_certificate_pem(
                    PublicKeyCertificateUsage.KSEFTOKENENCRYPTION)
                return coordinator.authenticate_with_ksef_token(
                    token=credentials.token, public_certificate=certificate,
                    context_identifier_type="nip", context_identifier_value=credentials.nip,
                    poll_interval_seconds=interval, max_attempts=polls)
            return coordinator.authenticate_with_xades(
                context_identifier_type="nip", context_identifier_value=credentials.nip,
                subject_identifier_type="certificateSubject",
                certificate_pem=credentials.certificate_pem or "",
                private_key_pem=credentials.private_key_pem or "",
                poll_interval_seconds=interval, max_attempts=polls)
        except KsefHttpError:
            raise
        except TimeoutError:
            seconds = self._options.auth_poll_interval * self._options.auth_poll_attempts
            raise KsefUnavailableError(
                f"KSeF login for NIP {credentials.nip} did not finish within {seconds:.0f} s"
            ) from None
        except RuntimeError as error:
            raise KsefRefusedError(
                f"KSeF refused the login for NIP {credentials.nip}: "
                f"{_one_line(str(error), self._secrets)}") from None
        except (ValueError, TypeError) as error:
            raise KsefRefusedError(
                f"KSeF login for NIP {credentials.nip} cannot be done with these credentials: "
                f"{_one_line(str(error), self._secrets)}") from None

    def _current_token(self) -> str:
        with self._lock:
            token = self._access_token
            margin = timedelta(seconds=self._options.token_refresh_margin)
            fresh = self._clock() + margin < self._expires_at
        if not fresh:
            self._renew(token)
            with self._lock:
                token = self._access_token
        return token

    def _renew(self, stale_token: str) -> None:
        """A new access token (unless another thread renewed ``stale_token`` already):
        refreshed, or, if the refresh token is refused, from a new login."""
        with self._lock:
            if self._access_token != stale_token:
                return
            refresh_token = self._refresh_token
        try:
            answer = self._retrying.call(
                "KSeF token refresh",
                lambda: self._sdk.auth.refresh_access_token(refresh_token),
                secrets=(*self._secrets, refresh_token, stale_token))
        except KsefRefusedError:
            self.log_in()
            return
        with self._lock:
            self._keep(answer.access_token.token, answer.access_token.valid_until)

    def _keep(self, access_token: str, valid_until: str | None) -> None:
        self._access_token = access_token
        expiry = try_parse_api_datetime(valid_until)
        if expiry is not None and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        self._expires_at = expiry or self._clock() + timedelta(minutes=10)


class SdkKsefSession(KsefSession):
    """An online FA(3) session: invoices are encrypted with its AES key."""

    def __init__(self, connection: SdkKsefConnection, workflow: OnlineSessionWorkflow,
                 reference: str, encryption: EncryptionData) -> None:
        self.reference = reference
        self._connection = connection
        self._workflow = workflow
        self._encryption = encryption
        self._closed = False

    def send(self, xml: bytes) -> SentInvoice:
        """Upload one invoice.

        A 429 or 5xx answer, or a transport error before the request went out, is retried.
        A lost answer (the connection broke or timed out while reading it) is not: KSeF may
        have received the invoice, so :class:`KsefUnavailableError` is raised and the caller,
        which recorded the invoice's hash before sending, decides (KSeF reports a repeated
        upload of the same invoice as a duplicate, 440, with the original's number).
        """
        answer = self._connection.authorized(
            "KSeF send invoice", lambda token: self._workflow.send_invoice(
                session_reference_number=self.reference, invoice_xml=xml,
                encryption_data=self._encryption, access_token=token),
            lost_answer_is_final=True)
        return SentInvoice(session_reference=self.reference,
                           invoice_reference=answer.reference_number)

    def close(self) -> None:
        if self._closed:
            return
        self._connection.authorized("KSeF close session", lambda token: (
            self._workflow.close_session(self.reference, token)))
        self._closed = True
        self._connection.forget(self)


class _UnauthorizedError(KsefRefusedError):
    """KSeF answered 401: the access token is no longer accepted."""


class _Retrying:
    """Runs SDK calls, retrying what may succeed later, and turns the SDK's errors into
    the port's."""

    def __init__(self, options: SdkKsefOptions, sleep: Callable[[float], None],
                 random: random_module.Random) -> None:
        self._options = options
        self._sleep = sleep
        self._random = random

    def call(self, what: str, action: Callable[[], T], *, secrets: tuple[str, ...] = (),
             lost_answer_is_final: bool = False) -> T:
        attempts = self._options.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except KsefHttpError as error:
                cause, retry_after = self._classify(what, error, secrets, lost_answer_is_final)
            except (ValueError, TypeError, KeyError) as error:
                raise KsefUnavailableError(
                    f"{what}: an answer KSeF's client could not read: "
                    f"{_one_line(f'{type(error).__name__}: {error}', secrets)}") from None
            if attempt == attempts:
                raise KsefUnavailableError(
                    f"{what} failed after {attempts} attempts; the last: {cause}")
            pause = self._pause(attempt, retry_after)
            log.info("%s: %s; attempt %d of %d in %.1f s", what, cause, attempt + 1, attempts,
                     pause)
            self._sleep(pause)
        raise AssertionError("unreachable")

    def _classify(self, what: str, error: KsefHttpError, secrets: tuple[str, ...],
                  lost_answer_is_final: bool) -> tuple[str, float | None]:
        """(the cause, ``Retry-After`` seconds) of a failure worth retrying; raises the
        port's error for any other."""
        status = error.status_code
        if status == 0:
            transport = error.__cause__
            cause = _one_line(f"{type(transport).__name__}: {transport}", secrets)
            if isinstance(transport, UNUSABLE_REQUEST_ERRORS) or not isinstance(
                    transport, httpx.TransportError):
                raise KsefRefusedError(f"{what} cannot be done: {cause}")
            if lost_answer_is_final and isinstance(transport, LOST_ANSWER_ERRORS):
                raise KsefUnavailableError(
                    f"{what}: the answer was lost ({cause}); KSeF may have received the "
                    "request, so it is not repeated")
            return cause, None
        message = _ksef_message(error, secrets)
        if isinstance(error, KsefRateLimitError) or status == 429 or status >= 500:
            retry_after = None if error.retry_after is None else float(error.retry_after)
            return f"HTTP {status}: {message}", retry_after
        if status == 401:
            raise _UnauthorizedError(f"{what} refused: HTTP 401: {message}")
        raise KsefRefusedError(f"{what} refused: HTTP {status}: {message}")

    def _pause(self, failed: int, retry_after: float | None) -> float:
        options = self._options
        ceiling = min(options.backoff_max, options.backoff_base * 2.0 ** min(failed - 1, 62))
        pause = self._random.uniform(0.0, ceiling)
        if retry_after is not None:
            pause = max(pause, min(retry_after, options.max_retry_after))
        return pause


def _ksef_message(error: KsefHttpError, secrets: tuple[str, ...]) -> str:
    """KSeF's own explanation of a refusal: the exception's codes and descriptions, or the
    problem's title and detail; never the body otherwise."""
    body: Any = error.response_body
    parts: list[str] = []
    if isinstance(body, dict):
        exception = body.get("exception")
        if isinstance(exception, dict):
            for item in exception.get("exceptionDetailList") or ():
                if isinstance(item, dict):
                    text = f"{item.get('exceptionCode', '')} {item.get('exceptionDescription', '')}"
                    details = item.get("details")
                    if isinstance(details, list) and details:
                        text += ": " + "; ".join(str(detail) for detail in details)
                    parts.append(text.strip())
        for key in ("title", "detail"):
            if isinstance(body.get(key), str):
                parts.append(body[key])
        for item in body.get("errors") or ():
            if isinstance(item, dict) and item.get("description"):
                parts.append(str(item["description"]))
        status = body.get("status")
        if isinstance(status, dict) and status.get("description"):
            parts.append(str(status["description"]))
    return _one_line("; ".join(parts) or "(no message)", secrets)


def _one_line(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:MAX_MESSAGE_CHARS]
