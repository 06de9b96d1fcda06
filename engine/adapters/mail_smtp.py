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
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, parseaddr

from engine.ports.outbound import DeliveryError, MailSender, MailServer, OutboundMail

IDEMPOTENCY_HEADER = "X-SOA-Idempotency-Key"
MAX_MESSAGE_CHARS = 500


class SmtpMailSender(MailSender):
    """Hands each mail to its server over a new connection (plain, STARTTLS or SSL).

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
        where = _address(server)
        message_id = message_id_for(mail.idempotency_key, server.sender)
        try:
            message = _build(server, mail, message_id)
        except (ValueError, TypeError) as error:
            raise _failure(server, f"mail for {where} cannot be built: {_reason(error)}") from None
        try:
            self._deliver(server, message, [address for _, address in getaddresses(mail.to)])
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
        return message_id

    def _deliver(self, server: MailServer, message: EmailMessage, recipients: list[str]) -> None:
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
            refused = smtp.send_message(
                message,
                from_addr=parseaddr(server.sender)[1],
                to_addrs=recipients,
            )
        finally:
            _close_quietly(smtp)
        if refused:
            raise _failure(
                server,
                f"mail server {_address(server)} refused recipient(s) {_refused(refused)}; "
                "the mail was accepted for the other recipient(s)",
            )

    def _connect(self, server: MailServer) -> smtplib.SMTP:
        if server.security == "ssl":
            return smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._ssl_context,
            )
        if server.security in ("none", "starttls"):
            return smtplib.SMTP(
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
