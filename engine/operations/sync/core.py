"""The shared core of the seven partner synchronisations.

A partner's operation declares its **exports** (which change-log entities it follows and
how it sends a batch of changed keys) and its **imports** (how it fetches a page after a
cursor and writes it into the ERP). A run:

1. does a full synchronisation when none was done yet or one was asked for
   (``soa sync reset``): export watermarks start again from 0 under a new generation;
2. per export stream, reads the changes after its watermark in batches of the partner's
   batch size, sends each batch with an idempotency key made of the partner, the
   generation, the stream and the batch's range of change numbers, and keeps the new
   watermark once the partner accepted it;
3. per import stream, fetches pages after its cursor and writes each page together with
   the new cursor in one transaction, skipping what the partner's id shows is stored;
4. records the synchronisation (or its one-line error) in the partner's state.

Exactly once: a batch whose acceptance was not kept (a crash, a lost answer) is sent
again with the same key, which the partner answers as already done; a page whose
cursor was not kept is fetched again and its items are recognised by their ids.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from engine.adapters.partners.http import PartnerHttp
from engine.domain.errors import DomainError, SoaError
from engine.erp.sync import Change, ImportWriter, PartnerConnection, SyncGateway
from engine.erp.trade import SalesOrder
from engine.operations.contract import ErpNotAvailableError, RunContext
from engine.operations.erp.common import RunCancelledError


class PartnerNotConfiguredError(DomainError):
    """Signals a synchronisation of a partner the company has not configured."""


class PartnerSettingsError(DomainError):
    """Signals partner settings that the partner's model refuses."""


class SyncParams(BaseModel):
    """Parameters of a synchronisation task (the partner's own settings are the
    company's: ``soa sync configure``)."""

    model_config = ConfigDict(extra="forbid")
    full: bool = Field(default=False, description="Every run is a full synchronisation.")


