"""Mail through an SMTP server, with the standard library's ``smtplib``.

Every failure leaves as :class:`DeliveryError`, one line naming the server and the
reason; no message ever contains the account's password. The server does not
deduplicate: a mail sent twice arrives twice, with the same Message-ID.
"""

from __future__ import annotations

import base64
import hashlib
import smtplib
import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, parseaddr
from types import TracebackType
from typing import TYPE_CHECKING

from engine.ports.outbound import DeliveryError, MailSender, MailServer, OutboundMail

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

IDEMPOTENCY_HEADER = "X-SOA-Idempotency-Key"
MAX_MESSAGE_CHARS = 500


class SmtpMailSender(MailSender):
    """Hands mails to their server: ``send`` over a new connection each time (plain,
    STARTTLS or SSL), ``session`` over one connection for many mails.

    ``ssl_context`` verifies the server's certificate (the system's trusted CAs by
    default); ``timeout`` bounds every network operation, in seconds.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self._timeout = timeout
        self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._local_hostname = local_hostname

    def send(self, server: MailServer, mail: OutboundMail) -> str:
        with self.session(server) as send:
            return send(mail)

    def session(self, server: MailServer) -> AbstractContextManager[Callable[[OutboundMail], str]]:
        """One connection for every mail of the session, opened (with the same security
        and login as ``send``) at the first mail and closed at the end. If the server
        closed it between two mails (idle timeout, 421), the mail is sent once more over
        a new connection; a connection that failed otherwise is replaced at the next mail.
        """
        return _Session(self, server)

    def _open(self, server: MailServer) -> _Connection:
        """A connection secured and logged in as ``server`` says."""
        smtp = self._connect(server)
        try:
            if server.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise _failure(
                        server,
                        f"mail server {_address(server)} does not offer STARTTLS; nothing was "
                        "sent (use security 'ssl', or 'none' for a trusted relay)",
                    )
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()
            if server.username:
                _login(smtp, server.username, server.password or "")
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _connect(self, server: MailServer) -> _Connection:
        if server.security == "ssl":
            return _SslConnection(
                server.host,
                server.port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._ssl_context,
            )
        if server.security in ("none", "starttls"):
            return _Connection(
                server.host,
                server.port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
            )
        raise _failure(
            server,
            f"mail server {_address(server)} has security {server.security!r}; "
            "expected 'none', 'starttls' or 'ssl'",
        )


class _Connection(smtplib.SMTP):
    """An SMTP connection that notes whether a mail's DATA was begun: from then on the
    server may have taken the mail, and sending it again could deliver it twice."""

    data_begun = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_begun = True
        return super().data(msg)


class _SslConnection(_Connection, smtplib.SMTP_SSL):
    """The same over TLS from the start."""


class _Session(AbstractContextManager[Callable[[OutboundMail], str]]):
    """What :meth:`SmtpMailSender.session` gives: ``send`` per mail, one connection kept."""

    def __init__(self, sender: SmtpMailSender, server: MailServer) -> None:
        self._sender = sender
        self._server = server
        self._smtp: _Connection | None = None
        self._ended = False

    def __enter__(self) -> Callable[[OutboundMail], str]:
        return self.send

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._ended = True
        self._drop()

    def send(self, mail: OutboundMail) -> str:
        """Deliver ``mail``; return its Message-ID.

        :raises DeliveryError: as :meth:`SmtpMailSender.send` does.
        """
        if self._ended:
            raise RuntimeError("the mail session has ended; open another one")
        server = self._server
        where = _address(server)
        message_id = message_id_for(mail.idempotency_key, server.sender)
        try:
            message = _build(server, mail, message_id)
        except (ValueError, TypeError) as error:
            raise _failure(server, f"mail for {where} cannot be built: {_reason(error)}") from None
        try:
            refused = self._transmit(message, [address for _, address in getaddresses(mail.to)])
        except smtplib.SMTPException as error:
            raise _failure(server, f"mail server {where} {_smtp_failure(error, server)}") from error
        except UnicodeError as error:  # its object may hold the password: not chained
            raise _failure(
                server, f"mail server {where} cannot take the mail: {_reason(error)}"
            ) from None
        except ssl.SSLError as error:  # an untrusted certificate, no common protocol
            raise _failure(server, f"mail server {where} TLS failed: {_reason(error)}") from error
        except OSError as error:  # refused, unreachable, timed out, reset
            raise _failure(
                server, f"mail server {where} connection failed: {_reason(error)}"
            ) from error
        if refused:
            raise _failure(
                server,
                f"mail server {where} refused recipient(s) {_refused(refused)}; "
                "the mail was accepted for the other recipient(s)",
            )
        return message_id

    def _transmit(
        self, message: EmailMessage, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        try:
            return self._transmit_once_more_if_closed(message, recipients)
        except BaseException:
            self._drop()  # in an unknown state: the next mail takes a new connection
            raise

    def _transmit_once_more_if_closed(
        self, message: EmailMessage, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._sender._open(self._server)
        try:
            return self._send_message(self._smtp, message, recipients)
        except smtplib.SMTPException as error:
            if not reused or self._smtp.data_begun or not _closed_by_server(error):
                raise
        # the server closed the connection kept from an earlier mail before this one began
        self._drop()
        self._smtp = self._sender._open(self._server)
        return self._send_message(self._smtp, message, recipients)

    def _send_message(
        self, smtp: _Connection, message: EmailMessage, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        smtp.data_begun = False
        return smtp.send_message(
            message, from_addr=parseaddr(self._server.sender)[1], to_addrs=recipients
        )

    def _drop(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            _close_quietly(smtp)


def _closed_by_server(error: smtplib.SMTPException) -> bool:
    """Whether ``error`` says the server ended the connection: it broke off, or it
    answered 421 (service closing: idle too long, too many mails in one session)."""
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code == 421


def message_id_for(idempotency_key: str, sender: str) -> str:
    """The Message-ID of the mail with ``idempotency_key`` from ``sender``: the same for
    every attempt, different for another key."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{_domain(sender)}>"


