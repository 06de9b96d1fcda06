"""Use cases of KSeF: configure a company's connection (environment, login by token or
certificate), show what was sent and what KSeF answered, reopen a rejected invoice, and
read an invoice's UPO. Sending is the ``ksef_send`` operation's work."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from stdnum.pl import nip as polish_nip

from engine.application.erp import ErpService
from engine.application.errors import InvalidRequestError
from engine.domain.errors import NotFoundError
from engine.erp.fields import WARSAW
from engine.erp.ksef import (
    KSEF_STATUS_OF,
    KsefLedger,
    KsefNotConfiguredError,
    KsefSettings,
    KsefSubmission,
    base_url_of,
)
from engine.ports.ksef import KSEF_ENVIRONMENTS, KsefClient

ENVIRONMENT_NAMES = (*KSEF_ENVIRONMENTS, "URL")


def polish_today() -> date:
    """Today in Poland, as KSeF counts issue dates."""
    return datetime.now(WARSAW).date()


class KsefService:
    """The KSeF use cases; a company's KSeF state is in its own database."""

    def __init__(self, *, erp: ErpService, client: KsefClient) -> None:
        self.erp = erp
        self.client = client

    def _ledger(self, company: str) -> KsefLedger:
        gateway = self.erp.gateway(company)
        if not isinstance(gateway, KsefLedger):
            raise InvalidRequestError("this installation's ERP data keeps no KSeF state")
        return gateway

    def configure(self, company: str, *, environment: str, url: str | None = None,
                  token: str | None = None, certificate_pem: str | None = None,
                  private_key_pem: str | None = None, nip: str | None = None,
                  since: date | None = None, enabled: bool = True) -> KsefSettings:
        """Set how ``company`` logs in to KSeF and from which issue date it sends.

        ``environment`` is TEST, DEMO or PROD, or URL with ``url``. Give a token, or a
        certificate with its private key (PEM, unencrypted: the CLI decrypts a protected
        key first); with neither, the stored login is kept. ``nip`` defaults to the
        seller's; ``since`` to the stored date, else today.

        :raises InvalidRequestError: for anything not allowed, with what is allowed.
        """
        name = environment.strip().upper()
        if name not in ENVIRONMENT_NAMES:
            raise InvalidRequestError(f"environment {environment!r} is not known; use one of "
                                      f"{', '.join(ENVIRONMENT_NAMES)}")
        if name == "URL":
            if url is None or not url.startswith(("http://", "https://")) or " " in url:
                raise InvalidRequestError("environment URL needs --url with an http:// or "
                                          "https:// address")
            base_url = url.rstrip("/")
        else:
            if url is not None:
                raise InvalidRequestError(f"--url is only for environment URL; {name} is "
                                          f"{base_url_of(name)}")
            base_url = str(base_url_of(name))
        if token is not None and certificate_pem is not None:
            raise InvalidRequestError("give a KSeF token or a certificate, not both")
        if (certificate_pem is None) != (private_key_pem is None):
            raise InvalidRequestError("a certificate login needs both the certificate and "
                                      "its private key")
        if token is not None and not token.strip():
            raise InvalidRequestError("the KSeF token is empty")
        ledger = self._ledger(company)
        stored = ledger.ksef_settings()
        if token is None and certificate_pem is None and stored is None:
            raise InvalidRequestError("the first configuration needs a login: a KSeF token "
                                      "(--token-stdin) or a certificate (--certificate, --key)")
        if certificate_pem is not None and private_key_pem is not None:
            from engine.adapters.ksef_certificates import KeyPairError, check_key_pair

            try:
                check_key_pair(certificate_pem, private_key_pem)
            except KeyPairError as error:
                raise InvalidRequestError(str(error)) from None
        method: Any = ("token" if token is not None else "certificate"
                       if certificate_pem is not None else stored.method if stored else "token")
        settings = KsefSettings(
            environment=name, base_url=base_url,
            nip=self._nip(company, nip, stored), method=method,
            since=since or (stored.since if stored else polish_today()), enabled=enabled,
            token=token.strip() if token is not None else None,
            certificate_pem=certificate_pem, private_key_pem=private_key_pem)
        ledger.configure_ksef(settings)
        configured = ledger.ksef_settings()
        assert configured is not None
        return configured

    def _nip(self, company: str, nip: str | None, stored: KsefSettings | None) -> str:
        if nip is not None:
            digits = polish_nip.compact(nip)
            if not polish_nip.is_valid(digits):
                raise InvalidRequestError(f"NIP {nip!r} is not valid; give the 10 digits of a "
                                          "Polish NIP (dashes allowed)")
            return str(digits)
        if stored is not None:
            return stored.nip
        seller = self.erp.gateway(company).data().seller
        if seller is None:
            raise InvalidRequestError("the company has no seller data to take the NIP from; "
                                      "load the seller first or give --nip")
        return seller.nip

    def settings(self, company: str) -> KsefSettings:
        """:raises NotFoundError: if the company has not configured KSeF."""
        settings = self._ledger(company).ksef_settings()
        if settings is None:
            raise NotFoundError(f"KSeF is not configured for company {company.strip()}")
        return settings

    def set_enabled(self, company: str, enabled: bool) -> KsefSettings:
        """Turn sending on or off, keeping the login."""
        settings = self.settings(company)
        from dataclasses import replace

        self._ledger(company).configure_ksef(replace(settings, enabled=enabled, token=None,
                                                     certificate_pem=None,
                                                     private_key_pem=None))
        return self.settings(company)

    def status(self, company: str) -> dict[str, Any]:
        """The settings (no secrets), counts per KSeF status, and every submission not
        accepted (rejected ones with KSeF's reason)."""
        ledger = self._ledger(company)
        settings = ledger.ksef_settings()
        submissions = ledger.ksef_submissions()
        counts = Counter(KSEF_STATUS_OF[submission.status] for submission in submissions)
        pending = 0
        if settings is not None and settings.enabled:
            pending = len(ledger.ksef_candidates(polish_today(), 1_000_000))
        return {
            "configured": settings is not None,
            "settings": None if settings is None else settings.as_json(),
            "counts": {"pending": pending, **{status: counts.get(status, 0) for status in
                                               ("sending", "processing", "accepted",
                                                "rejected")}},
            "open": [submission.as_json() for submission in submissions
                     if submission.status != "accepted"],
        }

    def submission(self, company: str, invoice: str) -> KsefSubmission:
        """:raises NotFoundError: if ``invoice`` was never prepared for KSeF."""
        found = self._ledger(company).ksef_submission(invoice)
        if found is None:
            raise NotFoundError(f"invoice {invoice} has not been sent to KSeF")
        return found

    def record_by_hand(self, company: str, invoice: str, ksef_number: str,
                       accepted_at: datetime | None = None) -> KsefSubmission:
        """Record the KSeF number of ``invoice`` sent to KSeF another way (an invoice the
        engine cannot send, such as one in a foreign currency): it counts as accepted and
        its e-mail goes out.

        :raises InvalidRequestError: for a malformed number, one of another NIP, an
            invoice that is not an issued VAT invoice, or one KSeF accepted already.
        """
        settings = self.settings(company)
        ledger = self._ledger(company)
        number = ksef_number.strip().upper()
        if not self.client.is_ksef_number(number):
            raise InvalidRequestError(f"{ksef_number!r} is not a KSeF number (NIP-YYYYMMDD-"
                                      "twelve hex digits-two hex digits of CRC-8)")
        if not number.startswith(settings.nip + "-"):
            raise InvalidRequestError(f"KSeF number {number} is not of NIP {settings.nip}")
        found = self.erp.gateway(company).invoice(invoice)
        if found is None or found.type != "FA" or found.status != "issued":
            raise InvalidRequestError(f"invoice {invoice} is not an issued VAT invoice of "
                                      f"company {company.strip()}")
        stored = ledger.ksef_submission(invoice)
        if stored is not None and stored.status != "rejected":
            raise InvalidRequestError(
                f"invoice {invoice} is {KSEF_STATUS_OF[stored.status]} in KSeF"
                + (f" as {stored.ksef_number}" if stored.ksef_number else "")
                + "; only an invoice not sent or rejected can be recorded by hand")
        ledger.record_ksef_by_hand(invoice, ksef_number=number,
                                   accepted_at=accepted_at or datetime.now(UTC))
        return self.submission(company, invoice)

    def reopen(self, company: str, invoice: str) -> None:
        """Let the next run make and send a rejected invoice again (after its data, such
        as the buyer's NIP, was corrected).

        :raises InvalidRequestError: if the invoice is not rejected.
        """
        ledger = self._ledger(company)
        if not ledger.reopen_ksef(invoice):
            found = ledger.ksef_submission(invoice)
            state = "has not been sent" if found is None \
                else f"is {KSEF_STATUS_OF[found.status]}"
            raise InvalidRequestError(f"invoice {invoice} {state}; only a rejected invoice "
                                      "can be reopened")


__all__ = ["ENVIRONMENT_NAMES", "KsefNotConfiguredError", "KsefService"]
