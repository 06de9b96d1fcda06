"""The company list: registered company databases and how many tasks use each."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, update

from engine.adapters.schema import companies
from engine.domain.company import Company
from engine.projections.runner import NumberedEvent, Projection


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
