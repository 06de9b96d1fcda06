"""The mail and SMS catcher: an SMTP server and an SMS gateway on 127.0.0.1 that keep
what they receive instead of delivering it (``soa simulate mail``).

- SMTP (aiosmtpd): plain, no TLS; any login is accepted, as is no login. Every mail is
  accepted for every recipient.
- SMS: ``POST`` to any path speaks the gateway contract of docs/outbound.md (any bearer
  token; one message per ``Idempotency-Key``: a repeated key stores nothing and answers
  the first message's id; ``400 {"error": ...}`` for a bad body).
- ``GET /_sim/messages``: every caught message as JSON, oldest first;
  ``DELETE /_sim/messages`` forgets them all.

Messages are appended as JSON lines to the store file, so another process
(``soa simulate mail --list``) can read them and they outlive a restart.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import errno
import json
import os
import re
import socket
import threading
from collections.abc import Awaitable
from datetime import datetime
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit
from uuid import uuid4

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from engine.domain.errors import ConflictError

HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 2525
DEFAULT_SMS_PORT = 8025
MESSAGES_PATH = "/_sim/messages"
MAX_SMS_BODY = 1_000_000
E164 = re.compile(r"\+[0-9]{8,15}")
REUSE_ADDRESS = os.name != "nt"
"""Restart on a port at once (POSIX); on Windows the option would let two servers share
a port, so a port in use would not be reported."""

Channel = Literal["smtp", "sms"]


def default_store_path(home: Path) -> Path:
    """Where ``soa simulate mail`` keeps the caught messages: under ``SOA_HOME``."""
    return home / "simulator" / "messages.jsonl"


def read_messages(store_path: Path) -> list[dict[str, Any]]:
    """The messages in ``store_path``, oldest first (none if the file does not exist; a
    line being written meanwhile is left out)."""
    try:
        lines = store_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    messages = []
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def clear_messages(store_path: Path) -> int:
    """Empty ``store_path``; return how many messages it held."""
    count = len(read_messages(store_path))
    if store_path.exists():
        store_path.write_bytes(b"")
    return count


class CatcherPortError(ConflictError):
    """Signals that a port of the catcher cannot be listened on (in use, not allowed)."""

    def __init__(self, channel: Channel, port: int, reason: str) -> None:
        self.channel = channel
        self.port = port
        self.reason = reason
        super().__init__(self.explained("port"))

    def explained(self, option: str) -> str:
        """The message, asking for another ``option``."""
        name = "SMTP" if self.channel == "smtp" else "SMS"
        return (f"{name} port {self.port} on {HOST} {self.reason}; choose another {option} "
                "(0: any free port)")


class MailCatcher:
    """The catcher on ``smtp_port`` and ``sms_port`` (0: a free port each), keeping the
    messages in ``store_path``. Use it as a context manager, or ``start`` and ``stop``.
    Thread-safe."""

    def __init__(self, smtp_port: int, sms_port: int, store_path: Path) -> None:
        self._requested = {"smtp": smtp_port, "sms": sms_port}
        self._store = store_path
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._sms_ids: dict[str, str] = {}
        self._known_size = -1
        self._controller: _SmtpController | None = None
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def store_path(self) -> Path:
        return self._store

    @property
    def smtp_port(self) -> int:
        """The SMTP port listened on (the one asked for before ``start``)."""
        return self._controller.port if self._controller else self._requested["smtp"]

    @property
    def sms_port(self) -> int:
        """The HTTP port of the SMS gateway (the one asked for before ``start``)."""
        return self._http.server_address[1] if self._http else self._requested["sms"]

    @property
    def sms_url(self) -> str:
        return f"http://{HOST}:{self.sms_port}/sms"

    @property
    def messages_url(self) -> str:
        return f"http://{HOST}:{self.sms_port}{MESSAGES_PATH}"

    def start(self) -> None:
        """Listen on both ports; return once both answer.

        :raises CatcherPortError: if a port is in use or not allowed (nothing listens then).
        """
        if self._controller is not None:
            raise RuntimeError("the mail catcher is already running")
        self._store.parent.mkdir(parents=True, exist_ok=True)
        smtp_socket = _listening_socket(self._requested["smtp"])
        try:
            http = _HttpServer(self, self._requested["sms"])
        except BaseException:
            smtp_socket.close()
            raise
        controller = _SmtpController(_MailHandler(self), smtp_socket)
        try:
            controller.start()
        except BaseException:
            smtp_socket.close()
            http.server_close()
            raise
        thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.2},
                                  name="mail-catcher-sms", daemon=True)
        thread.start()
        self._controller, self._http, self._thread = controller, http, thread

    def stop(self) -> None:
        """Stop listening (the store is kept)."""
        http, thread, controller = self._http, self._thread, self._controller
        self._http = self._thread = self._controller = None
        if http is not None:
            http.shutdown()
            http.server_close()
        if thread is not None:
            thread.join()
        if controller is not None:
            controller.stop()

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def messages(self) -> list[dict[str, Any]]:
        """Every caught message (also those of earlier runs on the same store), oldest
        first, as ``GET /_sim/messages`` gives them."""
        with self._lock:
            return read_messages(self._store)

    def raw_mails(self) -> list[bytes]:
        """The mails as received (RFC 5322 bytes) since this catcher started or was
        cleared, oldest first."""
        with self._lock:
            return list(self._raw)

    def clear(self) -> int:
        """Forget every message and SMS idempotency key; return how many there were."""
        with self._lock:
            count = clear_messages(self._store)
            self._raw.clear()
            self._sms_ids.clear()
            self._known_size = 0
            return count

    def catch_mail(self, recipients: list[str], content: bytes) -> None:
        """Keep a mail received by the SMTP server."""
        record = _mail_record(recipients, content)
        with self._lock:
            self._raw.append(content)
            self._append(record)

    def catch_sms(self, key: str, to: str, text: str, sender: str | None) -> tuple[str, bool]:
        """Keep an SMS unless ``key`` was seen; return its id and whether it is new."""
        with self._lock:
            self._sync_keys()
            known = self._sms_ids.get(key)
            if known is not None:
                return known, False
            message_id = f"sim-{uuid4().hex[:16]}"
            self._append({
                "channel": "sms", "to": to, "subject": None, "text": text,
                "received_at": _now(), "message_id": message_id, "attachments": [],
                "from": sender, "idempotency_key": key,
            })
            self._sms_ids[key] = message_id
            return message_id, True

    def _append(self, record: dict[str, Any]) -> None:
        with self._store.open("a", encoding="utf-8") as store:
            store.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self._known_size >= 0:
            self._known_size = self._store.stat().st_size

    def _sync_keys(self) -> None:
        """Read the SMS keys again if another process changed the store (--clear)."""
        try:
            size = self._store.stat().st_size
        except FileNotFoundError:
            size = 0
        if size == self._known_size:
            return
        self._sms_ids = {
            str(message["idempotency_key"]): str(message["message_id"])
            for message in read_messages(self._store)
            if message.get("channel") == "sms" and message.get("idempotency_key")
        }
        self._known_size = size


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _mail_record(recipients: list[str], content: bytes) -> dict[str, Any]:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    subject = text = message_id = sender = key = None
    attachments: list[str] = []
    if isinstance(parsed, EmailMessage):
        subject, message_id = _header(parsed, "Subject"), _header(parsed, "Message-ID")
        sender, key = _header(parsed, "From"), _header(parsed, "X-SOA-Idempotency-Key")
        text = _plain_text(parsed)
        attachments = [part.get_filename() or part.get_content_type()
                       for part in parsed.iter_attachments() if isinstance(part, EmailMessage)]
    return {
        "channel": "email", "to": ", ".join(recipients), "subject": subject, "text": text,
        "received_at": _now(), "message_id": message_id, "attachments": attachments,
        "from": sender, "idempotency_key": key,
    }


def _header(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser cannot read
        return None
    return None if value is None else str(value)


def _plain_text(message: EmailMessage) -> str | None:
    try:
        part = message.get_body(("plain",))
        content = part.get_content() if part is not None else None
    except (LookupError, ValueError, TypeError):  # an unknown charset, a broken part
        return None
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if REUSE_ADDRESS:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        raise _port_error("smtp", port, error) from None
    return sock


def _port_error(channel: Channel, port: int, error: OSError) -> CatcherPortError:
    if error.errno == errno.EADDRINUSE:
        return CatcherPortError(channel, port, "is in use")
    reason = error.strerror or str(error)
    return CatcherPortError(channel, port, f"cannot be listened on ({reason})")


class _MailHandler:
    """aiosmtpd's handler: hands each mail to the catcher."""

    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        if content is None:
            raw = envelope.content
            content = raw.encode("utf-8") if isinstance(raw, str) else raw or b""
        self._catcher.catch_mail(list(envelope.rcpt_tos), content)
        return "250 OK caught by the mail catcher"


