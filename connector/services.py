"""What the web layer, the worker and the CLI share: settings, database, adapters, secret box."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.domain import ParsedWebhook, SenderSnippet
from connector.errors import ConfigError, MailNotConfigured, UnavailableError
from connector.persistence.db import make_engine, make_session_factory
from connector.ports import MailSender, TargetProfile, TicketCallouts
from connector.secrets import SecretBox

if TYPE_CHECKING:
    from connector.integrations.catalog import CatalogCache
    from connector.integrations.hook_cache import HookCache
    from connector.integrations.settings import IntegrationSettings
    from connector.persistence.models import Integration
    from connector.ports import CallGate, CallRecorder, TicketSystemCatalog, TicketTarget


class TargetFactory(Protocol):
    """Builds an integration's ticket target; the recorder receives every call it makes."""

    def __call__(
        self,
        integration: Integration,
        options: IntegrationSettings,
        recorder: CallRecorder,
        /,
        *,
        read_timeout: float | None = None,
    ) -> TicketTarget:
        """The target; `read_timeout` (seconds) shortens the wait for each answer."""
        ...


#: Builds an integration's catalog (check connection, the ticket system's lists); the recorder
#: receives every call it makes, the gate admits each one.
CatalogFactory = Callable[
    ["Integration", "IntegrationSettings", "CallRecorder", "CallGate"], "TicketSystemCatalog"
]


@runtime_checkable
class SourceAdapter(Protocol):
    """A monitoring system's webhook format (see adapters/sources/)."""

    slug: str
    display_name: str

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge a decoded webhook body alert by alert.

        Args:
            payload: the decoded body (JSON, or what `RawBodySource.decode_body` made of it).

        Returns:
            The alerts that could be read and, for each item that could not, its index, the
            message and field details of its refusal and the item alone as a webhook body.

        Raises:
            PayloadError: the body cannot be read as a whole (not an object, the list of alerts
                is not a list or too long, fields shared by every alert are invalid).
        """
        ...

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """What to configure on the sending side so that it posts to `hook_url`."""
        ...


@runtime_checkable
class RawBodySource(Protocol):
    """A source whose senders write bodies the connector must decode itself (optional).

    A source without `decode_body` takes `application/json` only, decoded as JSON. One with it
    names the content types it takes and turns their raw bytes into the payload for
    `parse_items`, e.g. a body template its sender fills without escaping.
    """

    content_types: tuple[str, ...]

    def decode_body(self, raw: bytes, content_type: str) -> Any:
        """Decode a raw body sent with `content_type` (the header, parameters included).

        Raises:
            PayloadError: the body cannot be read; the message says why.
        """
        ...


class AskableSource(Protocol):
    """A source whose monitoring system can be asked which alerts are there now (optional).

    The adapter names the URLs to GET and reads their answers; the connector does the asking
    (connector/pipeline/reconcile.py), so adapters stay free of I/O.
    """

    def firing_urls(self) -> tuple[str, ...]:
        """The URLs that list the alerts there now; none: the source is not asked."""
        ...

    def firing_in(self, body: bytes) -> set[str]:
        """The fingerprints of the alerts one answer lists.

        Raises:
            PayloadError: the answer cannot be read.
        """
        ...


@dataclass
class Services:
    """The process's long-lived collaborators, built once by create_app or the CLI."""

    settings: Mapping[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    sources: Mapping[str, SourceAdapter] = field(default_factory=dict)
    box: SecretBox | None = None
    #: Per target API flavour, what the core must know of it (from the target adapters).
    profiles: Mapping[str, TargetProfile] = field(default_factory=dict)
    #: The ticket targets' factory, set by the composition root (connector.wiring).
    target_factory: TargetFactory | None = None
    #: The catalogs' factory, set by the composition root (connector.wiring).
    catalog_factory: CatalogFactory | None = None
    #: The ticket systems' lists read for admins, kept for this process (integrations.catalog).
    catalog_cache: CatalogCache | None = None
    #: How mail leaves (the smtp settings), set by the composition root; None: not configured.
    mail_sender: MailSender | None = None
    #: Verifies and reads the ticket system's webhook callouts, set by the composition root.
    ticket_callouts: TicketCallouts | None = None
    #: Webhook callers and integrations' ingest settings this process has read (web/hooks.py).
    hook_cache: HookCache = field(default_factory=lambda: _new_hook_cache())

    @property
    def max_delivery_age(self) -> timedelta:
        """How long a delivery may keep failing before it dead-letters."""
        return timedelta(hours=float(self.settings["DELIVERY_MAX_AGE_HOURS"]))

    def profile(self, flavour: str) -> TargetProfile:
        """The profile of an API flavour; ConfigError naming the known ones when it is unknown."""
        try:
            return self.profiles[flavour]
        except KeyError:
            known = " or ".join(self.profiles) or "none"
            raise ConfigError(f"API flavour {flavour!r} is unknown: use {known}") from None

    def secret_box(self) -> SecretBox:
        """The box for stored secrets; a clear error when no key is configured."""
        if self.box is None:
            raise ConfigError("SECRET_KEYS is empty: set CONNECTOR_SECRET_KEYS to a Fernet key")
        return self.box

    def targets(self) -> TargetFactory:
        """The factory of the integrations' ticket targets."""
        if self.target_factory is None:
            raise ConfigError("no ticket target factory is wired: build the app with create_app")
        return self.target_factory

    def catalogs(self) -> CatalogFactory:
        """The factory of the integrations' catalogs."""
        if self.catalog_factory is None:
            raise ConfigError("no catalog factory is wired: build the app with create_app")
        return self.catalog_factory

    def mail(self) -> MailSender:
        """The mail sender; MailNotConfigured, saying which settings to set, when there is none."""
        if self.mail_sender is None:
            raise MailNotConfigured(
                "no mail server is configured: set smtp host and smtp from"
                ' (CONNECTOR_SMTP_HOST, CONNECTOR_SMTP_FROM; README "Mail")'
            )
        return self.mail_sender

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


def _new_hook_cache() -> HookCache:
    """An empty HookCache (imported late: it reads the persistence models)."""
    from connector.integrations.hook_cache import HookCache

    return HookCache()


def build_services(
    settings: Mapping[str, Any],
    sources: Mapping[str, SourceAdapter],
    profiles: Mapping[str, TargetProfile],
) -> Services:
    """Create the engine, session factory and secret box for `settings`."""
    engine = make_engine(settings["DATABASE_URL"])
    keys = settings["SECRET_KEYS"]
    return Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        sources=sources,
        box=SecretBox(keys) if keys else None,
        profiles=profiles,
    )