class PartnerSettings(BaseModel):
    """The base of each partner's settings model: unknown keys are refused; a list may be
    given as comma-separated text (``MAG1,MAG2``), a mapping as comma-separated pairs
    (``paid=transfer,cash_on_delivery=cash``), as ``soa sync configure --set`` gives
    them."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        annotation = str(cls.model_fields[info.field_name].annotation)
        if annotation.startswith("list"):
            return [part.strip() for part in value.split(",") if part.strip()]
        if annotation.startswith("dict"):
            pairs = [part.split("=", 1) for part in value.split(",") if "=" in part]
            return {name.strip(): item.strip() for name, item in pairs}
        return value


@dataclass
class SyncJob:
    """One run of a synchronisation."""

    partner: str
    run_id: str
    instant: datetime
    gateway: SyncGateway
    http: PartnerHttp
    connection: PartnerConnection
    settings: Any
    full: bool
    generation: int
    warn: Callable[[str], None] = lambda message: None
    is_cancelled: Callable[[], bool] = lambda: False
    counts: Counter[str] = field(default_factory=Counter)

    def key(self, *parts: object) -> str:
        """An idempotency key of this partner and generation."""
        return "/".join([self.partner, f"g{self.generation}", *map(str, parts)])

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise RunCancelledError("the synchronisation was stopped; the next run goes on "
                                    "from the last batch the partner accepted")


@dataclass(frozen=True)
class Export:
    """An export stream: the entities it follows and how a batch is sent.

    ``send(job, upserted, deleted, key)`` sends the changed keys (still stored) and the
    deleted ones with idempotency keys derived from ``key``; it returns how many items
    went out.

    ``full_entities``: what a full synchronisation reads (default: ``entities``). A
    stream whose payload carries the whole current state of a key names fewer: say
    ``("product",)`` where stock and price changes are sent inside the product's
    payload anyway; ``()`` for a stream another one covers completely in a full run.
    """

    stream: str
    entities: tuple[str, ...]
    send: Callable[[SyncJob, list[str], list[str], str], int]
    full_entities: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Import:
    """An import stream: ``fetch(job, cursor)`` gives a page and the cursor after it;
    ``store(job, writer, items)`` writes the items not stored yet and returns how many
    it created."""

    stream: str
    fetch: Callable[[SyncJob, str | None], tuple[list[dict[str, Any]], str | None]]
    store: Callable[[SyncJob, ImportWriter, list[dict[str, Any]]], int]


class PartnerSync:
    """The operation of one partner: subclasses set ``partner``, ``settings_model`` and
    give their streams; the core does the rest."""

    partner: ClassVar[str]
    settings_model: ClassVar[type[PartnerSettings]] = PartnerSettings
    params_model: ClassVar[type[BaseModel]] = SyncParams

    @property
    def kind(self) -> str:
        return f"sync_{self.partner}"

    def exports(self) -> Sequence[Export]:
        return ()

    def imports(self) -> Sequence[Import]:
        return ()

    # -- hooks ------------------------------------------------------------------------------

    def auth_headers(self, job: SyncJob) -> dict[str, str]:
        """Headers that authorise a request (default: the credential as a bearer token)."""
        credential = job.connection.credential
        return {"Authorization": f"Bearer {credential}"} if credential else {}

    def begin_full(self, job: SyncJob) -> None:
        """What the partner needs before a full synchronisation's exports."""

    def after_imports(self, job: SyncJob) -> None:
        """What the partner is told once imports are stored (acknowledgements)."""

    def on_unauthorized(self, job: SyncJob) -> None:
        """Called once on a 401 before the request is tried again (a token refresh)."""

    # -- the run ------------------------------------------------------------------------------

    def run(self, ctx: RunContext) -> dict[str, int]:
        gateway = ctx.resources.erp
        if not isinstance(gateway, SyncGateway):
            raise ErpNotAvailableError("this host gives operations no synchronisation data")
        connection = gateway.connection(self.partner)
        if connection is None:
            raise PartnerNotConfiguredError(
                f"partner {self.partner} is not configured for this company; run soa sync "
                f"configure COMPANY {self.partner} --url URL first")
        params = ctx.params if isinstance(ctx.params, SyncParams) \
            else SyncParams.model_validate(ctx.params or {})
        client = ctx.resources.http.client(f"partner:{ctx.company}:{self.partner}",
                                           base_url=connection.url.rstrip("/"))
        job_ref: list[SyncJob] = []
        http = PartnerHttp(
            client, self.partner, rate_limit=connection.rate_limit,
            random=random.Random(ctx.run_id),
            auth=lambda: self.auth_headers(job_ref[0]),
            on_unauthorized=lambda: self.on_unauthorized(job_ref[0]),
        )
        full = params.full or connection.full_requested
        generation = gateway.begin_full(self.partner) if full else connection.generation
        job = SyncJob(
            partner=self.partner, run_id=ctx.run_id, instant=ctx.instant, gateway=gateway,
            http=http, connection=connection, settings=self.settings(connection), full=full,
            generation=generation, warn=ctx.warn, is_cancelled=ctx.is_cancelled)
        job_ref.append(job)
        try:
            self.synchronise(job)
        except SoaError as error:
            gateway.record_error(self.partner, str(error))
            raise
        gateway.finish(self.partner, full=full, at=ctx.instant)
        return {"full": int(full), **job.counts}

    def settings(self, connection: PartnerConnection) -> Any:
        try:
            return self.settings_model.model_validate(connection.settings)
        except ValidationError as error:
            raise PartnerSettingsError(settings_error(self.partner, error)) from None

    def synchronise(self, job: SyncJob) -> None:
        """The exports, then the imports and their acknowledgements."""
        if job.full:
            if FULL_BASE not in job.gateway.positions(job.partner):
                # before any export of this generation: what every full payload covers
                job.gateway.save_position(job.partner, FULL_BASE,
                                          str(job.gateway.last_change()))
            self.begin_full(job)
        for export in self.exports():
            export_changes(job, export)
        for stream in self.imports():
            import_pages(job, stream)
        self.after_imports(job)