def _domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2].strip().rstrip(">")
    if not domain:
        return "soa-engine.invalid"
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return "soa-engine.invalid"


def _build(server: MailServer, mail: OutboundMail, message_id: str) -> EmailMessage:
    if not mail.to:
        raise ValueError("the mail has no recipient")
    for recipient in mail.to:
        if "@" not in parseaddr(recipient)[1]:
            raise ValueError(f"recipient {recipient!r} is not an e-mail address")
    message = EmailMessage()
    message["From"] = server.sender
    message["To"] = ", ".join(mail.to)
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    message[IDEMPOTENCY_HEADER] = mail.idempotency_key
    # quoted-printable keeps the UTF-8 text 7-bit clean for any server
    message.set_content(mail.text, charset="utf-8", cte="quoted-printable")
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in mail.attachments:
        maintype, subtype, params = _content_type(attachment.content_type)
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=params,
        )
    return message


def _content_type(content_type: str) -> tuple[str, str, dict[str, str]]:
    probe = Message()
    probe["Content-Type"] = content_type
    maintype, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    if not maintype or not subtype or "/" in subtype or " " in maintype + subtype:
        raise ValueError(
            f"attachment content type {content_type!r} is not valid; expected type/subtype, "
            "such as application/pdf"
        )
    params = {key: str(value) for key, value in (probe.get_params() or [])[1:]}
    return maintype, subtype, params


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """``smtp.login``, which sends ASCII only; UTF-8 credentials (RFC 4616, Polish
    passwords) go by AUTH PLAIN or LOGIN here."""
    if username.isascii() and password.isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    if "PLAIN" in offered:
        code, reply = smtp.docmd("AUTH", "PLAIN " + _base64(f"\0{username}\0{password}"))
    elif "LOGIN" in offered:
        code, reply = smtp.docmd("AUTH", "LOGIN " + _base64(username))
        if code == 334:
            code, reply = smtp.docmd(_base64(password))
    else:
        raise smtplib.SMTPException(
            f"the server offers AUTH {' '.join(offered)}; a UTF-8 password needs PLAIN or LOGIN"
        )
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """End the session; a failing QUIT after an accepted mail is not a failed delivery."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _address(server: MailServer) -> str:
    host = f"[{server.host}]" if ":" in server.host else server.host
    return f"{host}:{server.port}"


def _smtp_failure(error: smtplib.SMTPException, server: MailServer) -> str:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"refused the login of {server.username!r}: {_reason(error)}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f"refused every recipient: {_refused(error.recipients)}"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"refused the sender {error.sender!r}: {_reason(error)}"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f"does not support what the mail needs: {_reason(error)}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"broke off the session: {_reason(error)}"
    return f"refused the mail: {_reason(error)}"


def _refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{address} ({code} {_text(reply)})" for address, (code, reply) in recipients.items()
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    return _text(str(error)) or type(error).__name__


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _failure(server: MailServer, text: str) -> DeliveryError:
    """One line, without the password (should a server ever echo it)."""
    if server.password:
        text = text.replace(server.password, "***")
    line = " ".join(text.split())
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return DeliveryError(line)
