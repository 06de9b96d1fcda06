"""Ports: what the engine needs from the outside world, as abstract classes.

Adapters implement them (``engine.adapters``, ``engine.projections``); tests use fakes
that subclass them. The application layer and the operations depend on these only.
Names are loaded on first use.
"""

from __future__ import annotations

from engine.lazy_exports import lazy_exports as _lazy_exports

_WHERE = {
    "Clock": "host",
    "CredentialChecker": "host",
    "CredentialRejectedError": "host",
    "HostLease": "host",
    "HostLeases": "host",
    "OperatorNotifier": "host",
    "Processes": "host",
    "SystemClock": "host",
    "CompanyDatabase": "outbound",
    "CompanyDatabases": "outbound",
    "DeliveryError": "outbound",
    "HttpClients": "outbound",
    "MailAttachment": "outbound",
    "MailSender": "outbound",
    "MailServer": "outbound",
    "OutboundMail": "outbound",
    "OutboundSms": "outbound",
    "SmsGateway": "outbound",
    "SmsSender": "outbound",
    "LOG_STATUSES": "read_models",
    "CompanyView": "read_models",
    "LogEntry": "read_models",
    "LogStatus": "read_models",
    "ReadModels": "read_models",
    "RunView": "read_models",
    "ServiceView": "read_models",
    "TaskView": "read_models",
    "CheckpointStore": "runs",
    "CheckpointStores": "runs",
    "EventStore": "store",
    "GroupCommit": "store",
    "InvalidDatabaseUrlError": "store",
    "PendingSave": "store",
    "StoreUnavailableError": "store",
    "WriteConflictError": "store",
}

__all__, __getattr__ = _lazy_exports(__name__, _WHERE)
