"""The KSeF simulator over real loopback HTTP, driven by the real ``ksef-client`` SDK:
token and XAdES logins (and their refusals), online sessions, invoice processing to 200
with KSeF numbers the SDK validates and UPOs, the 450/440/410 rejections, hash checks,
401s, and the faults (429, lost answers, 500 after the work, the rate limit)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from ksef_client import (
    KsefApiError,
    KsefClient,
    KsefClientOptions,
    KsefHttpError,
    KsefRateLimitError,
)
from ksef_client.documents.fa3 import FA3InvoiceBuilder, FA3InvoiceKind, FA3Party
from ksef_client.models import FormCode, SessionInvoiceStatusResponse
from ksef_client.services.auth import (
    build_auth_token_request_xml,
    build_ksef_token_auth_request,
    encrypt_ksef_token,
)
from ksef_client.services.sessions import OnlineSessionHandle
from ksef_client.services.workflows import AuthCoordinator, OnlineSessionWorkflow
from ksef_client.services.xades import sign_xades_enveloped
from ksef_client.utils.ksef_number import validate_ksef_number

from engine.simulators.ksef import (
    KsefFaults,
    KsefSimulator,
    SimulatorInputError,
    SimulatorPortError,
)
from engine.simulators.ksef.documents import ksef_number

NIP = "5261040828"
OTHER_NIP = "7740001454"
FA3 = FormCode(system_code="FA (3)", schema_version="1-0E", value="FA")
POLL = 0.01


@pytest.fixture(scope="module")
def shared() -> Iterator[KsefSimulator]:
    with KsefSimulator(0, seed=3) as started:
        yield started


@pytest.fixture
def sim(shared: KsefSimulator) -> Iterator[KsefSimulator]:
    shared.reset()
    shared.set_faults(KsefFaults())
    yield shared


@pytest.fixture
def client(sim: KsefSimulator) -> Iterator[KsefClient]:
    with KsefClient(KsefClientOptions(base_url=sim.url, timeout_seconds=10)) as opened:
        yield opened


def invoice_xml(number: str, seller: str = NIP, kind: FA3InvoiceKind = FA3InvoiceKind.BASIC
                ) -> bytes:
    builder = FA3InvoiceBuilder(
        invoice_number=number, issue_date=date(2026, 1, 5), kind=kind,
        seller=FA3Party(name="Sprzedawca sp. z o.o.", tax_id=seller,
                        address="ul. Prosta 1, 00-001 Warszawa"),
        buyer=FA3Party(name="Nabywca SA", tax_id="9542751368",
                       address="ul. Krzywa 2, 87-100 Toruń"))
    builder.add_line("Usługa", quantity=1, unit_net_price="100.00")
    xml: bytes = builder.build().to_xml()
    return xml


def token_login(client: KsefClient, sim: KsefSimulator, nip: str = NIP,
                token: str | None = None) -> str:
    pem = client.security.get_public_key_certificate_pem("KsefTokenEncryption")
    result = AuthCoordinator(client.auth).authenticate_with_ksef_token(
        token=token or sim.issue_token(nip), public_certificate=pem,
        context_identifier_type="nip", context_identifier_value=nip,
        poll_interval_seconds=POLL)
    return result.access_token


def xades_login(client: KsefClient, certificate: str, key: str, nip: str = NIP) -> str:
    result = AuthCoordinator(client.auth).authenticate_with_xades(
        context_identifier_type="nip", context_identifier_value=nip,
        subject_identifier_type="certificateSubject", certificate_pem=certificate,
        private_key_pem=key, poll_interval_seconds=POLL)
    return result.access_token


def open_session(client: KsefClient, access: str) -> OnlineSessionHandle:
    pem = client.security.get_public_key_certificate_pem("SymmetricKeyEncryption")
    return OnlineSessionWorkflow(client.sessions).open_session(
        form_code=FA3, public_certificate=pem, access_token=access)


def send(client: KsefClient, session: OnlineSessionHandle, access: str, xml: bytes) -> str:
    sent = OnlineSessionWorkflow(client.sessions).send_invoice(
        session_reference_number=session.reference_number, invoice_xml=xml,
        encryption_data=session.encryption_data, access_token=access)
    return sent.reference_number


def final_status(client: KsefClient, session: str, invoice: str, access: str,
                 timeout: float = 5) -> SessionInvoiceStatusResponse:
    deadline = time.monotonic() + timeout
    while True:
        status = client.sessions.get_session_invoice_status(session, invoice,
                                                            access_token=access)
        if status.status.code >= 200 or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def self_signed(nip: str) -> tuple[str, str]:
    """A certificate naming ``nip`` as KSeF certificates do, but signed by itself."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Obcy"),
                      x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), f"VATPL-{nip}"),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "PL")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def state(sim: KsefSimulator) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/_sim/state", timeout=10).json()  # type: ignore[no-any-return]


