"""The composition root: the only place that builds concrete adapters.

:func:`build_services` opens the store named by the settings and returns the
application services of one station (:class:`ApplicationServices`); each service, and
each adapter only some commands need, is built on first use, so that a command imports
and opens only what it calls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING
from uuid import UUID

from engine.adapters.credentials import LazyCredentialChecker
from engine.adapters.event_store import EVENTS_TABLE, EventsourcingStore
from engine.adapters.lease_sqlalchemy import SqlHostLeases
from engine.adapters.processes_psutil import PsutilProcesses
from engine.adapters.schema import ensure_schema
from engine.adapters.sql import create_sql_engine, parse_database_url, store_errors
from engine.application.liveness import HostLiveness
from engine.application.service import Connection, ServiceApplication
from engine.application.unit_of_work import UnitOfWork
from engine.ports.host import (
    Clock,
    CredentialChecker,
    OperatorNotifier,
    Processes,
    RunObserver,
    SystemClock,
)
from engine.projections.read_models import SqlReadModels
from engine.service_host.host import SchedulerFactory
from engine.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.adapters.group_commit import GroupCommitter
    from engine.adapters.soa_store import SoaStore
    from engine.application.erp import ErpService
    from engine.application.ksef import KsefService
    from engine.application.runs import RunService
    from engine.application.sync import SyncService
    from engine.application.tasks import TaskService
    from engine.erp.gateway import ErpGateways
    from engine.erp.printing import DocumentPrinter
    from engine.operations.registry import OperationRegistry
    from engine.ports.ksef import KsefClient
    from engine.ports.outbound import CompanyDatabases, HttpClients, MailSender, SmsSender
    from engine.service_host.api.server import ApiServer


def connection_fields(settings: Settings) -> Connection:
    """The read-only connection fields, filled from the engine's own settings.

    :raises InvalidDatabaseUrlError: for a store URL the engine cannot use.
    """
    url = parse_database_url(settings.store_url)
    if url.drivername.startswith("sqlite"):
        sql_server = "embedded SQLite"
        database = url.database or ":memory:"
    else:
        sql_server = f"{url.host or 'localhost'}:{url.port or 5432}"
        database = url.database or ""
    return Connection(
        sql_server=sql_server,
        config_database=database,
        key_server=settings.key_server or None,
        edition=settings.edition,
    )


@dataclass
class ApplicationServices:
    """The engine's application services as one station uses them, over one store:
    :attr:`service` (configuration, ownership, status, logs), :attr:`tasks` (companies
    and tasks), :attr:`runs` (runs). Close it when done."""

    settings: Settings
    clock: Clock
    sql_engine: Engine
    store: EventsourcingStore
    read_models: SqlReadModels
    connection: Connection
    credentials: CredentialChecker
    processes: Processes
    registry_factory: Callable[[], OperationRegistry]
    notifier: OperatorNotifier | None = None
    observer: RunObserver | None = None
    """Told of every attempt's end (the host's metrics); set before :attr:`runs` is built."""

    @cached_property
    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.store)

    @cached_property
    def leases(self) -> SqlHostLeases:
        return SqlHostLeases(self.sql_engine)

    @cached_property
    def liveness(self) -> HostLiveness:
        return HostLiveness(
            uow=self.uow, leases=self.leases, processes=self.processes, clock=self.clock,
            lease_seconds=self.settings.lease_seconds,
        )

    @cached_property
    def service(self) -> ServiceApplication:
        return self._service_of(self.settings.station)

    def service_for(self, station: str | None) -> ServiceApplication:
        """The service as ``station`` sees it (None: this station), for a command another
        station gives through the API.

        :raises InvalidStationError: for a malformed station name.
        """
        if station is None or station == self.settings.station:
            return self.service
        return self._service_of(station)

    def _service_of(self, station: str) -> ServiceApplication:
        return ServiceApplication(
            uow=self.uow, read_models=self.read_models, liveness=self.liveness,
            leases=self.leases, credentials=self.credentials, clock=self.clock,
            station=station, connection=self.connection,
            failure_warning_threshold=self.settings.failure_warning_threshold,
        )

    @cached_property
    def registry(self) -> OperationRegistry:
        return self.registry_factory()

    @cached_property
    def company_databases(self) -> CompanyDatabases:
        from engine.adapters.company_databases import SqlCompanyDatabases

        return SqlCompanyDatabases(self.settings.home)

    @cached_property
    def tasks(self) -> TaskService:
        from engine.application.tasks import TaskService

        return TaskService(
            uow=self.uow, read_models=self.read_models, registry=self.registry,
            databases=self.company_databases, clock=self.clock,
        )

    @cached_property
    def writer(self) -> GroupCommitter:
        """The group commit every save of the host's runs goes through."""
        from engine.adapters.group_commit import GroupCommitter

        return GroupCommitter(self.store)

    @cached_property
    def http_clients(self) -> HttpClients:
        from engine.adapters.http_clients import PooledHttpClients

        return PooledHttpClients()

    @cached_property
    def erp_gateways(self) -> ErpGateways:
        from engine.adapters.cipher_box import CipherBox
        from engine.adapters.erp_sync_sql import SqlCompanyGateways
        from engine.adapters.secret_box import SecretBox

        return SqlCompanyGateways(
            SecretBox.from_home(self.settings.home, self.settings.secret_key),
            CipherBox.from_home(self.settings.home, self.settings.cipher_key))

    @cached_property
    def printer(self) -> DocumentPrinter:
        from engine.adapters.pdf_fpdf import FpdfDocumentPrinter

        return FpdfDocumentPrinter()

    @cached_property
    def ksef_client(self) -> KsefClient:
        from engine.adapters.ksef_sdk import SdkKsefClient

        return SdkKsefClient()

    @cached_property
    def ksef(self) -> KsefService:
        from engine.application.ksef import KsefService

        return KsefService(erp=self.erp, client=self.ksef_client)

    @cached_property
    def mail(self) -> MailSender:
        from engine.adapters.mail_smtp import SmtpMailSender

        return SmtpMailSender()

    @cached_property
    def sms(self) -> SmsSender:
        from engine.adapters.sms_http import HttpSmsSender

        return HttpSmsSender(self.http_clients.client("sms"))

    @cached_property
    def erp(self) -> ErpService:
        from engine.application.erp import ErpService

        return ErpService(
            read_models=self.read_models, databases=self.company_databases,
            gateways=self.erp_gateways, registry=self.registry, clock=self.clock,
            mail=self.mail, sms=self.sms, printer=self.printer,
        )

    @cached_property
    def sync(self) -> SyncService:
        from engine.application.sync import SyncService

        return SyncService(erp=self.erp, registry=self.registry, http=self.http_clients)

    @cached_property
    def runs(self) -> RunService:
        from engine.adapters.checkpoints_sqlalchemy import SqlCheckpointStores
        from engine.application.runs import RunResources, RunService

        resources = RunResources(
            checkpoints=SqlCheckpointStores(self.sql_engine),
            databases=self.company_databases,
            mail=self.mail,
            sms=self.sms,
            http=self.http_clients,
            erp=self.erp_gateways,
            printer=self.printer,
            ksef=self.ksef_client,
        )
        return RunService(
            uow=self.uow, writer=self.writer, read_models=self.read_models,
            registry=self.registry, resources=resources,
            notifier=self.notifier or self._operator_notifier(),
            clock=self.clock, station=self.service.station,
            failure_warning_threshold=self.settings.failure_warning_threshold,
            observer=self.observer,
        )

    def _operator_notifier(self) -> OperatorNotifier:
        """By e-mail when ``SOA_NOTIFY_EMAIL`` names addresses, else to the host's log."""
        from engine.adapters.notifier_email import EmailNotifier
        from engine.adapters.notifier_log import LoggingNotifier
        from engine.ports.outbound import MailServer

        logger = logging.getLogger("soa.host")
        settings = self.settings
        to = tuple(address.strip() for address in settings.notify_email.split(",")
                   if address.strip())
        if not to:
            return LoggingNotifier(logger)
        server = MailServer(
            host=settings.notify_smtp_host, port=settings.notify_smtp_port,
            security=settings.notify_smtp_security, sender=settings.notify_smtp_sender,
            username=settings.notify_smtp_username, password=settings.notify_smtp_password,
        )
        return EmailNotifier(self.mail, server, to, logger)

    def close(self) -> None:
        """Release connections: the company databases', HTTP clients', the store's."""
        if "company_databases" in self.__dict__:
            self.company_databases.close()
        if "http_clients" in self.__dict__:
            self.http_clients.close()
        self.store.close()
        self.sql_engine.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credentials: CredentialChecker | None = None,
    registry: OperationRegistry | None = None,
    processes: Processes | None = None,
    notifier: OperatorNotifier | None = None,
) -> ApplicationServices:
    """Open the store named by ``settings`` (creating its tables on first use, no DDL
    after) and wire the adapters of the application services.

    :raises InvalidDatabaseUrlError: for a store URL the engine cannot use.
    :raises StoreUnavailableError: if the store cannot be opened.
    """
    connection = connection_fields(settings)
    if settings.uses_embedded_store:
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    clock = clock or SystemClock()
    url = settings.store_url
    sql_engine = create_sql_engine(url)
    def open_store() -> SoaStore:
        from engine.adapters.soa_store import sql_soa_store

        return sql_soa_store(url, sql_engine)

    store = EventsourcingStore(open_store)
    with store_errors():
        ensure_schema(sql_engine, create_event_tables=lambda: store.app.create_tables())

    def default_registry() -> OperationRegistry:
        from engine.operations.contract import OperationPorts
        from engine.operations.registry import OperationRegistry

        return OperationRegistry(
            ports=OperationPorts(clock=clock, logger=logging.getLogger("soa.operations"))
        )

    return ApplicationServices(
        settings=settings, clock=clock, sql_engine=sql_engine, store=store,
        read_models=SqlReadModels(sql_engine, store, events_table=EVENTS_TABLE),
        connection=connection,
        credentials=credentials or LazyCredentialChecker(settings.credential_checker),
        processes=processes or PsutilProcesses(),
        registry_factory=(lambda: registry) if registry is not None else default_registry,
        notifier=notifier,
    )


