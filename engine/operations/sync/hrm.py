"""``sync_hrm``: employees out to the HR and payroll system with their contracts and
absences, planned leave in as the employees' planned absences (contract:
docs/partners/hrm.md).

- A full synchronisation first empties HRM's copy (``POST /employees/clear``, once per
  generation) and then sends every employee again, so HRM's copy is replaced (the
  deletions in the change log are sent too: one may have come after its employee went).
- A differential one sends the employees changed since the last accepted batch (``POST
  /employees``, upsert by code) and the codes of those deleted (``POST
  /employees/delete``).
- Planned leave (``GET /leave``) is added to its employee's absences as a planned
  absence whose id is HRM's leave id; leave already there (by id) is skipped, leave of
  an employee the company does not have is left out with a warning. Adding it changes
  the employee, so the next run sends that employee back to HRM once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

from pydantic import Field

from engine.erp.money import money_text
from engine.erp.sync import ImportWriter
from engine.erp.trade import Absence, Contract, Employee
from engine.operations.sync.core import (
    Export,
    Import,
    PartnerSettings,
    PartnerSync,
    SyncJob,
)

PARTNER: Literal["hrm"] = "hrm"
AbsenceKind = Literal["leave", "sick", "unpaid", "other"]

CONTRACT_KINDS = {"employment": "umowa o pracę", "mandate": "umowa zlecenie",
                  "specific_task": "umowa o dzieło", "b2b": "kontrakt B2B"}
"""The ERP's contract kinds as HRM names them."""
ABSENCE_KINDS = {"leave": "wypoczynkowy", "sick": "zwolnienie lekarskie",
                 "unpaid": "bezpłatny", "other": "inna"}
"""The ERP's absence kinds as HRM names them."""
DEFAULT_LEAVE_KINDS: dict[str, AbsenceKind] = {
    "wypoczynkowy": "leave", "na żądanie": "leave", "zwolnienie lekarskie": "sick",
    "bezpłatny": "unpaid"}
"""HRM's leave kinds as ERP absence kinds (any other kind: ``other``)."""


class HrmSettings(PartnerSettings):
    leave_kinds: dict[str, AbsenceKind] = Field(
        default_factory=dict, description="HRM leave kind to ERP absence kind (leave, sick, "
        "unpaid, other), over the defaults: wypoczynkowy and na żądanie -> leave, "
        "zwolnienie lekarskie -> sick, bezpłatny -> unpaid; any other -> other.")
    import_leave: bool = Field(default=True, description="Bring planned leave in.")



class HrmSync(PartnerSync):
    partner = PARTNER
    settings_model = HrmSettings

    def exports(self) -> list[Export]:
        return [Export("employees", ("employee",), self._send_employees)]

    def imports(self) -> list[Import]:
        return [Import("leave", self._fetch_leave, self._store_leave)]

    # -- employees out ---------------------------------------------------------------------

    def begin_full(self, job: SyncJob) -> None:
        """Empty HRM's copy of the employees: the full run's exports send them all again."""
        answer = job.http.send("POST", "/employees/clear", {},
                               idempotency_key=job.key("clear")) or {}
        job.counts["cleared"] += int(answer.get("cleared") or 0)

    def _send_employees(self, job: SyncJob, upserted: list[str], deleted: list[str],
                        key: str) -> int:
        sent = 0
        employees: list[Employee] = job.gateway.records("employees", upserted)
        if employees:
            job.http.send("POST", "/employees",
                          {"employees": [employee_payload(e) for e in employees]},
                          idempotency_key=key + "/employees")
            sent += len(employees)
        if deleted:  # also in a full run: one may have been deleted after it was sent
            job.http.send("POST", "/employees/delete", {"codes": deleted},
                          idempotency_key=key + "/delete")
            sent += len(deleted)
            job.counts["employees_deleted"] += len(deleted)
        return sent

    # -- planned leave in ------------------------------------------------------------------

    def _fetch_leave(self, job: SyncJob,
                     cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        settings: HrmSettings = job.settings
        if not settings.import_leave:
            return [], cursor
        params: dict[str, str | int] = {"limit": min(job.connection.batch_size, 1000)}
        if cursor:
            params["cursor"] = cursor
        page = job.http.get("/leave", params) or {}
        return list(page.get("leave") or []), page.get("next_cursor")

    def _store_leave(self, job: SyncJob, writer: ImportWriter,
                     leave: list[dict[str, Any]]) -> int:
        """Add each leave not stored yet to its employee's absences, one write per
        employee; return how many were added."""
        settings: HrmSettings = job.settings
        kinds = {**DEFAULT_LEAVE_KINDS, **settings.leave_kinds}
        codes = list(dict.fromkeys(str(item.get("employee") or "") for item in leave))
        employees: dict[str, Employee] = {
            employee.code: employee for employee in job.gateway.records("employees", codes)}
        added: defaultdict[str, list[Absence]] = defaultdict(list)
        for item in leave:
            absence = self._absence(job, item, kinds)
            if absence is None:
                continue
            employee = employees.get(str(item.get("employee") or ""))
            if employee is None:
                job.warn(f"leave {absence.id} of HRM was not brought in: employee "
                         f"{str(item.get('employee'))[:40]!r} is not in the company's data")
                job.counts["leave_unknown_employee"] += 1
                continue
            present = {a.id for a in employee.absences} | {a.id for a in added[employee.code]}
            if absence.id in present:
                continue
            added[employee.code].append(absence)
        for code, absences in added.items():
            employee = employees[code]
            writer.put("employees", employee.model_copy(
                update={"absences": [*employee.absences, *absences]}))
        return sum(len(absences) for absences in added.values())

    def _absence(self, job: SyncJob, item: dict[str, Any],
                 kinds: dict[str, AbsenceKind]) -> Absence | None:
        try:
            return Absence(id=str(item["id"]),
                           kind=kinds.get(str(item.get("kind") or ""), "other"),
                           start=date.fromisoformat(str(item["start"])),
                           end=date.fromisoformat(str(item["end"])), planned=True)
        except (KeyError, ValueError) as error:
            job.warn(f"leave {str(item.get('id'))[:40]!r} of HRM was not brought in: "
                     f"{str(error).splitlines()[0][:120]}")
            job.counts["leave_invalid"] += 1
            return None


def employee_payload(employee: Employee) -> dict[str, Any]:
    """An employee as HRM's ``POST /employees`` takes it."""
    return {"code": employee.code, "first_name": employee.first_name,
            "last_name": employee.last_name, "email": employee.email,
            "phone": employee.phone, "department": employee.department,
            "contracts": [contract_payload(contract) for contract in employee.contracts],
            "absences": [{"id": absence.id, "kind": ABSENCE_KINDS[absence.kind],
                          "start": absence.start.isoformat(),
                          "end": absence.end.isoformat()}
                         for absence in employee.absences]}


def contract_payload(contract: Contract) -> dict[str, Any]:
    return {"id": contract.id, "kind": CONTRACT_KINDS[contract.kind],
            "start": contract.start.isoformat(),
            "end": None if contract.end is None else contract.end.isoformat(),
            "position": contract.position,
            "salary": None if contract.salary is None else money_text(contract.salary)}
