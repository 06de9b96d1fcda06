"""The company list: registered company databases and how many tasks use each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, insert, select, update

from engine.adapters.schema import companies
from engine.domain.company import Company
from engine.projections.runner import NumberedEvent, Projection


@dataclass(frozen=True)
class CompanyView:
    id: UUID
    name: str
    database_url: str
    task_count: int
    added_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "name": self.name, "database_url": self.database_url,
            "task_count": self.task_count, "added_at": self.added_at.isoformat(),
        }


class CompanyList(Projection):
    """``soa_companies``, one row per company ever added (``removed`` marks the gone)."""

    name = "companies"
    tables = (companies,)

    def apply(self, connection: Connection, events: Sequence[NumberedEvent]) -> None:
        for _, event in events:
            if not isinstance(event, Company.Event):
                continue  # most events are of other aggregates
            row = companies.c.id == str(event.originator_id)
            match event:
                case Company.Added():
                    connection.execute(insert(companies).values(
                        id=str(event.originator_id), name=event.name,
                        database_url=event.database_url, task_count=0, removed=False,
                        added_at=event.timestamp,
                    ))
                case Company.Readded():
                    connection.execute(update(companies).where(row).values(
                        database_url=event.database_url, removed=False, added_at=event.timestamp
                    ))
                case Company.TaskAttached():
                    connection.execute(
                        update(companies).where(row).values(task_count=companies.c.task_count + 1)
                    )
                case Company.TaskDetached():
                    connection.execute(
                        update(companies).where(row).values(task_count=companies.c.task_count - 1)
                    )
                case Company.Removed():
                    connection.execute(update(companies).where(row).values(removed=True))

    @staticmethod
    def database_url(engine: Engine, company_id: UUID) -> str:
        """The registered database URL of a company ('' if unknown)."""
        with engine.connect() as connection:
            url = connection.execute(
                select(companies.c.database_url).where(companies.c.id == str(company_id))
            ).scalar()
        return str(url or "")

    @staticmethod
    def read(engine: Engine) -> list[CompanyView]:
        query = select(companies).where(companies.c.removed.is_(False)).order_by(companies.c.name)
        with engine.connect() as connection:
            return [
                CompanyView(
                    id=UUID(row.id), name=row.name, database_url=row.database_url,
                    task_count=row.task_count, added_at=row.added_at,
                )
                for row in connection.execute(query)
            ]
