"""The application services on fakes and the in-memory store: conflicts, retries, the dead
host, and one catch-up per query."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from engine.adapters.event_store import EventsourcingStore
from engine.application.errors import CloudEditionError, ConcurrentChangeError
from engine.application.liveness import HostLiveness, RecordedSession
from engine.application.service import Connection, ServiceApplication
from engine.application.tasks import TaskService
from engine.application.unit_of_work import UnitOfWork
from engine.domain.company import Company, company_id
from engine.domain.errors import NotFoundError
from engine.domain.service_configuration import SERVICE_CONFIGURATION_ID, ServiceConfiguration
from engine.domain.station_ownership import STATION_OWNERSHIP_ID, StationOwnership
from engine.domain.task_definition import TaskDefinition
from engine.operations.contract import RunContext
from engine.operations.registry import OperationRegistry
from engine.ports.host import CredentialChecker, HostLease
from engine.ports.outbound import CompanyDatabase, CompanyDatabases
from engine.ports.read_models import TaskView
from engine.scheduling import ScheduleSpec
from tests.fakes import (
    AlwaysConflictingStore,
    FakeLeases,
    FakeProcesses,
    FakeReadModels,
    FixedClock,
    InterferingStore,
    history_types,
)

PASSWORD = "sekret"


class AcceptAll(CredentialChecker):
    def check(self, account: str, password: str) -> None:
        return None


class NoDatabases(CompanyDatabases):
    def default_url(self, company_name: str) -> str:
        return f"sqlite:////tmp/{company_name}.db"

    def check_url(self, url: str) -> str:
        return url

    def get(self, company_id: UUID, url: str) -> CompanyDatabase:
        raise AssertionError("no operation runs in these tests")

    def close(self) -> None:
        pass


class Nothing:
    kind = "nothing"
    params_model = None

    def run(self, ctx: RunContext) -> Mapping[str, int] | None:
        return None


class Services:
    """The service and task use cases over one store, read models and lease."""

    def __init__(self, store: EventsourcingStore, *, station: str = "BIURO",
                 edition: str = "stationary") -> None:
        self.store = store
        self.clock = FixedClock()
        self.leases = FakeLeases()
        self.processes = FakeProcesses()
        self.read_models = FakeReadModels()
        self.uow = UnitOfWork(store)
        self.liveness = HostLiveness(uow=self.uow, leases=self.leases,
                                     processes=self.processes, clock=self.clock,
                                     lease_seconds=15.0)
        self.service = ServiceApplication(
            uow=self.uow, read_models=self.read_models, liveness=self.liveness,
            leases=self.leases, credentials=AcceptAll(), clock=self.clock, station=station,
            connection=Connection("embedded SQLite", "soa.db", None, edition),
        )
        self.tasks = TaskService(
            uow=self.uow, read_models=self.read_models,
            registry=OperationRegistry({"nothing": Nothing}, load_entry_points=False),
            databases=NoDatabases(), clock=self.clock,
        )

    def show_task(self, task_id: UUID) -> None:
        """Let the read models know the task (as a catch-up would)."""
        task = self.store.get(task_id)
        assert isinstance(task, TaskDefinition)
        self.read_models.task_views[task_id] = TaskView(
            id=task.id, company_id=task.company_id, company=task.company, kind=task.kind,
            name=task.name, schedule=task.schedule, catch_up=task.catch_up,
            max_attempts=task.retry.max_attempts, backoff_seconds=task.retry.backoff_seconds,
            timeout_seconds=task.timeout_seconds, params=task.params, enabled=task.enabled,
            paused=task.paused, schedule_from=task.schedule_from,
            considered_through=task.considered_through, consecutive_failures=0,
            version=task.version,
        )


def host_records_catch_up(store: EventsourcingStore, task_id: UUID) -> None:
    """What a host does to a task at the same moment: it records a catch-up."""
    task = store.get(task_id)
    assert isinstance(task, TaskDefinition)
    task.record_catch_up(station="BIURO", missed=1, replayed=0, bounded=False,
                         through=task.schedule_from)
    EventsourcingStore.save(store, task)


def another_task_attached(store: EventsourcingStore, owner_id: UUID) -> None:
    company = store.get(owner_id)
    assert isinstance(company, Company)
    company.attach_task(uuid4())
    EventsourcingStore.save(store, company)


def add_task(services: Services) -> UUID:
    task_id = services.tasks.add_task("nothing", company="Firma A", name="t",
                                      schedule=ScheduleSpec(every="5m"))
    services.show_task(task_id)
    return task_id


def test_a_pause_meeting_the_hosts_write_is_applied_again_and_both_are_kept() -> None:
    store = InterferingStore()
    services = Services(store)
    services.tasks.add_company("Firma A")
    task_id = add_task(services)
    store.interfere(TaskDefinition, 2, host_records_catch_up)
    assert services.tasks.set_task_state(str(task_id), "pause") is True
    assert history_types(store, task_id) == [
        "Defined", "CatchUpApplied", "CatchUpApplied", "Paused",
    ]


def test_adding_tasks_to_a_company_another_writer_changes_is_applied_again() -> None:
    store = InterferingStore()
    services = Services(store)
    services.tasks.add_company("Firma A")
    store.interfere(Company, 3, another_task_attached)
    task_id = add_task(services)
    company = store.get(company_id("Firma A"))
    assert isinstance(company, Company)
    assert task_id in company.task_ids and len(company.task_ids) == 4


def test_a_command_that_keeps_meeting_conflicts_is_refused_after_a_few_tries() -> None:
    store = AlwaysConflictingStore()
    uow = UnitOfWork(store)
    calls: list[int] = []

    def command() -> None:
        calls.append(1)
        uow.save(ServiceConfiguration())

    with pytest.raises(ConcurrentChangeError, match="run the command again"):
        uow.retrying(command)
    assert len(calls) == store.saves == 5


def test_a_claim_of_the_service_is_never_applied_again() -> None:
    store = InterferingStore()
    services = Services(store, station="KASA")

    def biuro_starts(store: EventsourcingStore, ownership_id: UUID) -> None:
        ownership = store.get(ownership_id)
        assert isinstance(ownership, StationOwnership)
        ownership.start("BIURO", uuid4(), 1, "m")
        EventsourcingStore.save(store, ownership)

    Services(store).service.set_account("FIRMA\\soa", PASSWORD)  # configured on BIURO
    store.interfere(StationOwnership, 1, biuro_starts)
    saves_before = store.saves
    with pytest.raises(ConcurrentChangeError):
        services.service.set_account("FIRMA\\soa", PASSWORD)
    assert store.saves == saves_before + 1
    ownership = store.get(STATION_OWNERSHIP_ID)
    assert isinstance(ownership, StationOwnership)
    assert (ownership.station, ownership.is_running) == ("BIURO", True)


def test_a_query_catches_the_read_models_up_once() -> None:
    services = Services(InterferingStore())
    services.tasks.add_company("Firma A")
    task_id = add_task(services)
    for query in (
        lambda: services.service.status(),
        lambda: services.service.logs(),
        lambda: services.service.configuration(),
        lambda: services.tasks.tasks(),
        lambda: services.tasks.task(str(task_id)[:8]),
    ):
        before = services.read_models.catch_ups
        query()
        assert services.read_models.catch_ups == before + 1


def test_commands_do_not_catch_up_but_resolve_references_once() -> None:
    services = Services(InterferingStore())
    services.tasks.add_company("Firma A")
    task_id = add_task(services)
    services.service.set_account("FIRMA\\soa", PASSWORD)
    assert services.read_models.catch_ups == 0
    services.tasks.set_task_state(str(task_id), "pause")
    assert services.read_models.catch_ups == 1


def running(services: Services, host: str = "this-machine", pid: int = 4242) -> UUID:
    services.service.set_account("FIRMA\\soa", PASSWORD)
    session = services.service.begin_host_session(pid, host)
    ownership = services.store.get(STATION_OWNERSHIP_ID)
    assert isinstance(ownership, StationOwnership)
    services.read_models.view = services.read_models.view.__class__(
        account="FIRMA\\soa", log_retention_days=10, station="BIURO", session_id=session,
        pid=pid, host=host, since=ownership.started_at,
    )
    return session


def test_a_host_whose_lease_expired_is_recorded_as_crashed_by_a_status_query() -> None:
    services = Services(InterferingStore())
    session = running(services, host="another-machine")
    assert services.liveness.is_alive(
        RecordedSession(session, 4242, "another-machine", services.clock.now())
    )
    services.clock.advance(16)  # the 15 s lease expired
    services.service.status()
    assert history_types(services.store, STATION_OWNERSHIP_ID)[-1] == "Crashed"
    assert services.leases.current() is None


def test_a_gone_host_process_on_this_machine_is_dead_at_once() -> None:
    services = Services(InterferingStore())
    session = running(services, host="this-machine", pid=4242)
    since = services.clock.now()
    assert services.liveness.is_alive(RecordedSession(session, 4242, "this-machine", since))
    services.processes.gone.add(4242)
    assert not services.liveness.is_alive(RecordedSession(session, 4242, "this-machine", since))
    # The same pid gone on another machine says nothing about that machine's process.
    assert services.liveness.is_alive(RecordedSession(session, 4242, "another", since))
    services.service.check_can_start()  # a start here records the crash first
    assert history_types(services.store, STATION_OWNERSHIP_ID)[-1] == "Crashed"


def test_a_session_that_never_wrote_its_lease_is_dead_one_lease_period_after_its_start() -> None:
    services = Services(InterferingStore())
    session = running(services, host="another-machine")
    services.leases.lease = HostLease(uuid4(), "X", 1, services.clock.now(),
                                      services.clock.now(), services.clock.now())
    since = services.clock.now()
    recorded = RecordedSession(session, 4242, "another-machine", since)
    assert services.liveness.is_alive(recorded)
    services.clock.advance(15.5)
    assert not services.liveness.is_alive(recorded)
    assert not services.liveness.is_alive(RecordedSession(session, 1, None, None))


def test_the_crash_is_recorded_once_when_two_readers_find_the_host_dead() -> None:
    store = InterferingStore()
    first, second = Services(store), Services(store)
    session = running(first, host="another-machine")
    second.read_models.view = first.read_models.view
    first.clock.advance(16)
    second.clock.advance(16)
    assert first.liveness.record_crash_if_dead() is True
    assert second.liveness.record_crash(session) is False
    assert history_types(store, STATION_OWNERSHIP_ID).count("Crashed") == 1


def test_retention_is_applied_again_after_a_conflict_and_prunes_at_the_new_cutoff() -> None:
    store = InterferingStore()
    services = Services(store)

    def other_station_changes(store: EventsourcingStore, configuration_id: UUID) -> None:
        configuration = store.get(configuration_id)
        assert isinstance(configuration, ServiceConfiguration)
        configuration.set_log_retention(20, "KASA")
        EventsourcingStore.save(store, configuration)

    services.service.set_log_retention(12)
    store.interfere(ServiceConfiguration, 1, other_station_changes)
    assert services.service.set_log_retention(7) is True
    assert history_types(store, SERVICE_CONFIGURATION_ID)[-2:] == [
        "LogRetentionChanged", "LogRetentionChanged",
    ]
    assert services.read_models.deleted_before[-1] == services.clock.now() - timedelta(days=7)


def test_an_unknown_task_reference_is_not_found() -> None:
    services = Services(InterferingStore())
    with pytest.raises(NotFoundError, match="too short"):
        services.tasks.task("ab")
    with pytest.raises(NotFoundError, match="no task has an id starting with"):
        services.tasks.set_task_state("abcdef", "pause")


def test_the_cloud_edition_refuses_the_service_configuration() -> None:
    services = Services(InterferingStore(), edition="cloud")
    with pytest.raises(CloudEditionError):
        services.service.status()
    assert services.read_models.catch_ups == 0
