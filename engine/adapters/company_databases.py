"""Company databases through SQLAlchemy: their default files, usable URLs, pooled engines."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from uuid import UUID

from sqlalchemy import Engine

from engine.adapters.sql import create_sql_engine, parse_database_url
from engine.ports.outbound import CompanyDatabase, CompanyDatabases
from engine.ports.store import InvalidDatabaseUrlError


class SqlCompanyDatabase(CompanyDatabase):
    """One company database; its engine is created on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._url

    def sql_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = create_sql_engine(self._url)
            return self._engine

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


class SqlCompanyDatabases(CompanyDatabases):
    """Company databases: by default a SQLite file each under ``home/companies``."""

    def __init__(self, home: Path) -> None:
        self._folder = home / "companies"
        self._opened: dict[tuple[UUID, str], SqlCompanyDatabase] = {}
        self._lock = threading.Lock()

    def default_url(self, company_name: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", company_name.casefold()).strip("-")[:40] or "company"
        digest = hashlib.sha256(company_name.casefold().encode()).hexdigest()[:8]
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return f"sqlite:///{self._folder / f'{slug}-{digest}'}.db"

    def check_url(self, url: str) -> str:
        parsed = parse_database_url(url, what="company database")
        if parsed.password:
            raise InvalidDatabaseUrlError(
                "a company database URL must not contain a password (it would be stored); "
                "use ~/.pgpass or PGPASSWORD"
            )
        return url

    def get(self, company_id: UUID, url: str) -> CompanyDatabase:
        with self._lock:
            database = self._opened.get((company_id, url))
            if database is None:
                database = self._opened[(company_id, url)] = SqlCompanyDatabase(url)
            return database

    def close(self) -> None:
        with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        for database in opened:
            database.dispose()