# --- keys and logins ---------------------------------------------------------------


def test_public_keys_are_listed_for_both_usages_as_the_sdk_reads_them(
        client: KsefClient) -> None:
    listed = client.security.get_public_key_certificates()
    assert sorted(usage.value for entry in listed for usage in entry.usage) == [
        "KsefTokenEncryption", "SymmetricKeyEncryption"]
    for entry in listed:
        certificate = x509.load_der_x509_certificate(base64.b64decode(entry.certificate))
        key = certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert entry.valid_from and entry.valid_to and entry.public_key_id
    # Check the SDK picks a current certificate for each usage
    assert client.security.get_public_key_certificate_pem("KsefTokenEncryption")
    assert client.security.get_public_key_certificate_pem("SymmetricKeyEncryption")


def test_token_login_gives_an_access_token_bound_to_the_nip(client: KsefClient,
                                                            sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    # Check another company's token cannot see the session
    other = token_login(client, sim, OTHER_NIP)
    with pytest.raises(KsefApiError) as refused:
        client.sessions.get_session_status(session.reference_number, access_token=other)
    assert refused.value.status_code == 404
    assert state(sim)["logins"] == {"token": 2, "certificate": 0, "refused": 0}


def test_certificate_login_with_a_certificate_the_simulator_issued(
        client: KsefClient, sim: KsefSimulator) -> None:
    certificate, key = sim.issue_certificate(NIP)
    subject = x509.load_pem_x509_certificate(certificate.encode()).subject
    assert subject.get_attributes_for_oid(x509.ObjectIdentifier("2.5.4.97"))[0].value == (
        f"VATPL-{NIP}")
    access = xades_login(client, certificate, key)
    assert open_session(client, access).reference_number
    assert state(sim)["logins"]["certificate"] == 1


def test_a_wrong_token_or_another_companys_token_is_refused(client: KsefClient,
                                                            sim: KsefSimulator) -> None:
    with pytest.raises(RuntimeError, match=r"Authentication failed: 450 .*Nieprawidłowy token"):
        token_login(client, sim, token="20261203-EC-0000000000-0000000000-00|nip-x|00")
    with pytest.raises(RuntimeError, match=r"Authentication failed: 415 .*uprawnień"):
        token_login(client, sim, NIP, token=sim.issue_token(OTHER_NIP))
    assert state(sim)["logins"] == {"token": 0, "certificate": 0, "refused": 2}


def test_a_token_encrypted_with_another_timestamp_is_refused(client: KsefClient,
                                                             sim: KsefSimulator) -> None:
    challenge = client.auth.get_challenge()
    encrypted = encrypt_ksef_token(
        public_certificate=client.security.get_public_key_certificate_pem(
            "KsefTokenEncryption"),
        token=sim.issue_token(NIP), timestamp_ms=challenge.timestamp_ms - 1)
    started = client.auth.submit_ksef_token_auth(build_ksef_token_auth_request(
        challenge=challenge.challenge, context_identifier_type="nip",
        context_identifier_value=NIP, encrypted_token_base64=encrypted))
    token = started.authentication_token.token
    statuses = [client.auth.get_auth_status(started.reference_number, token).status
                for _ in range(2)]
    assert [status.code for status in statuses] == [100, 450]
    assert statuses[1].details == ["Nieprawidłowy czas tokena"]
    with pytest.raises(KsefApiError):
        client.auth.redeem_token(token)


def test_a_foreign_certificate_or_another_companys_certificate_is_refused(
        client: KsefClient, sim: KsefSimulator) -> None:
    with pytest.raises(RuntimeError, match=r"Authentication failed: 460 .*Niezaufany"):
        xades_login(client, *self_signed(NIP))
    with pytest.raises(RuntimeError, match=r"Authentication failed: 415"):
        xades_login(client, *sim.issue_certificate(OTHER_NIP), nip=NIP)


def test_a_signature_that_does_not_verify_is_refused_at_once(client: KsefClient,
                                                             sim: KsefSimulator) -> None:
    certificate, key = sim.issue_certificate(NIP)
    challenge = client.auth.get_challenge().challenge
    xml = build_auth_token_request_xml(challenge=challenge, context_identifier_type="nip",
                                       context_identifier_value=NIP)
    signed = sign_xades_enveloped(xml, certificate, key)
    # Check a changed context after signing breaks the signature
    tampered = signed.replace(f"<Nip>{NIP}</Nip>", f"<Nip>{OTHER_NIP}</Nip>")
    assert tampered != signed
    with pytest.raises(KsefApiError) as refused:
        client.auth.submit_xades_auth_request(tampered)
    assert refused.value.status_code == 400
    assert "does not verify" in str(refused.value.response_body)


def test_a_challenge_is_used_once_and_tokens_are_redeemed_once(client: KsefClient,
                                                               sim: KsefSimulator) -> None:
    certificate, key = sim.issue_certificate(NIP)
    challenge = client.auth.get_challenge().challenge
    signed = sign_xades_enveloped(build_auth_token_request_xml(
        challenge=challenge, context_identifier_type="nip", context_identifier_value=NIP),
        certificate, key)
    started = client.auth.submit_xades_auth_request(signed)
    assert started is not None
    with pytest.raises(KsefApiError) as reused:
        client.auth.submit_xades_auth_request(signed)
    assert reused.value.status_code == 400
    authentication = started.authentication_token.token
    codes = [client.auth.get_auth_status(started.reference_number, authentication).status.code
             for _ in range(2)]
    assert codes == [100, 200]
    tokens = client.auth.redeem_token(authentication)
    with pytest.raises(KsefApiError) as again:
        client.auth.redeem_token(authentication)
    assert again.value.status_code == 400
    # Check a refreshed access token works and the refresh token is no access token
    refreshed = client.auth.refresh_access_token(tokens.refresh_token.token)
    assert open_session(client, refreshed.access_token.token).reference_number
    with pytest.raises(KsefApiError) as wrong_kind:
        open_session(client, tokens.refresh_token.token)
    assert wrong_kind.value.status_code == 401


def test_every_other_endpoint_wants_a_bearer_token(client: KsefClient,
                                                   sim: KsefSimulator) -> None:
    answer = httpx.post(f"{sim.url}/v2/sessions/online", json={}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 401
    with pytest.raises(KsefApiError) as refused:
        client.sessions.get_session_status("20260101-SO-0000000000-0000000000-00",
                                           access_token="not-a-token")
    assert refused.value.status_code == 401


# --- sessions and invoices ---------------------------------------------------------


def test_an_invoice_is_accepted_with_a_valid_ksef_number_and_a_upo(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    xml = invoice_xml("FV/1/2026")
    reference = send(client, session, access, xml)
    status = final_status(client, session.reference_number, reference, access)
    assert status.status.code == 200, status.status
    assert status.ksef_number and validate_ksef_number(status.ksef_number).is_valid
    assert status.ksef_number.startswith(f"{NIP}-")
    assert status.invoice_number == "FV/1/2026" and status.acquisition_date
    assert status.invoice_hash == base64.b64encode(_sha256(xml)).decode()
    upo = client.sessions.get_session_invoice_upo_by_ref(session.reference_number, reference,
                                                         access_token=access).decode()
    for expected in (status.ksef_number, "FV/1/2026", NIP, status.invoice_hash):
        assert expected in upo
    by_number = client.sessions.get_session_invoice_upo_by_ksef(
        session.reference_number, status.ksef_number, access_token=access).decode()
    assert status.ksef_number in by_number
    # Check the closed session reports its counts and its collective UPO
    OnlineSessionWorkflow(client.sessions).close_session(session.reference_number, access)
    summary = client.sessions.get_session_status(session.reference_number, access_token=access)
    assert summary.status.code == 200 and summary.successful_invoice_count == 1
    assert summary.upo is not None
    page = summary.upo.pages[0]
    collective = client.sessions.get_session_upo(session.reference_number,
                                                 page.reference_number, access_token=access)
    assert status.ksef_number in collective.decode()
    accepted = state(sim)["accepted"]
    assert [(each["seller_nip"], each["invoice_number"], each["ksef_number"], each["uploads"])
            for each in accepted] == [(NIP, "FV/1/2026", status.ksef_number, 1)]


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def test_processing_takes_processing_seconds_in_status_150() -> None:
    with KsefSimulator(0, processing_seconds=0.3) as slow, KsefClient(
            KsefClientOptions(base_url=slow.url)) as client:
        access = token_login(client, slow)
        session = open_session(client, access)
        reference = send(client, session, access, invoice_xml("FV/150"))
        first = client.sessions.get_session_invoice_status(session.reference_number,
                                                           reference, access_token=access)
        assert first.status.code == 150 and first.ksef_number is None
        assert state(slow)["processing"] == 1
        assert final_status(client, session.reference_number, reference,
                            access).status.code == 200


def test_an_invoice_the_xsd_refuses_ends_in_450_with_the_reason(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    broken = invoice_xml("FV/2").replace(b"<P_2>FV/2</P_2>", b"")
    reference = send(client, session, access, broken)
    status = final_status(client, session.reference_number, reference, access)
    assert status.status.code == 450
    assert status.status.details and "P_2" in status.status.details[0]
    garbage = send(client, session, access, b"<not-closed>")
    assert final_status(client, session.reference_number, garbage,
                        access).status.code == 450
    with pytest.raises(KsefApiError) as no_upo:
        client.sessions.get_session_invoice_upo_by_ref(session.reference_number, reference,
                                                       access_token=access)
    assert no_upo.value.status_code == 400
    assert len(state(sim)["rejected"]) == 2


def test_the_same_invoice_number_again_is_a_duplicate_naming_the_original(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    first_session = open_session(client, access)
    first = final_status(client, first_session.reference_number,
                         send(client, first_session, access, invoice_xml("FV/3")), access)
    assert first.status.code == 200 and first.ksef_number
    # Check the rule holds across sessions and counts each upload
    second_session = open_session(client, access)
    again = final_status(client, second_session.reference_number,
                         send(client, second_session, access, invoice_xml("FV/3")), access)
    assert again.status.code == 440 and again.status.description == "Duplikat faktury"
    assert again.status.extensions == {
        "originalKsefNumber": first.ksef_number,
        "originalSessionReferenceNumber": first_session.reference_number}
    assert again.status.details and first.ksef_number in again.status.details[0]
    assert again.ksef_number is None
    # Check another kind of invoice with the same number is no duplicate
    advance = invoice_xml("FV/3", kind=FA3InvoiceKind.ADVANCE)
    other_kind = final_status(client, second_session.reference_number,
                              send(client, second_session, access, advance), access)
    assert other_kind.status.code == 200, other_kind.status
    assert state(sim)["accepted"][0]["uploads"] == 2


def test_another_sellers_invoice_is_refused(client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    status = final_status(client, session.reference_number,
                          send(client, session, access, invoice_xml("FV/4", OTHER_NIP)),
                          access)
    assert status.status.code == 410 and status.ksef_number is None


def test_hashes_and_sizes_that_do_not_match_are_refused_at_once(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    url = f"{sim.url}/v2/sessions/online/{session.reference_number}/invoices"
    from ksef_client.services.crypto import build_send_invoice_request

    good = build_send_invoice_request(invoice_xml("FV/5"), session.encryption_data.key,
                                      session.encryption_data.iv).to_dict()
    bearer = {"Authorization": f"Bearer {access}"}
    for change, word in (({"invoiceHash": good["encryptedInvoiceHash"]}, "invoiceHash"),
                         ({"encryptedInvoiceHash": good["invoiceHash"]}, "encryptedInvoiceHash"),
                         ({"invoiceSize": good["invoiceSize"] + 1}, "invoiceSize"),
                         ({"encryptedInvoiceSize": 16}, "encryptedInvoiceSize")):
        answer = httpx.post(url, json={**good, **change}, headers=bearer, timeout=10)
        assert answer.status_code == 400, change
        detail = answer.json()["exception"]["exceptionDetailList"][0]
        assert detail["exceptionCode"] == 21405 and word in detail["details"][0]
    assert state(sim)["uploads"] == 0
    assert httpx.post(url, json=good, headers=bearer, timeout=10).status_code == 202


def test_a_closed_session_takes_no_more_invoices(client: KsefClient,
                                                 sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    OnlineSessionWorkflow(client.sessions).close_session(session.reference_number, access)
    with pytest.raises(KsefApiError) as refused:
        send(client, session, access, invoice_xml("FV/6"))
    assert refused.value.status_code == 400


def test_every_ksef_number_passes_the_sdk_validator(client: KsefClient,
                                                    sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    references = [send(client, session, access, invoice_xml(f"FV/N/{n}")) for n in range(12)]
    numbers = [final_status(client, session.reference_number, reference, access).ksef_number
               for reference in references]
    assert len(set(numbers)) == 12
    assert all(number and validate_ksef_number(number).is_valid for number in numbers)
    for day in (date(2025, 1, 1), date(2026, 12, 31), date(2031, 7, 15)):
        for technical in ("000000000000", "FFFFFFFFFFFF", "0100001AF629"):
            assert validate_ksef_number(ksef_number(NIP, day, technical)).is_valid
    assert ksef_number("5265877635", date(2025, 8, 26), "0100001AF629").endswith("-AF")


def test_parallel_uploads_are_all_processed_once(client: KsefClient,
                                                 sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)

    def upload(worker: int) -> list[str]:
        with KsefClient(KsefClientOptions(base_url=sim.url, timeout_seconds=10)) as own:
            return [send(own, session, access, invoice_xml(f"FV/P/{worker}/{n}"))
                    for n in range(4)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        references = [ref for refs in pool.map(upload, range(4)) for ref in refs]
    assert len(set(references)) == 16
    listed = client.sessions.get_session_invoices(session.reference_number, page_size=100,
                                                  access_token=access).invoices
    assert sorted(each.ordinal_number or 0 for each in listed) == list(range(1, 17))
    assert {each.status.code for each in listed} == {200}
    assert len({each.ksef_number for each in listed}) == 16


# --- faults ------------------------------------------------------------------------


def test_throttling_answers_429_with_retry_after(client: KsefClient,
                                                 sim: KsefSimulator) -> None:
    sim.set_faults(KsefFaults(throttle_rate=1.0))
    with pytest.raises(KsefRateLimitError) as throttled:
        client.auth.get_challenge()
    assert throttled.value.retry_after == 1
    sim.set_faults(KsefFaults())
    answer = httpx.post(f"{sim.url}/v2/auth/challenge", headers={"X-Sim-Fault": "429"},
                        timeout=10)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert answer.json()["status"]["code"] == 429
    assert state(sim)["faults"]["throttled"] == 2


def test_a_lost_upload_answer_still_leaves_the_invoice_processed(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    sim.set_faults(KsefFaults(lose_next_uploads=1))
    with pytest.raises(KsefHttpError) as lost:
        send(client, session, access, invoice_xml("FV/7"))
    assert lost.value.status_code != 202
    # Check the next upload is answered and the lost one was processed
    assert send(client, session, access, invoice_xml("FV/8"))
    listed = client.sessions.get_session_invoices(session.reference_number,
                                                  access_token=access).invoices
    assert [(each.invoice_number, each.status.code) for each in listed] == [
        ("FV/7", 200), ("FV/8", 200)]
    assert sim.faults.lose_next_uploads == 0
    assert state(sim)["uploads"] == 2 and state(sim)["faults"]["lost"] == 1


def test_errors_after_the_work_and_lost_answers_keep_the_work(
        client: KsefClient, sim: KsefSimulator) -> None:
    access = token_login(client, sim)
    session = open_session(client, access)
    for fault in ("500-after", "lost"):
        options = KsefClientOptions(base_url=sim.url, custom_headers={"X-Sim-Fault": fault})
        with KsefClient(options) as faulty, pytest.raises(KsefHttpError):
            send(faulty, session, access, invoice_xml(f"FV/{fault}"))
    unavailable = httpx.post(f"{sim.url}/v2/auth/challenge", headers={"X-Sim-Fault": "503"},
                             timeout=10)
    assert unavailable.status_code == 503
    listed = client.sessions.get_session_invoices(session.reference_number,
                                                  access_token=access).invoices
    assert [each.invoice_number for each in listed] == ["FV/500-after", "FV/lost"]
    assert state(sim)["faults"] == {"throttled": 0, "errors": 2, "lost": 1}


def test_error_rate_answers_5xx() -> None:
    with KsefSimulator(0, seed=11, faults=KsefFaults(error_rate=1.0)) as failing:
        codes = {httpx.post(f"{failing.url}/v2/auth/challenge", timeout=10).status_code
                 for _ in range(20)}
    assert codes == {500, 503}


def test_the_rate_limit_answers_429_beyond_n_requests_a_second() -> None:
    with KsefSimulator(0, rate_limit=2) as limited, httpx.Client(timeout=10) as http:
        codes = [http.post(f"{limited.url}/v2/auth/challenge").status_code for _ in range(6)]
    assert codes.count(429) >= 2 and codes[0] == 200


def test_latency_delays_answers(sim: KsefSimulator) -> None:
    sim.set_faults(KsefFaults(latency_ms=150))
    started = time.monotonic()
    assert httpx.post(f"{sim.url}/v2/auth/challenge", timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.15


# --- control -----------------------------------------------------------------------


def test_the_control_endpoints_issue_tokens_and_certificates_and_steer_faults(
        client: KsefClient, sim: KsefSimulator) -> None:
    with httpx.Client(base_url=sim.url, timeout=10) as http:
        token = http.post("/_sim/tokens", json={"nip": NIP}).json()["token"]
        issued = http.post("/_sim/certificates", json={"nip": NIP}).json()
        assert http.post("/_sim/tokens", json={"nip": "123"}).status_code == 400
        assert token_login(client, sim, token=token)
        assert xades_login(client, issued["certificate"], issued["private_key"])
        assert http.post("/_sim/faults", json={"latency_ms": -1}).status_code == 400
        assert http.post("/_sim/faults", json={"unknown": 1}).status_code == 400
        assert http.post("/_sim/faults", json={"lost_rate": 0.5}).json()["lost_rate"] == 0.5
        assert sim.faults.lost_rate == 0.5
        assert http.post("/_sim/reset").json() == {"reset": True}
        assert http.get("/_sim/state").json()["logins"] == {
            "token": 0, "certificate": 0, "refused": 0}
        # Check reset forgot the token
        sim.set_faults(KsefFaults())
        with pytest.raises(RuntimeError, match="450"):
            token_login(client, sim, token=token)


def test_bad_settings_and_a_port_in_use_are_refused(sim: KsefSimulator) -> None:
    with pytest.raises(SimulatorInputError):
        KsefFaults(error_rate=2)
    with pytest.raises(SimulatorInputError):
        sim.issue_token("1234567890")
    with pytest.raises(SimulatorPortError, match="in use"):
        KsefSimulator(sim.port).start()
