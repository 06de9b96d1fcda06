"""The mail and SMS catcher on loopback: mail through SmtpMailSender and SMS through
HttpSmsSender arrive in GET /_sim/messages with Polish text intact; SMS are kept once per
idempotency key; ``soa simulate mail`` runs it in the foreground."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.adapters.mail_smtp import SmtpMailSender, message_id_for
from engine.adapters.sms_http import HttpSmsSender
from engine.ports.outbound import (
    MailAttachment,
    MailServer,
    OutboundMail,
    OutboundSms,
    SmsGateway,
)
from engine.simulators.mail_catcher import CatcherPortError, MailCatcher, read_messages

POLISH = "Zażółć gęślą jaźń – ĄĆĘŁŃÓŚŹŻ"
PDF = b"%PDF-1.4\n\x00\xff binary\n"
SOA = str(Path(sys.executable).parent / "soa")


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(0, 0, tmp_path / "simulator" / "messages.jsonl") as started:
        yield started


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as opened:
        yield opened


def mail_server(catcher: MailCatcher, **login: str) -> MailServer:
    return MailServer(host="127.0.0.1", port=catcher.smtp_port, security="none",
                      sender="Biuro Łódź <biuro@firma.pl>", **login)


def gateway(catcher: MailCatcher) -> SmsGateway:
    return SmsGateway(url=catcher.sms_url, token="any-token", sender="FIRMA")


def listed(client: httpx.Client, catcher: MailCatcher) -> list[dict[str, Any]]:
    response = client.get(catcher.messages_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    messages: list[dict[str, Any]] = response.json()
    return messages


def test_mail_and_sms_arrive_with_polish_text_and_attachments(
    catcher: MailCatcher, client: httpx.Client
) -> None:
    mail = OutboundMail(
        to=("Paweł Żółkiewski <pawel@klient.pl>", "ksiegowosc@klient.pl"),
        subject=f"Faktura FA/1/12/2026 — {POLISH}", text=f"Dzień dobry,\n{POLISH}\n",
        idempotency_key="run-1/invoice:FA/1/12/2026",
        attachments=(MailAttachment("FA_1_12_2026 żółw.pdf", PDF, "application/pdf"),),
    )  # fmt: skip
    message_id = SmtpMailSender(timeout=5).send(
        mail_server(catcher, username="biuro", password="Hasło-ż"), mail
    )
    sms_id = HttpSmsSender(client).send(
        gateway(catcher), OutboundSms("+48600100200", f"Przypomnienie: {POLISH}", "run-1/sms-1")
    )

    caught_mail, caught_sms = listed(client, catcher)
    assert caught_mail["channel"] == "email"
    assert caught_mail["to"] == "pawel@klient.pl, ksiegowosc@klient.pl"
    assert caught_mail["subject"] == f"Faktura FA/1/12/2026 — {POLISH}"
    assert caught_mail["text"] == f"Dzień dobry,\n{POLISH}\n"
    assert caught_mail["message_id"] == message_id == message_id_for(
        "run-1/invoice:FA/1/12/2026", "biuro@firma.pl")
    assert caught_mail["attachments"] == ["FA_1_12_2026 żółw.pdf"]
    assert caught_mail["idempotency_key"] == "run-1/invoice:FA/1/12/2026"
    assert caught_mail["received_at"]

    assert caught_sms == {
        "channel": "sms", "to": "+48600100200", "subject": None,
        "text": f"Przypomnienie: {POLISH}", "received_at": caught_sms["received_at"],
        "message_id": sms_id, "attachments": [], "from": "FIRMA",
        "idempotency_key": "run-1/sms-1",
    }  # fmt: skip
    assert catcher.messages() == [caught_mail, caught_sms]
    [raw] = catcher.raw_mails()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    [attachment] = parsed.iter_attachments()
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_content() == PDF


def test_an_sms_is_kept_once_per_idempotency_key(
    catcher: MailCatcher, client: httpx.Client
) -> None:
    sender = HttpSmsSender(client)
    first = sender.send(gateway(catcher), OutboundSms("+48600100200", "pierwszy", "run-1/a"))
    again = sender.send(gateway(catcher), OutboundSms("+48600100200", "inny tekst", "run-1/a"))
    other = sender.send(gateway(catcher), OutboundSms("+48600100200", "drugi", "run-1/b"))
    assert again == first != other
    assert [message["text"] for message in listed(client, catcher)] == ["pierwszy", "drugi"]

    # the keys outlive a restart on the same store
    catcher.stop()
    catcher.start()
    repeated = sender.send(gateway(catcher), OutboundSms("+48600100200", "x", "run-1/a"))
    assert repeated == first
    assert len(catcher.messages()) == 2


def test_delete_forgets_messages_and_keys(catcher: MailCatcher, client: httpx.Client) -> None:
    sender = HttpSmsSender(client)
    first = sender.send(gateway(catcher), OutboundSms("+48600100200", "raz", "run-1/a"))
    response = client.delete(catcher.messages_url)
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    assert listed(client, catcher) == []
    assert sender.send(gateway(catcher), OutboundSms("+48600100200", "dwa", "run-1/a")) != first
    assert [message["text"] for message in catcher.messages()] == ["dwa"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, {"to": "+48600100200", "text": "x"}, 401, "Bearer"),
        ({"Authorization": "Bearer t"}, "nie json", 400, "not JSON"),
        ({"Authorization": "Bearer t"}, ["to"], 400, "JSON object"),
        ({"Authorization": "Bearer t", "Idempotency-Key": "k"}, {"to": "600 100 200",
                                                                 "text": "x"}, 400, "E.164"),
        ({"Authorization": "Bearer t", "Idempotency-Key": "k"}, {"to": "+48600100200"}, 400,
         "text"),
        ({"Authorization": "Bearer t"}, {"to": "+48600100200", "text": "x"}, 400,
         "Idempotency-Key"),
        ({"Authorization": "Bearer t", "Idempotency-Key": "k"},
         {"to": "+48600100200", "text": "x", "idempotency_key": "inny"}, 400, "differ"),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_with_an_error(
    catcher: MailCatcher, client: httpx.Client, headers: dict[str, str], body: Any,
    status: int, error: str,
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = client.post(catcher.sms_url, headers=headers, content=content)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert catcher.messages() == []


def test_unknown_paths_answer_404(catcher: MailCatcher, client: httpx.Client) -> None:
    assert client.get(f"http://127.0.0.1:{catcher.sms_port}/sms").status_code == 404
    assert client.post(f"http://127.0.0.1:{catcher.sms_port}/_sim/other").status_code == 404


def test_a_port_in_use_is_one_error_naming_it(catcher: MailCatcher, tmp_path: Path) -> None:
    with pytest.raises(CatcherPortError) as caught:
        MailCatcher(catcher.smtp_port, 0, tmp_path / "other.jsonl").start()
    assert str(caught.value).startswith(f"SMTP port {catcher.smtp_port} on 127.0.0.1 is in use")
    with pytest.raises(CatcherPortError, match=f"SMS port {catcher.sms_port} on 127.0.0.1 is in"):
        MailCatcher(0, catcher.sms_port, tmp_path / "other.jsonl").start()


def test_soa_simulate_mail_runs_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOA_")}
    env["SOA_HOME"] = str(tmp_path / "home")
    process = subprocess.Popen([SOA, "simulate", "mail", "--smtp-port", "0", "--sms-port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(
            r"mail catcher: SMTP on 127\.0\.0\.1:(\d+), SMS on http://127\.0\.0\.1:(\d+)/sms, "
            r"messages at http://127\.0\.0\.1:(\d+)/_sim/messages\n", line)
        assert found is not None, line
        smtp_port, sms_port = int(found[1]), int(found[2])
        with httpx.Client(timeout=10) as client:
            HttpSmsSender(client).send(
                SmsGateway(f"http://127.0.0.1:{sms_port}/sms", "t", "FIRMA"),
                OutboundSms("+48600100200", POLISH, "run-1/a"))
        SmtpMailSender(timeout=5).send(
            MailServer("127.0.0.1", smtp_port, "none", "biuro@firma.pl"),
            OutboundMail(("a@klient.pl",), "Temat ż", POLISH, "run-1/b"))

        store = tmp_path / "home" / "simulator" / "messages.jsonl"
        assert [message["channel"] for message in read_messages(store)] == ["sms", "email"]
        listing = subprocess.run([SOA, "simulate", "mail", "--list"], capture_output=True,
                                 text=True, env=env, timeout=60)
        assert listing.returncode == 0, listing.stderr
        # set_content ends a text with a line break
        assert [message["text"] for message in json.loads(listing.stdout)] == [POLISH, POLISH + "\n"]

        busy = subprocess.run([SOA, "simulate", "mail", "--smtp-port", str(smtp_port)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert busy.returncode == 2
        assert busy.stderr.count("\n") == 1
        assert f"SMTP port {smtp_port} on 127.0.0.1 is in use; choose another --smtp-port" in (
            busy.stderr)

        cleared = subprocess.run([SOA, "simulate", "mail", "--clear"], capture_output=True,
                                 text=True, env=env, timeout=60)
        assert cleared.returncode == 0 and "deleted 2" in cleared.stdout
        assert read_messages(store) == []
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
