"""The SDK adapter against a KSeF played by ``httpx.MockTransport``: login, sessions,
status and UPO; retries after 429, 5xx and transport errors; refusals with KSeF's own
message and never a token; a lost upload answer is not repeated."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import ksef_client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from engine.adapters.ksef_sdk import SdkKsefClient, SdkKsefOptions
from engine.ports.ksef import (
    KsefCredentials,
    KsefRefusedError,
    KsefUnavailableError,
    SentInvoice,
)

TOKEN = "20261201-EC-SECRETKSEFTOKEN|nip-4477127826|0123456789abcdef"
BASE = "/v2"
KSEF_NUMBER = "4477127826-20261201-0A1B2C3D4E5F-7A"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
Answer = httpx.Response | Exception


def self_signed() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KSeF test")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(NOW - timedelta(days=1))
                   .not_valid_after(datetime.now(UTC) + timedelta(days=3650))
                   .sign(key, hashes.SHA256()))
    return certificate, key


KSEF_CERTIFICATE, _ = self_signed()
CERTIFICATE = base64.b64encode(KSEF_CERTIFICATE.public_bytes(serialization.Encoding.DER)).decode()
"""KSeF's public key certificate as KSeF lists it (base64 DER)."""


class FakeKsef:
    """KSeF's answers by method and path; ``queued`` answers (or errors) come first."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.queued: dict[tuple[str, str], list[Answer]] = {}
        self.auth_status = {"code": 200, "description": "Uwierzytelnianie zakończone sukcesem"}
        self.invoice_status: dict[str, Any] = {"code": 200, "description": "Sukces"}
        self.access_tokens = iter(f"access-{n}" for n in range(1, 100))
        self.valid_for = timedelta(minutes=15)

    def queue(self, method: str, path: str, *answers: Answer) -> None:
        self.queued.setdefault((method, path), []).extend(answers)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, BASE + path)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path.removeprefix(BASE))
        if self.queued.get(key):
            answer = self.queued[key].pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self.answer(*key)

    def token(self) -> dict[str, str]:
        return {"token": next(self.access_tokens),
                "validUntil": (NOW + self.valid_for).isoformat()}

    def answer(self, method: str, path: str) -> httpx.Response:
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/security/public-key-certificates"): lambda: [
                {"certificate": CERTIFICATE, "certificateId": "c1", "publicKeyId": "k1",
                 "usage": ["KsefTokenEncryption", "SymmetricKeyEncryption"],
                 "validFrom": "2025-01-01T00:00:00Z", "validTo": "2035-01-01T00:00:00Z"}],
            ("POST", "/auth/challenge"): lambda: {
                "challenge": "20261201-CR-1", "timestamp": NOW.isoformat(),
                "timestampMs": int(NOW.timestamp() * 1000)},
            ("POST", "/auth/xades-signature"): lambda: {
                "referenceNumber": "20261201-AU-1",
                "authenticationToken": {"token": "auth-token", "validUntil": NOW.isoformat()}},
            ("POST", "/auth/ksef-token"): lambda: {
                "referenceNumber": "20261201-AU-1",
                "authenticationToken": {"token": "auth-token", "validUntil": NOW.isoformat()}},
            ("GET", "/auth/20261201-AU-1"): lambda: {"status": self.auth_status},
            ("POST", "/auth/token/redeem"): lambda: {
                "accessToken": self.token(),
                "refreshToken": {"token": "refresh-1", "validUntil": "2026-12-08T00:00:00Z"}},
            ("POST", "/auth/token/refresh"): lambda: {"accessToken": self.token()},
            ("POST", "/sessions/online"): lambda: {
                "referenceNumber": "20261201-SO-1", "validUntil": "2026-12-01T20:00:00Z"},
            ("POST", "/sessions/online/20261201-SO-1/invoices"): lambda: {
                "referenceNumber": "20261201-EE-1"},
            ("GET", "/sessions/20261201-SO-1/invoices/20261201-EE-1"): lambda: {
                "ordinalNumber": 1, "referenceNumber": "20261201-EE-1",
                "invoiceHash": "aGFzaA==", "invoicingDate": NOW.isoformat(),
                "status": self.invoice_status,
                **({"ksefNumber": KSEF_NUMBER,
                    "acquisitionDate": "2026-12-01T08:00:05.1234567+00:00"}
                   if self.invoice_status["code"] == 200 else {})},
        }
        if (method, path) == ("POST", "/sessions/online/20261201-SO-1/close"):
            return httpx.Response(204)
        if (method, path) == ("GET", "/sessions/20261201-SO-1/invoices/20261201-EE-1/upo"):
            return httpx.Response(200, content="<Potwierdzenie>ż</Potwierdzenie>".encode(),
                                  headers={"Content-Type": "application/xml"})
        status = {"POST /auth/ksef-token": 202, "POST /auth/xades-signature": 202, "POST /sessions/online": 201,
                  "POST /sessions/online/20261201-SO-1/invoices": 202}.get(f"{method} {path}",
                                                                           200)
        return httpx.Response(status, json=routes[(method, path)]())


def problem(http_status: int, **body: Any) -> httpx.Response:
    return httpx.Response(http_status, json=body, headers={"Content-Type": "application/json"})


@pytest.fixture
def ksef() -> FakeKsef:
    return FakeKsef()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(ksef: FakeKsef, sleeps: list[float]) -> SdkKsefClient:
    def sdk(options: ksef_client.KsefClientOptions) -> ksef_client.KsefClient:
        made = ksef_client.KsefClient(options)
        # the SDK builds its own httpx client; the test swaps in one on the fake KSeF
        made.http_client._client.close()
        made.http_client._client = httpx.Client(transport=httpx.MockTransport(ksef.handle))
        return made

    return SdkKsefClient(SdkKsefOptions(max_attempts=3, auth_poll_interval=0),
                         sdk_factory=sdk, sleep=sleeps.append, clock=lambda: NOW)


CREDENTIALS = KsefCredentials(base_url="https://ksef.test", nip="4477127826", token=TOKEN)
SENT = SentInvoice("20261201-SO-1", "20261201-EE-1")


def test_a_token_login_sends_reads_the_status_and_the_upo(client: SdkKsefClient,
                                                          ksef: FakeKsef) -> None:
    with client.connect(CREDENTIALS) as connection:
        session = connection.open_session()
        sent = session.send(b"<Faktura/>")
        status = connection.invoice_status(sent)
        upo = connection.upo(sent)
        session.close()
    assert sent == SENT
    assert (status.code, status.ksef_number, status.is_accepted) == (200, KSEF_NUMBER, True)
    assert status.accepted_at == datetime(2026, 12, 1, 8, 0, 5, 123456, tzinfo=UTC)
    assert upo == "<Potwierdzenie>ż</Potwierdzenie>"
    # Check the token was sent encrypted, and the access token used after login
    assert TOKEN not in ksef.calls("POST", "/auth/ksef-token")[0].content.decode()
    upload = ksef.calls("POST", "/sessions/online/20261201-SO-1/invoices")[0]
    assert upload.headers["Authorization"] == "Bearer access-1"
    form = json.loads(ksef.calls("POST", "/sessions/online")[0].content)["formCode"]
    assert form == {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
    assert len(ksef.calls("POST", "/sessions/online/20261201-SO-1/close")) == 1


@pytest.mark.parametrize("status", [
    {"code": 440, "description": "Duplikat faktury",
     "extensions": {"originalKsefNumber": KSEF_NUMBER}},
    {"code": 440, "description": "Duplikat faktury",
     "details": [f"Duplikat faktury. Faktura o numerze KSeF: {KSEF_NUMBER} została już "
                 "prawidłowo przesłana"]},
])
def test_a_duplicate_names_the_original_number(client: SdkKsefClient, ksef: FakeKsef,
                                               status: dict[str, Any]) -> None:
    ksef.invoice_status = status
    with client.connect(CREDENTIALS) as connection:
        found = connection.invoice_status(SENT)
    assert (found.code, found.ksef_number, found.is_accepted) == (440, KSEF_NUMBER, True)


def test_a_rejected_invoice_keeps_ksefs_reason(client: SdkKsefClient, ksef: FakeKsef) -> None:
    ksef.invoice_status = {"code": 450, "description": "Błąd weryfikacji semantyki dokumentu",
                           "details": ["Nieprawidłowy NIP\nnabywcy"]}
    with client.connect(CREDENTIALS) as connection:
        found = connection.invoice_status(SENT)
    assert found.reason == "450 Błąd weryfikacji semantyki dokumentu: Nieprawidłowy NIP nabywcy"
    assert not found.is_accepted


def test_429_is_waited_out_by_retry_after_capped(client: SdkKsefClient, ksef: FakeKsef,
                                                 sleeps: list[float]) -> None:
    path = "/sessions/20261201-SO-1/invoices/20261201-EE-1"
    ksef.queue("GET", path, httpx.Response(429, headers={"Retry-After": "7"}),
               httpx.Response(429, headers={"Retry-After": "3600"}))
    with client.connect(CREDENTIALS) as connection:
        assert connection.invoice_status(SENT).code == 200
    assert sleeps == [7.0, 60.0]


def test_5xx_and_transport_errors_are_retried_then_unavailable(
        client: SdkKsefClient, ksef: FakeKsef, sleeps: list[float]) -> None:
    path = "/sessions/20261201-SO-1/invoices/20261201-EE-1"
    ksef.queue("GET", path, httpx.ConnectError("connection refused"), problem(503),
               httpx.ReadTimeout("timed out"))
    with client.connect(CREDENTIALS) as connection, pytest.raises(KsefUnavailableError) as caught:
        connection.invoice_status(SENT)
    assert str(caught.value) == ("KSeF invoice status failed after 3 attempts; the last: "
                                 "ReadTimeout: timed out")
    assert len(sleeps) == 2 and all(0 <= pause <= 1.0 for pause in sleeps)


def test_a_lost_upload_answer_is_not_repeated(client: SdkKsefClient, ksef: FakeKsef) -> None:
    path = "/sessions/online/20261201-SO-1/invoices"
    ksef.queue("POST", path, httpx.ReadTimeout("timed out"))
    with client.connect(CREDENTIALS) as connection:
        session = connection.open_session()
        with pytest.raises(KsefUnavailableError, match=r"answer was lost .* not repeated"):
            session.send(b"<Faktura/>")
    assert len(ksef.calls("POST", path)) == 1


def test_an_upload_not_yet_sent_is_retried(client: SdkKsefClient, ksef: FakeKsef) -> None:
    path = "/sessions/online/20261201-SO-1/invoices"
    ksef.queue("POST", path, httpx.ConnectError("refused"), problem(502))
    with client.connect(CREDENTIALS) as connection:
        assert connection.open_session().send(b"<Faktura/>") == SENT
    assert len(ksef.calls("POST", path)) == 3


def test_a_4xx_is_refused_with_ksefs_message_and_no_token(client: SdkKsefClient,
                                                          ksef: FakeKsef) -> None:
    ksef.queue("POST", "/sessions/online", problem(400, exception={
        "exceptionDetailList": [{"exceptionCode": 21405,
                                 "exceptionDescription": "Błąd walidacji danych wejściowych.",
                                 "details": ["formCode: nieznany kod"]}]}))
    with client.connect(CREDENTIALS) as connection, pytest.raises(KsefRefusedError) as caught:
        connection.open_session()
    message = str(caught.value)
    assert message == ("KSeF open session refused: HTTP 400: 21405 Błąd walidacji danych "
                       "wejściowych.: formCode: nieznany kod")
    assert "access-" not in message and TOKEN not in message


def test_a_certificate_login_signs_the_challenge(client: SdkKsefClient,
                                                ksef: FakeKsef) -> None:
    certificate, key = self_signed()
    credentials = KsefCredentials(
        base_url="https://ksef.test", nip="4477127826",
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode())
    with client.connect(credentials) as connection:
        assert connection.invoice_status(SENT).code == 200
    signed = ksef.calls("POST", "/auth/xades-signature")[0].content.decode()
    assert "<Nip>4477127826</Nip>" in signed and "20261201-CR-1" in signed
    assert "certificateSubject" in signed and "PRIVATE KEY" not in signed


def test_a_refused_login_is_refused(client: SdkKsefClient, ksef: FakeKsef) -> None:
    ksef.auth_status = {"code": 450, "description": "Uwierzytelnianie zakończone niepowodzeniem",
                        "details": ["Nieprawidłowy token"]}
    with pytest.raises(KsefRefusedError, match=r"refused the login for NIP 4477127826: .*450"):
        client.connect(CREDENTIALS)
    assert len(ksef.calls("POST", "/auth/token/redeem")) == 0


def test_a_login_without_credentials_is_refused(client: SdkKsefClient, ksef: FakeKsef) -> None:
    with pytest.raises(KsefRefusedError, match="give a KSeF token or a certificate"):
        client.connect(KsefCredentials(base_url="https://ksef.test", nip="4477127826"))
    assert ksef.requests == []


def test_a_401_refreshes_the_token_once(client: SdkKsefClient, ksef: FakeKsef) -> None:
    path = "/sessions/20261201-SO-1/invoices/20261201-EE-1"
    ksef.queue("GET", path, problem(401, title="Unauthorized", detail="token expired",
                                    status=401, timestamp=NOW.isoformat()))
    with client.connect(CREDENTIALS) as connection:
        assert connection.invoice_status(SENT).code == 200
    assert [r.headers["Authorization"] for r in ksef.calls("GET", path)] == [
        "Bearer access-1", "Bearer access-2"]
    assert len(ksef.calls("POST", "/auth/token/refresh")) == 1


def test_a_second_401_is_refused(client: SdkKsefClient, ksef: FakeKsef) -> None:
    path = "/sessions/20261201-SO-1/invoices/20261201-EE-1"
    ksef.queue("GET", path, problem(401, detail="no"), problem(401, detail="still no"))
    with client.connect(CREDENTIALS) as connection, pytest.raises(KsefRefusedError,
                                                                   match="HTTP 401"):
        connection.invoice_status(SENT)


def test_an_expiring_token_is_refreshed_before_the_call(client: SdkKsefClient,
                                                        ksef: FakeKsef) -> None:
    ksef.valid_for = timedelta(seconds=30)
    with client.connect(CREDENTIALS) as connection:
        connection.invoice_status(SENT)
    path = "/sessions/20261201-SO-1/invoices/20261201-EE-1"
    assert ksef.calls("GET", path)[0].headers["Authorization"] == "Bearer access-2"
