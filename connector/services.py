"""What the web layer and the worker share: settings, the database, adapters, the secret box."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.db import make_engine, make_session_factory
from connector.domain import IncomingAlert
from connector.errors import ConfigError, UnavailableError
from connector.secrets import SecretBox


class SourceAdapter(Protocol):
    """A monitoring system's webhook format (see adapters/sources/)."""

    slug: str
    display_name: str

    def parse(self, payload: Any) -> list[IncomingAlert]:
        """Turn a decoded webhook body into alerts; raise PayloadError naming bad fields."""
        ...


@dataclass
class Services:
    """The process's long-lived collaborators, built once by create_app or the CLI."""

    settings: Mapping[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    sources: Mapping[str, SourceAdapter] = field(default_factory=dict)
    box: SecretBox | None = None

    @property
    def max_delivery_age(self) -> timedelta:
        """How long a delivery may keep failing before it dead-letters."""
        return timedelta(hours=float(self.settings["DELIVERY_MAX_AGE_HOURS"]))

    def secret_box(self) -> SecretBox:
        """The box for stored secrets; a clear error when no key is configured."""
        if self.box is None:
            raise ConfigError("SECRET_KEYS is empty: set CONNECTOR_SECRET_KEYS to a Fernet key")
        return self.box

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One committed transaction; a database that cannot commit becomes a 503."""
        try:
            with self.sessions.begin() as session:
                yield session
        except (OperationalError, InterfaceError) as e:
            # Down, restarting, locked or unreachable: nothing was committed; the sender retries.
            raise UnavailableError("the database cannot take the request now; retry") from e

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def build_services(settings: Mapping[str, Any], sources: Mapping[str, SourceAdapter]) -> Services:
    """Create the engine, session factory and secret box for `settings`."""
    engine = make_engine(settings["DATABASE_URL"])
    keys = settings["SECRET_KEYS"]
    return Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        sources=sources,
        box=SecretBox(keys) if keys else None,
    )
