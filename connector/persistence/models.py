"""Persistence: SQLAlchemy 2 typed models. The database is the single source of truth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Big integer ids on PostgreSQL, plain INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint naming that Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Integration(Base):
    """One Autotask connection with its defaults and mappings."""

    __tablename__ = "integration"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api_flavour: Mapped[str] = mapped_column(String(10), default="rest")
    #: Where the zone lookup is asked; the zone's own URL comes back from it.
    zone_lookup_url: Mapped[str] = mapped_column(String(500))
    username: Mapped[str] = mapped_column(String(254))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    integration_code_encrypted: Mapped[str] = mapped_column(Text)
    #: Every other setting (defaults, maps, overrides, lifecycle policy), validated on load.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: An inactive integration keeps its events but delivers nothing (since `deactivated_at`).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    deactivated_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The zone's API address as the zone lookup last answered, and when: kept across restarts
    #: so that a start does not spend a lookup per process (None: not looked up yet).
    zone_url: Mapped[str | None] = mapped_column(String(500), default=None)
    zone_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Which database of the ticket system the API user is in, as the zone lookup last said
    #: (None: not known yet): integrations of one database share its hourly budget.
    database_id: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryRequest(Base):
    """One of an integration's delivery requests: per (alert status, action), what to send."""

    __tablename__ = "delivery_request"
    __table_args__ = (UniqueConstraint("integration_id", "status", "action"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    #: active, acknowledged, escalated or cleared.
    status: Mapped[str] = mapped_column(String(20))
    #: create (active only), update or note.
    action: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text)
    #: json or xml: the body's format and the answer's.
    format: Mapped[str] = mapped_column(String(4))
    #: Where the create's answer carries the ticket id (JSONPath or XPath); empty: the default.
    id_path: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HookCredential(Base):
    """A credential a monitoring system presents to post webhooks for one integration.

    `scheme` says which columns hold it: bearer → `token_sha256`; basic → `username` and
    `password_sha256`; hmac → `secret_encrypted` (the secret is needed in clear to compute the MAC,
    so it is encrypted with the SecretBox, never hashed). `source` limits it to one source slug;
    NULL means every source.
    """

    __tablename__ = "hook_credential"
    __table_args__ = (Index("ix_hook_credential_username", "username"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    #: bearer, basic or hmac.
    scheme: Mapped[str] = mapped_column(String(10))
    source: Mapped[str | None] = mapped_column(String(50), default=None)
    label: Mapped[str] = mapped_column(String(100), default="")
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    username: Mapped[str | None] = mapped_column(String(254), default=None)
    password_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class HookSignature(Base):
    """An HMAC signature already accepted: presenting it again within its window is a replay."""

    __tablename__ = "hook_signature"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: The presented HMAC-SHA256, lowercase hex.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: When the signature's timestamp leaves the accepted window; older rows are purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class RejectedWebhook(Base):
    """A webhook, or one alert of it, refused after its credentials were accepted.

    A whole webhook refused with a 4xx is kept with its body, as its sender was told; one alert of
    an accepted batch that could not be read is kept as its own row (status 202, `alert_index`),
    its body that alert alone. Either can be replayed once (`replayed_at`). Only authenticated
    refusals are kept (an anonymous sender must not be able to fill the table), at most
    REJECTED_WEBHOOKS_KEPT per integration, the oldest going first.
    """

    __tablename__ = "rejected_webhook"
    __table_args__ = (Index("ix_rejected_webhook_integration_order", "integration_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    source: Mapped[str] = mapped_column(String(50))
    #: The HTTP status answered (400, 413, 415, …).
    status: Mapped[int]
    #: The error envelope's message, details and request id, as answered.
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    request_id: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(255), default="")
    #: Bytes of the body; for a 413 the declared Content-Length (None when sent chunked).
    body_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: The body's first 4,096 bytes as UTF-8 (replacement characters for the rest); None for 413.
    body_excerpt: Mapped[str | None] = mapped_column(Text, default=None)
    #: The whole body as received (at most MAX_CONTENT_LENGTH bytes); None when it was not read
    #: (413) and for rows kept before bodies were.
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: For one refused alert of an accepted batch (status 202): its index in the webhook's list.
    alert_index: Mapped[int | None] = mapped_column(default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the body was replayed successfully (a row is replayed at most once), and what the
    #: replay produced: {"accepted": [...], "rejected": [...]} as the webhook would have answered.
    replayed_at: Mapped[datetime | None] = mapped_column(default=None)
    replay_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: When an admin discarded the row instead of replaying it, and why.
    discarded_at: Mapped[datetime | None] = mapped_column(default=None)
    discard_reason: Mapped[str | None] = mapped_column(Text, default=None)


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class TenantMapping(Base):
    """A source's tenant → Autotask company, switchable per tenant."""

    __tablename__ = "tenant_mapping"
    __table_args__ = (UniqueConstraint("integration_id", "tenant"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    tenant: Mapped[str] = mapped_column(String(255))
    company_id: Mapped[int | None] = mapped_column(default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Alert(Base):
    """An alert, keyed by (integration, source, fingerprint), with its latest known state.

    The source is part of the identity: two monitoring systems may use the same id for two
    different alerts ("4711" from the generic source and an Alertmanager fingerprint "4711").
    """

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("integration_id", "source", "fingerprint", name="uq_alert_identity"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    fingerprint: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    tenant: Mapped[str] = mapped_column(String(255), default="")
    monitor: Mapped[str] = mapped_column(String(255), default="")
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    #: How many times the alert went to cleared; tells a re-fire from a repeat when the source
    #: sends no timestamps.
    cycle: Mapped[int] = mapped_column(default=0)
    #: The newest sender time among the events applied: an event older than this is stale and
    #: changes nothing (senders retry, proxies reorder, HA pairs race).
    last_occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    last_event_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Since when the source, asked which alerts are there, has not listed this unresolved alert
    #: (connector/pipeline/reconcile.py); None while it is listed or was never asked.
    missing_since: Mapped[datetime | None] = mapped_column(default=None)

    events: Mapped[list[AlertEvent]] = relationship(
        back_populates="alert", order_by="AlertEvent.id", viewonly=True
    )


class AlertEvent(Base):
    """One webhook's word about an alert, kept as received (duplicates included)."""

    __tablename__ = "alert_event"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    #: Identifies a repeat of the same event: status and the source's timestamp.
    dedupe_key: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Indexed for pruning (connector/pipeline/retention.py).
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: "queued" (a delivery was enqueued), "duplicate" (a repeat: recorded, not delivered),
    #: "stale: <why>" (older than an event already applied: recorded, not delivered) or
    #: "dropped: <why>" (no ticket: tenant switched off, unmapped with drop, …) or "held: <why>"
    #: (the integration is inactive: the delivery is kept, not sent).
    disposition: Mapped[str] = mapped_column(String(300), default="queued")
    #: What the admin should know about how the event was handled (an `autotask.accountid` that
    #: is not a company id, …); None when nothing.
    warnings: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    #: The normalized alert as the source adapter produced it.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)

    alert: Mapped[Alert] = relationship(back_populates="events")


class TicketLink(Base):
    """Alert ↔ Autotask ticket, one row per ticket episode of the alert."""

    __tablename__ = "ticket_link"
    __table_args__ = (
        UniqueConstraint("alert_id", "episode"),
        # A ticket webhook's callout names the ticket by its id.
        Index("ix_ticket_link_ticket_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"))
    episode: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(20))
    #: The correlation marker sent as the ticket's externalID (≤ 50 characters).
    marker: Mapped[str] = mapped_column(String(50), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(Id, default=None)
    ticket_number: Mapped[str | None] = mapped_column(String(50), default=None)
    ticket_status: Mapped[int | None] = mapped_column(default=None)
    applied_status: Mapped[str | None] = mapped_column(String(20), default=None)
    #: The alert severity the ticket's priority reflects (set by the create and by each
    #: priority change); a different severity on a later event is a severity change.
    applied_severity: Mapped[str | None] = mapped_column(String(20), default=None)
    #: The priority the connector last gave the ticket.
    ticket_priority: Mapped[int | None] = mapped_column(default=None)
    #: When a create of this ticket was sent and not yet answered (committed before it goes; None
    #: once the ticket is recorded): its marker is not looked up while the call may still run.
    create_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_note_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When the ticket system's webhook said a person closed the ticket there (state
    #: closed_remotely), as what ("completed" or "deleted") and by whom (its person id).
    closed_remotely_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_remotely_as: Mapped[str | None] = mapped_column(String(20), default=None)
    closed_remotely_by: Mapped[str | None] = mapped_column(String(50), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When reconciliation last asked the ticket system about this ticket (pipeline/reconcile.py):
    #: the least recently asked go first.
    checked_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    """The outbox: one event's work against Autotask, with attempts and outcome."""

    __tablename__ = "delivery"
    __table_args__ = (
        # A repeat of the same event produces no second delivery.
        UniqueConstraint("alert_id", "dedupe_key"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
        Index("ix_delivery_alert_order", "alert_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"))
    #: Indexed: deleting an old event looks for deliveries still naming it (retention.py).
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_event.id"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    dedupe_key: Mapped[str] = mapped_column(String(100))
    #: pending → in_progress → done | dead (pending again after a retryable failure); held
    #: while its integration is inactive (never claimed; activation decides what follows).
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Past this time a retryable failure dead-letters instead of retrying (replay extends it).
    deadline_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The planned steps, fixed at the first attempt so retries resume instead of re-planning.
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: How many of the planned steps are done (committed after each one).
    progress: Mapped[int] = mapped_column(default=0)
    #: What the delivery did once done (created, noted, updated, completed, reopened, ignored),
    #: "failed" once dead-lettered, None while unfinished; `plan` says what it sets out to do.
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    last_response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When an admin discarded this dead letter instead of replaying it, and why.
    discarded_at: Mapped[datetime | None] = mapped_column(default=None)
    discard_reason: Mapped[str | None] = mapped_column(Text, default=None)


class ApiCall(Base):
    """One call to Autotask (the activity log; Autotask's own "API Activity by Hour")."""

    __tablename__ = "api_call"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("delivery.id"), default=None, index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(10))
    entity: Mapped[str] = mapped_column(String(100))
    http_status: Mapped[int | None] = mapped_column(default=None)
    records: Mapped[int | None] = mapped_column(default=None)
    execution_ms: Mapped[float] = mapped_column(Float)
    api_user: Mapped[str] = mapped_column(String(254), default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The call as sent and answered ({"url", "headers", "body"} / {"status", "headers", "body"}),
    #: secrets redacted and bodies cut, for the integration log; None for calls before 0009.
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class GovernorState(Base):
    """Per integration: the pause a 429 asked for and the circuit breaker (pipeline/governor.py)."""

    __tablename__ = "governor_state"

    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), primary_key=True)
    #: No call to this integration before this time (Autotask answered 429).
    paused_until: Mapped[datetime | None] = mapped_column(default=None)
    pause_reason: Mapped[str | None] = mapped_column(Text, default=None)
    #: closed, open or half_open.
    breaker: Mapped[str] = mapped_column(String(10), default="closed")
    #: Consecutive retryable failures (5xx, timeouts, connection errors).
    failures: Mapped[int] = mapped_column(default=0)
    #: While open: when the next probe may go.
    open_until: Mapped[datetime | None] = mapped_column(default=None)
    #: While half-open: the worker sending the one probe call, and when its claim lapses.
    probe_holder: Mapped[str | None] = mapped_column(String(100), default=None)
    probe_expires_at: Mapped[datetime | None] = mapped_column(default=None)


class DatabaseUsage(Base):
    """Per ticket-system database: what its API last reported of its hourly count (every
    integration and tool of the tenant), polled by pipeline/thresholds.py.

    Admissions of the database's integrations lock this row, so their shared budget is counted
    one admission at a time (pipeline/governor.py).
    """

    __tablename__ = "database_usage"

    database_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: Calls the ticket system counted in its current timeframe, its threshold and the
    #: timeframe's length, when it last reported them (None: never yet).
    reported_count: Mapped[int | None] = mapped_column(default=None)
    threshold: Mapped[int | None] = mapped_column(default=None)
    timeframe_minutes: Mapped[int | None] = mapped_column(default=None)
    reported_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiSlot(Base):
    """One of the concurrent-call slots of an (integration, endpoint): held while a call runs.

    A slot is taken by a conditional UPDATE (free, or its lease expired), so a crashed holder's
    slot frees itself when `expires_at` passes.
    """

    __tablename__ = "api_slot"
    __table_args__ = (UniqueConstraint("integration_id", "endpoint", "slot"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    #: The object endpoint, lower case (tickets, ticketnotes …).
    endpoint: Mapped[str] = mapped_column(String(100))
    slot: Mapped[int] = mapped_column(default=0)
    holder: Mapped[str | None] = mapped_column(String(100), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkerHeartbeat(Base):
    """A running delivery worker: it beats while it runs, so /readyz can tell one is alive."""

    __tablename__ = "worker_heartbeat"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: How many deliveries it works on at once (its threads).
    threads: Mapped[int] = mapped_column(default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SchedulerRun(Base):
    """One run of a periodic job for one period: its row lets exactly one process run it."""

    __tablename__ = "scheduler_run"

    #: The job's name (prune, …).
    job: Mapped[str] = mapped_column(String(50), primary_key=True)
    #: The start of the period the run is for (a multiple of the job's period since the epoch).
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    #: The process that claimed the run (host:pid).
    holder: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: "ok", or "failed: <why>"; None while it runs (or when its process died meanwhile).
    outcome: Mapped[str | None] = mapped_column(Text, default=None)


class AdminUser(Base):
    """A person who may sign in to the admin web form (/admin/); none exists until one is made.

    Usernames are kept lower case (sign-in ignores case); `password_hash` is an argon2id hash in
    its encoded form, parameters included, so a hash made with older parameters is still read.
    """

    __tablename__ = "admin_user"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class AdminSession(Base):
    """A signed-in admin's session: the cookie carries a random token, only its hash is kept.

    Kept in the database so that signing out ends the session for good (a copied cookie is
    worthless afterwards) and every web process sees the same sessions.
    """

    __tablename__ = "admin_session"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    admin_user_id: Mapped[int] = mapped_column(ForeignKey("admin_user.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Past this time the session is over, whatever the cookie says (ADMIN_SESSION_HOURS).
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """One failed admin sign-in: counted per username and per remote address to slow guessing.

    In the database so the count holds across web processes; rows older than the counting window
    are deleted as new ones come.
    """

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_username_at", "username", "at"),
        Index("ix_login_failure_remote_addr_at", "remote_addr", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: The username as tried, lower case (also for names no admin has).
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TestDeliverySent(Base):
    """One test delivery sent: counted per sender (an admin, an API token) to limit how often
    one may send (TEST_DELIVERIES_PER_MINUTE).

    In the database so the count holds across web processes; rows older than a minute are
    deleted as new ones come.
    """

    __tablename__ = "test_delivery_sent"
    __table_args__ = (Index("ix_test_delivery_sent_sender_at", "sender", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: Who sent it: "admin:<user id>" or "api-token:<token id>".
    sender: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketWebhook(Base):
    """The webhook an integration registered with its ticket system, which calls back on ticket
    changes (POST /ticket-webhooks/<integration id>): the secret its callouts are signed with."""

    __tablename__ = "ticket_webhook"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), unique=True)
    #: The webhook's id in the ticket system (None: registered by hand, id unknown).
    remote_id: Mapped[int | None] = mapped_column(Id, default=None)
    #: Where the ticket system sends its callouts.
    url: Mapped[str] = mapped_column(String(500))
    #: The signing secret, encrypted with the SecretBox (needed in clear to check an HMAC).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    #: The ticket system's resource whose changes are not called back (the API user's own).
    excluded_resource_id: Mapped[int | None] = mapped_column(Id, default=None)
    #: The last verified callout, and when the ticket system said it switched the webhook off.
    last_callout_at: Mapped[datetime | None] = mapped_column(default=None)
    deactivated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EmergencyCondition(Base):
    """One way an integration can be broken, as its emergency contact is told of it.

    One row per (integration, condition) (pipeline/emergency.py), reused episode after episode:
    an episode starts (`since`) when a check first finds the condition, and ends (`cleared_at`)
    when a check finds it gone. The contact is mailed when it starts, again at most once per
    repeat interval while it lasts (`last_mailed_at`), and once when it ends
    (`recovery_mailed_at`). A checker about to send a mail claims the row first by a
    conditional UPDATE (`mail_claimed_by` until `mail_claimed_until`), so two checkers never
    send the same mail; a send that fails releases the claim and the mail is due again.
    """

    __tablename__ = "emergency_condition"
    __table_args__ = (UniqueConstraint("integration_id", "condition"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    #: credentials_refused, breaker_open, dead_letters or budget_exhausted.
    condition: Mapped[str] = mapped_column(String(30))
    #: Counts the episodes: a claim names the episode it mails about.
    episode: Mapped[int] = mapped_column(default=1)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    last_mailed_at: Mapped[datetime | None] = mapped_column(default=None)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    recovery_mailed_at: Mapped[datetime | None] = mapped_column(default=None)
    mail_claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    mail_claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    #: Why the last mail about this row could not be sent (the mail server's words); None
    #: once one went.
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