def settings_error(partner: str, error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    message = "is not a setting of this partner (docs/partners/)" \
        if first["type"] == "extra_forbidden" else first["msg"]
    return f"setting {where} of partner {partner}: {message}"


FULL_BASE = "out:full-base"
"""The position holding the last change number committed when the full synchronisation
of this generation began: every payload the full run sends covers the changes up to it."""
FULL_PASS = "full:"
"""A watermark of the full pass over ``full_entities``, such as ``full:1200``."""


def export_changes(job: SyncJob, export: Export) -> None:
    """Send the stream's changes after its watermark, a batch at a time.

    In a full run, a stream with ``full_entities`` first passes over those (its position
    reads ``full:N``), then continues from the full run's base: changes up to it are
    covered by the payloads sent, later ones are read again by the next run.
    """
    position = f"out:{export.stream}"
    positions = job.gateway.positions(job.partner)
    stored = positions.get(position, "")
    partial = job.full and export.full_entities is not None \
        and (stored == "" or stored.startswith(FULL_PASS))
    if partial:
        assert export.full_entities is not None
        if export.full_entities:
            _send_changes(job, export, export.full_entities, position,
                          int(stored.removeprefix(FULL_PASS) or "0"), FULL_PASS)
        job.gateway.save_position(job.partner, position, positions.get(FULL_BASE, "0"))
        return
    _send_changes(job, export, export.entities, position, int(stored or "0"), "")


def _send_changes(job: SyncJob, export: Export, entities: tuple[str, ...], position: str,
                  watermark: int, prefix: str) -> None:
    """Send batches of changes after ``watermark``. A key sent earlier in this run whose
    state was read after its new change was committed is not sent again: a stream that
    follows several entities (a product's stock and its prices) sends a key once, not once
    per entity."""
    size = job.connection.batch_size
    covered: dict[str, int] = {}
    """Key -> the last change number committed before its state was read and sent."""
    while True:
        job.check_cancelled()
        horizon = job.gateway.last_change()  # before the batch's state is read
        changes = job.gateway.changes(entities, watermark, size)
        if not changes:
            return
        upserted, deleted = split([change for change in changes
                                   if change.seq > covered.get(change.key, 0)])
        last = changes[-1].seq
        key = job.key(export.stream, f"{prefix}{watermark + 1}-{last}")
        sent = export.send(job, upserted, deleted, key) if upserted or deleted else 0
        job.gateway.save_position(job.partner, position, f"{prefix}{last}", sent=sent)
        job.counts["sent"] += sent
        covered.update((item, horizon) for item in (*upserted, *deleted))
        watermark = last


def split(changes: Sequence[Change]) -> tuple[list[str], list[str]]:
    """The keys changed (upserted) and deleted, each once, in order; a key both changed
    and deleted in the batch counts by its latest change."""
    latest = {change.key: change for change in changes}
    upserted = [key for key, change in latest.items() if not change.deleted]
    deleted = [key for key, change in latest.items() if change.deleted]
    return upserted, deleted


def changed_orders(job: SyncJob) -> Iterator[list[SalesOrder]]:
    """The partner's customer orders changed since the last call of an earlier run (by
    the import that brought them in, by the ERP, or by an acknowledgement), a batch at a
    time: what status reports and confirmations look at. The position (``ack:orders``)
    advances once the caller has handled a batch, so the work scales with the changes,
    not with every order ever brought in."""
    position = "ack:orders"
    watermark = int(job.gateway.positions(job.partner).get(position, "0"))
    while True:
        job.check_cancelled()
        changes = job.gateway.changes(("sales_order",), watermark, job.connection.batch_size)
        if not changes:
            return
        keys = [change.key for change in changes if not change.deleted]
        yield [order for order in job.gateway.records("sales_orders", keys)
               if order.partner == job.partner and order.partner_order_id is not None]
        watermark = changes[-1].seq
        job.gateway.save_position(job.partner, position, str(watermark))


def import_pages(job: SyncJob, stream: Import) -> None:
    """Fetch and store pages after the stream's cursor until the partner has no more."""
    position = f"in:{stream.stream}"
    cursor = job.gateway.positions(job.partner).get(position)
    while True:
        job.check_cancelled()
        items, after = stream.fetch(job, cursor)
        if not items:
            if after is not None and after != cursor:
                with job.gateway.importing() as writer:
                    writer.set_position(job.partner, position, after)
            return
        with job.gateway.importing() as writer:
            created = stream.store(job, writer, items)
            writer.set_position(job.partner, position, after or cursor or "",
                                received=created)
        job.counts["received"] += created
        job.counts["skipped"] += len(items) - created
        if after is None or after == cursor:
            return
        cursor = after
