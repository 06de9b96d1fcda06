"""The service configuration aggregate: the OS account and the service parameters."""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import event

from engine.domain.account import ServiceAccount
from engine.domain.aggregate import Aggregate
from engine.domain.log_retention import DEFAULT_LOG_RETENTION_DAYS, LogRetention

SERVICE_CONFIGURATION_ID = uuid5(UUID(int=0), "soa-engine/service-configuration")


class ServiceConfiguration(Aggregate):
    """The one configuration of the service in a configuration database.

    Holds the account the service runs under and the log retention. A password
    never enters this aggregate: it is checked before :meth:`set_account` is
    called and then forgotten.
    """

    class Created(Aggregate.Created):
        """Signals that the configuration record came into being (with the defaults)."""

    class Configured(Aggregate.Event):
        """Signals that the account was set for the first time, configuring the service."""

        account: str
        station: str

    class AccountChanged(Aggregate.Event):
        """Signals that the account was set again, to a new or the same name."""

        account: str
        previous_account: str
        station: str

    class LogRetentionChanged(Aggregate.Event):
        """Signals that log entries are now kept ``days`` days."""

        days: int
        previous_days: int
        station: str

    @staticmethod
    def create_id() -> UUID:
        return SERVICE_CONFIGURATION_ID

    @event(Created)
    def __init__(self) -> None:
        self.account: str | None = None
        self.log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS

    @property
    def is_configured(self) -> bool:
        return self.account is not None

    def set_account(self, account: str, station: str) -> None:
        """Set the account from ``station``; the first setting configures the service.

        :raises InvalidAccountError: if ``account`` is not ``DOMAIN\\user``.
        """
        account = str(ServiceAccount.parse(account))
        if self.account is None:
            self._configure(account=account, station=station)
        else:
            self._change_account(account=account, previous_account=self.account, station=station)

    @event(Configured)
    def _configure(self, account: str, station: str) -> None:
        self.account = account

    @event(AccountChanged)
    def _change_account(self, account: str, previous_account: str, station: str) -> None:
        self.account = account

    def set_log_retention(self, days: int, station: str) -> bool:
        """Keep log entries ``days`` days; return False if that was already so.

        :raises InvalidLogRetentionError: unless ``days`` is 5 to 30.
        """
        days = LogRetention.check(days)
        if days == self.log_retention_days:
            return False
        self._change_log_retention(
            days=days, previous_days=self.log_retention_days, station=station
        )
        return True

    @event(LogRetentionChanged)
    def _change_log_retention(self, days: int, previous_days: int, station: str) -> None:
        self.log_retention_days = days