def _any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
               auth_data: Any) -> AuthResult:
    return AuthResult(success=True)


class _SmtpController(Controller):
    """aiosmtpd's controller on a socket bound already (so port 0 works and a port in
    use is reported before any thread starts)."""

    def __init__(self, handler: _MailHandler, sock: socket.socket) -> None:
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1],
                         authenticator=_any_login, auth_require_tls=False)
        self._socket = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._socket,
                                       ssl=self.ssl_context)


class _HttpServer(ThreadingHTTPServer):
    """The SMS gateway and the messages endpoint."""

    daemon_threads = True
    allow_reuse_address = REUSE_ADDRESS

    def __init__(self, catcher: MailCatcher, port: int) -> None:
        self.catcher = catcher
        try:
            super().__init__((HOST, port), _HttpHandler)
        except OSError as error:
            raise _port_error("sms", port, error) from None


class _HttpHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"
    server_version = "soa-mail-catcher"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the catcher prints nothing per request."""

    def do_GET(self) -> None:
        if self._path() == MESSAGES_PATH:
            self._answer(HTTPStatus.OK, self.server.catcher.messages())
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"nothing at GET {self._path()}; "
                                                f"the messages are at GET {MESSAGES_PATH}"})

    def do_DELETE(self) -> None:
        if self._path() == MESSAGES_PATH:
            self._answer(HTTPStatus.OK, {"deleted": self.server.catcher.clear()})
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"nothing at DELETE {self._path()}"})

    def do_POST(self) -> None:
        if self._path().startswith("/_sim/"):
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"nothing at POST {self._path()}"})
            return
        try:
            key, to, text, sender = self._sms()
        except _Refused as refusal:
            self._answer(refusal.status, {"error": refusal.message})
            return
        message_id, new = self.server.catcher.catch_sms(key, to, text, sender)
        self._answer(HTTPStatus.CREATED if new else HTTPStatus.OK, {"id": message_id})

    def _sms(self) -> tuple[str, str, str, str | None]:
        """The idempotency key, number, text and sender of a valid SMS request."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(HTTPStatus.UNAUTHORIZED, "expected Authorization: Bearer <token>")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "expected a Content-Length")
        if int(length) > MAX_SMS_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"the body is over {MAX_SMS_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(int(length)).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON in UTF-8") from None
        if not isinstance(body, dict):
            raise _Refused(HTTPStatus.BAD_REQUEST, 'expected a JSON object {"to", "text", '
                           '"sender", "idempotency_key"}')
        to, text, sender = body.get("to"), body.get("text"), body.get("sender")
        if not isinstance(to, str) or not E164.fullmatch(to):
            raise _Refused(HTTPStatus.BAD_REQUEST, f"to {to!r} is not a phone number in E.164 "
                           "form, such as +48600100200")
        if not isinstance(text, str) or not text:
            raise _Refused(HTTPStatus.BAD_REQUEST, "text must be a non-empty string")
        if sender is not None and not isinstance(sender, str):
            raise _Refused(HTTPStatus.BAD_REQUEST, "sender must be a string")
        header, field = self.headers.get("Idempotency-Key"), body.get("idempotency_key")
        if field is not None and not isinstance(field, str):
            raise _Refused(HTTPStatus.BAD_REQUEST, "idempotency_key must be a string")
        if header and field and header != field:
            raise _Refused(HTTPStatus.BAD_REQUEST,
                           "the Idempotency-Key header and idempotency_key differ")
        key = header or field
        if not key:
            raise _Refused(HTTPStatus.BAD_REQUEST, "expected an Idempotency-Key header")
        return key, to, text, sender

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def _answer(self, status: HTTPStatus, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status >= HTTPStatus.BAD_REQUEST:
            self.send_header("Connection", "close")  # a body may be left unread
        self.end_headers()
        self.wfile.write(body)


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
