"""SmtpMailSender.session against aiosmtpd on loopback: many mails over one connection,
the same Message-IDs and errors as ``send``, and a new connection when the server closed
the one kept."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from engine.adapters.mail_smtp import SmtpMailSender, message_id_for
from engine.ports.outbound import DeliveryError, MailSender, MailServer, OutboundMail
from tests.integration.test_mail_smtp import (
    HOST,
    PASSWORD,
    SUBJECT,
    TEXT,
    USER,
    Collector,
    account,
    free_port,
    mail,
)


@dataclass
class CountingCollector(Collector):
    """Counts the connections that carried mail; ``limit`` mails per connection, then 421
    (as servers do); ``drop_in_data`` breaks off the connection at that mail's DATA."""

    limit: int | None = None
    drop_in_data: set[int] = field(default_factory=set)
    per_connection: dict[int, int] = field(default_factory=dict)
    attempts: int = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        done = self.per_connection.get(id(session), 0)
        if self.limit is not None and done >= self.limit:
            return "421 4.7.0 Too many messages in this session, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.attempts in self.drop_in_data:
            server.transport.close()
            return "451 never heard"
        self.per_connection[id(session)] = self.per_connection.get(id(session), 0) + 1
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def counting_server(collector: CountingCollector, **options: Any) -> Iterator[int]:
    if options.pop("with_auth", False):
        options["authenticator"] = collector.authenticate
        options["auth_required"] = True
    controller = Controller(collector, hostname=HOST, port=free_port(), **options)
    controller.start()
    try:
        yield controller.port
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


def test_twenty_mails_over_one_connection_keep_the_message_id_rule(
    sender: SmtpMailSender,
) -> None:
    collector = CountingCollector()
    with counting_server(collector) as port, sender.session(account(port)) as send:
        ids = [send(mail(f"run-1/invoice-{index}")) for index in range(20)]

    assert ids == [message_id_for(f"run-1/invoice-{index}", "biuro@firma.pl") for index in range(20)]
    assert list(collector.per_connection.values()) == [20]
    assert [collector.message(index)["Message-ID"] for index in range(20)] == ids
    assert collector.message(7)["X-SOA-Idempotency-Key"] == "run-1/invoice-7"
    assert collector.message(7)["Subject"] == SUBJECT
    text_part = collector.message(7).get_body(("plain",))
    assert text_part is not None
    assert text_part.get_content().replace("\r\n", "\n") == TEXT


def test_a_session_over_starttls_logs_in_once(
    sender: SmtpMailSender, server_tls: ssl.SSLContext
) -> None:
    collector = CountingCollector()
    with counting_server(collector, tls_context=server_tls, with_auth=True) as port:
        server = account(port, "starttls", username=USER, password=PASSWORD)
        with sender.session(server) as send:
            for index in range(5):
                send(mail(f"run-1/mail-{index}"))
    assert [login for _, login, _ in collector.logins] == [USER]
    assert list(collector.per_connection.values()) == [5]
    assert all(over_tls for _, _, _, over_tls in collector.received)


def test_a_session_opens_no_connection_without_mail(sender: SmtpMailSender) -> None:
    port = free_port()  # nothing listens
    with sender.session(account(port)):
        pass


def test_a_connection_closed_while_idle_is_opened_again_for_the_next_mail(
    sender: SmtpMailSender,
) -> None:
    collector = CountingCollector()
    with counting_server(collector, timeout=0.3) as port, sender.session(account(port)) as send:
        send(mail("run-1/a"))
        time.sleep(0.8)  # the server closes the idle connection
        send(mail("run-1/b"))
        send(mail("run-1/c"))
    assert [message["Message-ID"] for message in map(collector.message, range(3))] == [
        message_id_for(key, "biuro@firma.pl") for key in ("run-1/a", "run-1/b", "run-1/c")
    ]
    assert sorted(collector.per_connection.values()) == [1, 2]


