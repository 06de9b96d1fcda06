"""SmtpMailSender against real SMTP servers (aiosmtpd) on loopback: plain, STARTTLS and
SSL with a throw-away CA (trustme), with and without login."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from engine.adapters.mail_smtp import SmtpMailSender, message_id_for
from engine.ports.outbound import (
    DeliveryError,
    MailAttachment,
    MailSecurity,
    MailServer,
    OutboundMail,
)

HOST = "127.0.0.1"
USER = "biuro@firma.pl"
PASSWORD = "Tajne-Hasło-123"
ASCII_PASSWORD = "Tajne-Haslo-123"
SUBJECT = "Faktura 1/2024 – zażółć gęślą jaźń"
TEXT = "Dzień dobry,\nw załączniku faktura.\nPozdrawiamy, Łódź\n"
HTML = "<p>Dzień dobry, <b>Łódź</b></p>"
PDF = b"%PDF-1.4\n\x00\x01\x02\xff binary \xc5\x82\n"


@dataclass
class Collector:
    """An aiosmtpd handler that keeps what it receives; refuses recipients at nosuch.pl."""

    received: list[tuple[str, list[str], bytes, bool]] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.endswith("@nosuch.pl"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.ssl is not None)
        )
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, login, password))
        ok = login == USER and password in (PASSWORD, ASCII_PASSWORD)
        # a careless server that echoes the password: the sender must not repeat it
        echo = f"535 5.7.8 bad credentials {login}/{password}"
        return AuthResult(success=ok, handled=False, message=None if ok else echo)

    def message(self, index: int = -1) -> EmailMessage:
        parsed = email.message_from_bytes(self.received[index][2], policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[int, Collector]]:
    collector = Collector()
    if options.pop("with_auth", False):
        options["authenticator"] = collector.authenticate
        options["auth_required"] = True
    controller = Controller(collector, hostname=HOST, port=free_port(), **options)
    controller.start()
    try:
        yield controller.port, collector
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def sender(ca: trustme.CA) -> SmtpMailSender:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return SmtpMailSender(timeout=5.0, ssl_context=context, local_hostname="soa.test")


def account(port: int, security: MailSecurity = "none", **credentials: str) -> MailServer:
    return MailServer(
        host=HOST, port=port, security=security, sender="Biuro Łódź <biuro@firma.pl>",
        **credentials,
    )  # fmt: skip


def mail(key: str = "run-1/invoice-7", **changes: Any) -> OutboundMail:
    fields: dict[str, Any] = {
        "to": ("Paweł Żółkiewski <pawel@klient.pl>",),
        "subject": SUBJECT,
        "text": TEXT,
        "idempotency_key": key,
    }
    return OutboundMail(**(fields | changes))


def test_plain_send_keeps_utf8_alternative_attachment_and_a_message_id_per_key(
    sender: SmtpMailSender,
) -> None:
    invoice = MailAttachment("faktura_żółw 1.pdf", PDF, "application/pdf")
    notes = MailAttachment("uwagi.txt", "Ćma ąę\n".encode(), "text/plain; charset=utf-8")
    full = mail(
        html=HTML, attachments=(invoice, notes), reply_to="Księgowość <ksiegowosc@firma.pl>"
    )
    with smtp_server() as (port, collector):
        first = sender.send(account(port), full)
        again = sender.send(account(port), full)
        other = sender.send(account(port), mail("run-2/invoice-7"))

    assert first == again == message_id_for("run-1/invoice-7", "biuro@firma.pl")
    assert other != first
    assert first.startswith("<") and first.endswith("@firma.pl>")
    # the server does not deduplicate: a repeated attempt is received again
    assert len(collector.received) == 3
    mail_from, rcpt_tos, _, over_tls = collector.received[0]
    assert (mail_from, rcpt_tos, over_tls) == ("biuro@firma.pl", ["pawel@klient.pl"], False)

    received = collector.message(0)
    assert received["Subject"] == SUBJECT
    assert received["Message-ID"] == first
    assert collector.message(1)["Message-ID"] == first
    assert collector.message(2)["Message-ID"] == other
    assert received["X-SOA-Idempotency-Key"] == "run-1/invoice-7"
    assert received["From"].addresses[0].display_name == "Biuro Łódź"
    assert received["To"].addresses[0].display_name == "Paweł Żółkiewski"
    assert received["Reply-To"].addresses[0].addr_spec == "ksiegowosc@firma.pl"
    assert received["Reply-To"].addresses[0].display_name == "Księgowość"
    text_part = received.get_body(("plain",))
    html_part = received.get_body(("html",))
    assert text_part is not None and html_part is not None
    # line ends are CRLF on the wire
    assert text_part.get_content().replace("\r\n", "\n") == TEXT
    assert html_part.get_content().strip() == HTML
    attachments = list(received.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["faktura_żółw 1.pdf", "uwagi.txt"]
    assert [a.get_content_type() for a in attachments] == ["application/pdf", "text/plain"]
    assert attachments[0].get_content() == PDF
    assert attachments[1].get_content() == "Ćma ąę\n"
    # 7-bit clean on the wire, whatever the server supports
    assert all(byte < 128 for byte in collector.received[0][2])


def test_starttls_upgrades_the_connection_with_the_given_trust(
    sender: SmtpMailSender, server_tls: ssl.SSLContext
) -> None:
    with smtp_server(tls_context=server_tls, require_starttls=True) as (port, collector):
        message_id = sender.send(account(port, "starttls"), mail())
    assert collector.received[0][3] is True
    assert collector.message()["Message-ID"] == message_id
    assert collector.message()["Subject"] == SUBJECT


def test_ssl_connects_over_tls_from_the_start(
    sender: SmtpMailSender, server_tls: ssl.SSLContext
) -> None:
    with smtp_server(ssl_context=server_tls) as (port, collector):
        sender.send(account(port, "ssl"), mail())
    assert collector.message()["Subject"] == SUBJECT


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_from_an_untrusted_ca_is_refused(
    server_tls: ssl.SSLContext, security: MailSecurity
) -> None:
    untrusting = SmtpMailSender(timeout=5.0, ssl_context=ssl.create_default_context())
    options = {"tls_context": server_tls} if security == "starttls" else {"ssl_context": server_tls}
    with smtp_server(**options) as (port, collector), pytest.raises(DeliveryError) as caught:
        untrusting.send(account(port, security), mail())
    assert str(caught.value).startswith(f"mail server {HOST}:{port} TLS failed:")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert collector.received == []


@pytest.mark.parametrize("password", [PASSWORD, ASCII_PASSWORD], ids=["utf8", "ascii"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_login_over_starttls(
    sender: SmtpMailSender, server_tls: ssl.SSLContext, mechanism: str, password: str
) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    with smtp_server(tls_context=server_tls, with_auth=True, auth_exclude_mechanism=[other]) as (
        port,
        collector,
    ):
        sender.send(account(port, "starttls", username=USER, password=password), mail())
    assert collector.logins == [(mechanism, USER, password)]
    assert len(collector.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_over_ssl(sender: SmtpMailSender, server_tls: ssl.SSLContext) -> None:
    # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS throughout
    with smtp_server(ssl_context=server_tls, with_auth=True, auth_require_tls=False) as (
        port,
        collector,
    ):
        sender.send(account(port, "ssl", username=USER, password=PASSWORD), mail())
    assert [login for _, login, _ in collector.logins] == [USER]
    assert len(collector.received) == 1


def test_without_username_there_is_no_login(
    sender: SmtpMailSender, server_tls: ssl.SSLContext
) -> None:
    with (
        smtp_server(tls_context=server_tls, with_auth=True) as (port, collector),
        pytest.raises(
            DeliveryError,
            match=f"{HOST}:{port} refused the sender 'biuro@firma.pl': 530 5.7.0 Auth",
        ),
    ):
        sender.send(account(port, "starttls"), mail())
    assert collector.logins == []
    assert collector.received == []


@pytest.mark.parametrize("wrong", ["Złe-Hasło-456", "Zle-Haslo-456"])
def test_a_wrong_password_fails_without_showing_it(
    sender: SmtpMailSender, server_tls: ssl.SSLContext, wrong: str
) -> None:
    with (
        smtp_server(tls_context=server_tls, with_auth=True) as (port, collector),
        pytest.raises(DeliveryError) as caught,
    ):
        sender.send(account(port, "starttls", username=USER, password=wrong), mail())
    message = str(caught.value)
    assert message.startswith(f"mail server {HOST}:{port} refused the login of '{USER}': 535")
    assert wrong not in message and wrong not in repr(caught.value)
    assert "\n" not in message
    assert collector.logins[0][2] == wrong
    assert collector.received == []


def test_a_closed_port_gives_an_error_naming_the_server(sender: SmtpMailSender) -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as caught:
        sender.send(account(port, username=USER, password=PASSWORD), mail())
    message = str(caught.value)
    assert message.startswith(f"mail server {HOST}:{port} connection failed:")
    assert "refused" in message.lower()
    assert PASSWORD not in message


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never greets
        listener.bind((HOST, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError, match=f"mail server {HOST}:{port} .*timed out"):
            SmtpMailSender(timeout=0.5).send(account(port), mail())


def test_starttls_is_required_when_asked_for(sender: SmtpMailSender) -> None:
    with (
        smtp_server() as (port, collector),
        pytest.raises(DeliveryError, match=f"{HOST}:{port} does not offer STARTTLS"),
    ):
        sender.send(account(port, "starttls", username=USER, password=PASSWORD), mail())
    assert collector.received == []
    assert collector.logins == []


def test_refused_recipients(sender: SmtpMailSender) -> None:
    with smtp_server() as (port, collector):
        with pytest.raises(DeliveryError, match=r"refused every recipient: x@nosuch\.pl \(550 "):
            sender.send(account(port), mail(to=("x@nosuch.pl",)))
        assert collector.received == []
        with pytest.raises(DeliveryError, match="accepted for the other recipient") as caught:
            sender.send(account(port), mail(to=("x@nosuch.pl", "ok@klient.pl")))
    assert "x@nosuch.pl (550 5.1.1 no such mailbox here)" in str(caught.value)
    assert collector.received[0][1] == ["ok@klient.pl"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"to": ()}, "no recipient"),
        ({"to": ("nobody",)}, "'nobody' is not an e-mail address"),
        ({"subject": "a\nBcc: x@y.pl"}, "cannot be built"),
        ({"attachments": (MailAttachment("a", b"", "pdf"),)}, "expected type/subtype"),
    ],
)
def test_a_mail_that_cannot_be_built_is_refused_before_connecting(
    sender: SmtpMailSender, change: dict[str, Any], reason: str
) -> None:
    port = free_port()  # nothing listens: connecting would fail differently
    with pytest.raises(DeliveryError, match=f"mail for {HOST}:{port} cannot be built") as caught:
        sender.send(account(port), mail(**change))
    assert reason in str(caught.value)


def test_message_id_depends_on_the_key_and_the_sender_domain_only() -> None:
    key = "0b6c1f0e-run/mail"
    assert message_id_for(key, "Biuro <biuro@firma.pl>") == message_id_for(key, "x@FIRMA.pl")
    assert message_id_for(key, "biuro@firma.pl") != message_id_for(key, "biuro@inna.pl")
    assert message_id_for(key, "biuro@żółw.pl").endswith("@xn--w-uga1v8h.pl>")
    assert len(message_id_for(key, "biuro@firma.pl")) == len("<@firma.pl>") + 32
