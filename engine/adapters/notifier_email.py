"""The operator notification by e-mail, through the engine's mail sender."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from engine.ports.host import OperatorNotifier
from engine.ports.outbound import DeliveryError, MailSender, MailServer, OutboundMail


class EmailNotifier(OperatorNotifier):
    """Mails each notification to ``to`` through ``server``; a mail that cannot be
    delivered is written to ``logger`` instead (a notification never fails a run)."""

    def __init__(self, mail: MailSender, server: MailServer, to: tuple[str, ...],
                 logger: logging.Logger) -> None:
        self._mail = mail
        self._server = server
        self._to = to
        self._logger = logger

    def notify(self, subject: str, message: str) -> None:
        now = datetime.now(UTC)
        mail = OutboundMail(
            to=self._to, subject=f"SOA: {subject}",
            text=f"{message}\n\n({now:%Y-%m-%d %H:%M} UTC)\n",
            idempotency_key=f"operator-notification/{now.isoformat()}/{subject}",
        )
        try:
            self._mail.send(self._server, mail)
        except DeliveryError as error:
            self._logger.warning("operator notification not mailed (%s): %s: %s", error,
                                 subject, message)
