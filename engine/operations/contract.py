"""The contract between the engine and an automatic operation (built-in or plugin).

An operation is built once per host by the composition root, given the host-wide ports
it asks for (:class:`OperationPorts`), and called once per attempt with a
:class:`RunContext` that carries the run's identity, its parameters and the company's
resources. An operation never builds a database engine or a network client itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from engine.domain.errors import SoaError
from engine.ports.host import Clock
from engine.ports.outbound import CompanyDatabase, HttpClients, MailSender, SmsSender
from engine.ports.runs import CheckpointStore

if TYPE_CHECKING:
    from engine.erp.gateway import ErpGateway
    from engine.erp.printing import DocumentPrinter
    from engine.ports.ksef import KsefClient

__all__ = [
    "CheckpointStore",
    "CompanyResources",
    "Operation",
    "OperationPorts",
    "RunContext",
    "counts_of",
]


@dataclass(frozen=True)
class OperationPorts:
    """What the host gives an operation when it builds it, shared by all its runs.

    A plugin's factory (the entry point) receives it if it takes one argument.
    """

    clock: Clock
    logger: logging.Logger


class ErpNotAvailableError(SoaError):
    """Signals an operation that needs the company's ERP data where the host gives none."""


@dataclass(frozen=True)
class CompanyResources:
    """What a run may use to act on its company: its database (and the ERP data in it),
    outbound mail and SMS (the company's accounts are given with each message), pooled
    HTTP clients, the PDF printer and the KSeF client."""

    database: CompanyDatabase
    mail: MailSender
    sms: SmsSender
    http: HttpClients
    erp_gateway: ErpGateway | None = None
    printer: DocumentPrinter | None = None
    ksef: KsefClient | None = None

    @property
    def erp(self) -> ErpGateway:
        """The company's ERP data.

        :raises ErpNotAvailableError: if the host was built without it.
        """
        if self.erp_gateway is None:
            raise ErpNotAvailableError("this host gives operations no ERP data gateway")
        return self.erp_gateway


@dataclass(frozen=True)
class RunContext:
    """What an operation gets for one attempt of one run.

    ``run_id`` is the idempotency key for every effect of the run: it is the
    same on every attempt of the occurrence and never shared with another.
    """

    run_id: str
    task_id: str
    company: str
    scheduled_for: datetime
    attempt: int
    params: Any
    checkpoints: CheckpointStore
    resources: CompanyResources
    cancelled: threading.Event = field(default_factory=threading.Event)
    as_of: datetime | None = None
    """The instant a manual run asked to act as of; None: ``scheduled_for``."""
    warnings: list[str] = field(default_factory=list)
    """What the attempt warned about so far (see :meth:`warn`)."""

    @property
    def instant(self) -> datetime:
        """The instant the operation acts as of: what is due up to it is done."""
        return self.as_of if self.as_of is not None else self.scheduled_for

    def warn(self, message: str) -> None:
        """Note ``message`` (one line): the run succeeds, and its log entry is a warning
        that lists the messages."""
        self.warnings.append(" ".join(message.split()))

    @property
    def company_database_url(self) -> str:
        """The company database's URL (release 0.1 gave only this; use
        ``resources.database`` for a pooled engine)."""
        return self.resources.database.url

    def is_cancelled(self) -> bool:
        """True once the run passed its timeout or the host is stopping: return soon."""
        return self.cancelled.is_set()


@runtime_checkable
class Operation(Protocol):
    """An automatic operation of one kind.

    ``params_model`` validates the task's parameters (unknown keys are refused);
    None means the kind takes no parameters. ``run`` does one attempt and
    returns counts of what it did (shown in the log), or None; an exception
    fails the attempt.
    """

    kind: str
    params_model: type[BaseModel] | None

    def run(self, ctx: RunContext) -> Mapping[str, int] | None: ...


def counts_of(result: object) -> dict[str, int]:
    """What :meth:`Operation.run` returned, as counts; anything else fails the attempt.

    :raises TypeError: unless ``result`` is None or a mapping of text to whole numbers.
    """
    if result is None:
        return {}
    if not isinstance(result, Mapping) or not all(
        isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
        for key, value in result.items()
    ):
        raise TypeError(
            f"run() returned {type(result).__name__}; expected a mapping of str to int or None"
        )
    return dict(result)