def scheduler_factory(services: ApplicationServices, logger: logging.Logger) -> SchedulerFactory:
    """How the host builds its task scheduler for a session."""
    from engine.application.runs import HostSession
    from engine.service_host.scheduler import SchedulerSettings, TaskScheduler

    settings = services.settings
    scheduler_settings = SchedulerSettings(
        max_concurrent_runs=settings.max_concurrent_runs,
        max_catch_up=settings.max_catch_up,
        stop_grace_seconds=settings.stop_grace_seconds,
    )

    def build(session_id: UUID, may_run: Callable[[], bool]) -> TaskScheduler:
        session = HostSession(station=services.service.station, pid=os.getpid(),
                              session_id=session_id)
        return TaskScheduler(runs=services.runs, session=session, settings=scheduler_settings,
                             logger=logger, may_run=may_run)

    return build


def api_token(settings: Settings) -> str:
    """The API's bearer token (``SOA_API_TOKEN``, else ``SOA_HOME/api-token``, made once)."""
    from engine.adapters.api_token import api_token as load

    return load(settings.home, settings.api_token)


def host_api(services: ApplicationServices, logger: logging.Logger) -> ApiServer | None:
    """The host's HTTP API and dashboard, bound to ``SOA_API_BIND`` (None when empty),
    with the metrics that the host's runs report to; call before :attr:`runs` is built.

    :raises ApiBindError: if the address cannot be bound.
    """
    address = services.settings.api_address
    if address is None:
        return None
    from engine.adapters.metrics_prometheus import EngineMetrics, StoreFigures
    from engine.service_host.api.app import create_app
    from engine.service_host.api.server import ApiServer, bind

    metrics = EngineMetrics()
    metrics.add_store_figures(StoreFigures(
        run_counts=services.read_models.run_counts, projection_lag=services.read_models.lag,
        lease=services.leases.current, now=services.clock.now,
    ))
    services.observer = metrics
    app = create_app(services, token=api_token(services.settings), metrics=metrics)
    return ApiServer(app, bind(*address), logger)


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credentials: CredentialChecker | None = None,
) -> ServiceApplication:
    """Open the store named by ``settings`` and return the service as seen from its station."""
    return build_services(settings, clock=clock, credentials=credentials).service
