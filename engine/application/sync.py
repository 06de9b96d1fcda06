"""Use cases of the partner synchronisations: configure a partner for a company, log in
to wszystko.pl, show each partner's state, and ask for a full synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from engine.application.erp import ErpService
from engine.application.errors import InvalidRequestError
from engine.domain.errors import NotFoundError
from engine.erp.sync import SyncGateway, SyncStatus
from engine.erp.trade import PARTNERS
from engine.operations.registry import OperationRegistry
from engine.ports.outbound import HttpClients

DEVICE_LOGIN_TIMEOUT = 600.0


class SyncService:
    """The synchronisation use cases; a company's state is in its own database."""

    def __init__(self, *, erp: ErpService, registry: OperationRegistry,
                 http: HttpClients) -> None:
        self.erp = erp
        self.registry = registry
        self.http = http

    def _gateway(self, company: str) -> SyncGateway:
        gateway = self.erp.gateway(company)
        if not isinstance(gateway, SyncGateway):
            raise InvalidRequestError("this installation's ERP data has no synchronisations")
        return gateway

    @staticmethod
    def check_partner(partner: str) -> str:
        """:raises InvalidRequestError: for a name that is not one of the seven."""
        if partner not in PARTNERS:
            raise InvalidRequestError(f"partner {partner!r} is not known; partners are "
                                      f"{', '.join(PARTNERS)}")
        return partner

    def configure(self, company: str, partner: str, *, url: str, credential: str | None,
                  settings: Mapping[str, str], batch_size: int | None = None,
                  rate_limit: float | None = None) -> None:
        """Set how the company reaches ``partner``; settings are merged into the stored
        ones and checked against the partner's model.

        :raises InvalidRequestError: for an unknown partner, a bad URL or a bad setting.
        """
        from engine.operations.sync.core import PartnerSync, settings_error

        self.check_partner(partner)
        if not url.startswith(("http://", "https://")) or " " in url:
            raise InvalidRequestError(f"url {url!r} is not an http:// or https:// address")
        gateway = self._gateway(company)
        stored = gateway.connection(partner)
        merged: dict[str, Any] = {**(stored.settings if stored else {}), **settings}
        operation = self.registry.get(f"sync_{partner}")
        if isinstance(operation, PartnerSync):
            try:
                checked = operation.settings_model.model_validate(merged)
            except ValidationError as error:
                raise InvalidRequestError(settings_error(partner, error)) from None
            merged = checked.model_dump(mode="json")
        gateway.configure(partner, url=url, credential=credential, settings=merged,
                          batch_size=batch_size, rate_limit=rate_limit)

    def statuses(self, company: str) -> list[SyncStatus]:
        return self._gateway(company).statuses()

    def reset(self, company: str, partner: str) -> None:
        """Ask for a full synchronisation of ``partner`` at its next run.

        :raises NotFoundError: if the company has not configured it.
        """
        self.check_partner(partner)
        if not self._gateway(company).request_full(partner):
            raise NotFoundError(f"partner {partner} is not configured for company "
                                f"{company.strip()}; configure it with soa sync configure")

    def login(self, company: str, partner: str, *, show: Callable[[str], None],
              timeout: float = DEVICE_LOGIN_TIMEOUT,
              sleep: Callable[[float], None] = time.sleep) -> None:
        """The device-code login of wszystko.pl: ``show`` gets the address to approve the
        device at; the tokens are kept encrypted once it is approved.

        :raises InvalidRequestError: for another partner or one not configured.
        """
        from engine.adapters.partners.http import PartnerHttp, PartnerRequestError

        if self.check_partner(partner) != "wszystkopl":
            raise InvalidRequestError(f"partner {partner} logs in with its credential "
                                      "(soa sync configure --credential-stdin); only "
                                      "wszystkopl has a device login")
        gateway = self._gateway(company)
        connection = gateway.connection(partner)
        if connection is None:
            raise InvalidRequestError(f"partner {partner} is not configured for company "
                                      f"{company.strip()}; run soa sync configure first")
        http = PartnerHttp(self.http.client(f"login:{company}:{partner}",
                                            base_url=connection.url.rstrip("/")), partner)
        device = http.get("/integration/register")
        show(str(device.get("verificationUriPrettyComplete") or device.get("userCode")))
        deadline = time.monotonic() + timeout
        interval = float(device.get("interval") or 1)
        while True:
            try:
                tokens = http.get("/integration/token",
                                  {"deviceCode": str(device["deviceCode"])})
                break
            except PartnerRequestError as error:
                if time.monotonic() > deadline:
                    raise InvalidRequestError("the device was not approved in time; run soa "
                                              "sync login again") from None
                if error.status not in (400, 428):
                    raise
                sleep(interval)
        gateway.save_tokens(partner, dict(tokens))


def status_rows(statuses: Sequence[SyncStatus]) -> list[dict[str, Any]]:
    return [status.as_json() for status in statuses]
