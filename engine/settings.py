"""Settings from the environment (prefix ``SOA_``) and the CLI's global options."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Edition = Literal["stationary", "cloud"]
Language = Literal["pl", "en"]

SQLITE_FILE_NAME = "soa.db"


class Settings(BaseSettings):
    """Where the store is, which station this is, and the host's timing.

    ``SOA_HOME`` (default ``~/.soa``) holds the embedded SQLite store and the
    host's log files; ``SOA_DATABASE_URL`` selects another store, e.g.
    ``postgresql+psycopg://user@host:5432/db``.
    """

    model_config = SettingsConfigDict(env_prefix="SOA_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".soa")
    database_url: str | None = None
    station: str = Field(default_factory=socket.gethostname)
    edition: Edition = "stationary"
    key_server: str = ""
    lang: Language = "pl"
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=60)
    lease_seconds: float = Field(default=15.0, gt=0, le=300)
    stop_timeout_seconds: float = Field(default=60.0, gt=0)
    credential_checker: str | None = None
    refresh_seconds: float = Field(default=1.0, gt=0, le=5)
    max_concurrent_runs: int = Field(default=8, ge=1, le=64)
    max_catch_up: int = Field(default=100, ge=1, le=10_000)
    failure_warning_threshold: int = Field(default=3, ge=1, le=100)
    stop_grace_seconds: float = Field(default=30.0, gt=0)
    notify_email: str = ""
    """Comma-separated addresses that get operator notifications (a task failing again
    and again) by e-mail; empty: they go to the host's log only."""
    notify_smtp_host: str = "127.0.0.1"
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    notify_smtp_sender: str = "soa-engine@localhost"
    notify_smtp_username: str | None = None
    notify_smtp_password: str | None = Field(default=None, repr=False)
    api_bind: str = "127.0.0.1:8765"
    """Where the host serves the HTTP API and dashboard, ``HOST:PORT`` (port 0: a free
    one; empty: no API)."""
    api_token: str | None = Field(default=None, repr=False)
    """The API's bearer token; default: the file ``SOA_HOME/api-token``, made on first use."""
    secret_key: str | None = Field(default=None, repr=False)
    """Key of the secrets in company data (mail passwords, SMS token); default: the file
    ``SOA_HOME/secret.key``, made on first use. Stations sharing company databases need
    the same key."""
    cipher_key: str | None = Field(default=None, repr=False)
    """AES-GCM key of the partner credentials (32 random bytes, URL-safe base64); default:
    the file ``SOA_HOME/cipher.key``, made on first use. Stations sharing company
    databases need the same key."""

    @field_validator("station")
    @classmethod
    def _strip_station(cls, station: str) -> str:
        return station.strip()

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"heartbeat every {self.heartbeat_seconds:g} s does not fit a lease of "
                f"{self.lease_seconds:g} s; SOA_HEARTBEAT_SECONDS must be at most half of "
                "SOA_LEASE_SECONDS"
            )
        return self

    @field_validator("api_bind")
    @classmethod
    def _check_api_bind(cls, bind: str) -> str:
        bind = bind.strip()
        if bind and api_address(bind) is None:
            raise ValueError(
                f"{bind!r} is not HOST:PORT with a port from 0 to 65535 (e.g. 127.0.0.1:8765)"
            )
        return bind

    @property
    def api_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of ``SOA_API_BIND``; None when the API is off."""
        return api_address(self.api_bind) if self.api_bind else None

    @field_validator("home")
    @classmethod
    def _expand_home(cls, home: Path) -> Path:
        return home.expanduser()

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store: ``SOA_DATABASE_URL`` or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / SQLITE_FILE_NAME}"

    @property
    def uses_embedded_store(self) -> bool:
        return not self.database_url


def api_address(bind: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a pair; None if malformed."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)
