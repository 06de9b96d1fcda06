"""The operator notification that writes to the host's log (until e-mail is wired in)."""

from __future__ import annotations

import logging

from engine.ports.host import OperatorNotifier


class LoggingNotifier(OperatorNotifier):
    """Writes each notification as a warning to the host's log."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def notify(self, subject: str, message: str) -> None:
        self._logger.warning("operator notification: %s: %s", subject, message)
