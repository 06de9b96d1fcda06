"""Ports: what the engine needs from the outside world, as abstract classes.

Adapters implement them (``engine.adapters``, ``engine.projections``); tests use fakes
that subclass them. The application layer and the operations depend on these only.
"""

from engine.ports.host import (
    Clock,
    CredentialChecker,
    CredentialRejectedError,
    HostLease,
    HostLeases,
    OperatorNotifier,
    Processes,
    SystemClock,
)
from engine.ports.outbound import (
    CompanyDatabase,
    CompanyDatabases,
    DeliveryError,
    HttpClients,
    MailAttachment,
    MailSender,
    MailServer,
    OutboundMail,
    OutboundSms,
    SmsGateway,
    SmsSender,
)
from engine.ports.read_models import (
    LOG_STATUSES,
    CompanyView,
    LogEntry,
    LogStatus,
    ReadModels,
    RunView,
    ServiceView,
    TaskView,
)
from engine.ports.runs import CheckpointStore, CheckpointStores
from engine.ports.store import (
    EventStore,
    GroupCommit,
    InvalidDatabaseUrlError,
    PendingSave,
    StoreUnavailableError,
    WriteConflictError,
)

__all__ = [
    "LOG_STATUSES",
    "CheckpointStore",
    "CheckpointStores",
    "Clock",
    "CompanyDatabase",
    "CompanyDatabases",
    "CompanyView",
    "CredentialChecker",
    "CredentialRejectedError",
    "DeliveryError",
    "EventStore",
    "GroupCommit",
    "HostLease",
    "HostLeases",
    "HttpClients",
    "InvalidDatabaseUrlError",
    "LogEntry",
    "LogStatus",
    "MailAttachment",
    "MailSender",
    "MailServer",
    "OperatorNotifier",
    "OutboundMail",
    "OutboundSms",
    "PendingSave",
    "Processes",
    "ReadModels",
    "RunView",
    "ServiceView",
    "SmsGateway",
    "SmsSender",
    "StoreUnavailableError",
    "SystemClock",
    "TaskView",
    "WriteConflictError",
]