def test_a_421_after_some_mails_continues_on_a_new_connection(sender: SmtpMailSender) -> None:
    collector = CountingCollector(limit=5)
    with counting_server(collector) as port, sender.session(account(port)) as send:
        for index in range(12):
            send(mail(f"run-1/mail-{index}"))
    assert len(collector.received) == 12
    assert sorted(collector.per_connection.values()) == [2, 5, 5]


def test_a_connection_broken_during_data_is_not_sent_again(sender: SmtpMailSender) -> None:
    collector = CountingCollector(drop_in_data={2})
    with counting_server(collector) as port, sender.session(account(port)) as send:
        send(mail("run-1/a"))
        with pytest.raises(DeliveryError, match=f"mail server {HOST}:{port} broke off the session"):
            send(mail("run-1/b"))  # the server may have it: the caller decides
        send(mail("run-1/c"))  # on a new connection
    assert [collector.message(index)["X-SOA-Idempotency-Key"] for index in range(2)] == [
        "run-1/a", "run-1/c",
    ]
    assert collector.attempts == 3


def test_errors_are_those_of_send_without_the_password(
    sender: SmtpMailSender, server_tls: ssl.SSLContext
) -> None:
    wrong = "Złe-Hasło-456"
    collector = CountingCollector()
    with counting_server(collector, tls_context=server_tls, with_auth=True) as port:
        server = account(port, "starttls", username=USER, password=wrong)
        with pytest.raises(DeliveryError) as by_send:
            sender.send(server, mail())
        with sender.session(server) as send, pytest.raises(DeliveryError) as by_session:
            send(mail())
    assert str(by_session.value) == str(by_send.value)
    assert str(by_session.value).startswith(f"mail server {HOST}:{port} refused the login of")
    assert wrong not in str(by_session.value) and "\n" not in str(by_session.value)

    closed = free_port()
    with sender.session(account(closed)) as send, pytest.raises(DeliveryError) as caught:
        send(mail())
    assert str(caught.value).startswith(f"mail server {HOST}:{closed} connection failed:")
    with sender.session(account(closed)) as send, pytest.raises(DeliveryError) as caught:
        send(mail(to=("nobody",)))
    assert "cannot be built" in str(caught.value)


def test_refused_recipients_keep_the_session(sender: SmtpMailSender) -> None:
    collector = CountingCollector()
    with counting_server(collector) as port, sender.session(account(port)) as send:
        with pytest.raises(DeliveryError, match="accepted for the other recipient"):
            send(mail("run-1/a", to=("x@nosuch.pl", "ok@klient.pl")))
        with pytest.raises(DeliveryError, match="refused every recipient"):
            send(mail("run-1/b", to=("x@nosuch.pl",)))
        send(mail("run-1/c"))
    assert [rcpt for _, rcpt, _, _ in collector.received] == [["ok@klient.pl"], ["pawel@klient.pl"]]


def test_a_session_cannot_be_used_after_it_ended(sender: SmtpMailSender) -> None:
    collector = CountingCollector()
    with counting_server(collector) as port:
        with sender.session(account(port)) as send:
            send(mail())
        with pytest.raises(RuntimeError, match="session has ended"):
            send(mail())


class RecordingSender(MailSender):
    def __init__(self) -> None:
        self.sent: list[tuple[MailServer, OutboundMail]] = []

    def send(self, server: MailServer, mail: OutboundMail) -> str:
        self.sent.append((server, mail))
        return f"<{mail.idempotency_key}@test>"


def test_the_default_session_sends_each_mail_with_send() -> None:
    recording = RecordingSender()
    server = account(25)
    with recording.session(server) as send:
        assert send(mail("k-1")) == "<k-1@test>"
        assert send(mail("k-2")) == "<k-2@test>"
    assert [(used, sent.idempotency_key) for used, sent in recording.sent] == [
        (server, "k-1"), (server, "k-2"),
    ]
