"""An integration's ticket webhook: registered with the ticket system, its secret kept encrypted.

The ticket system calls POST /ticket-webhooks/<integration id> (web/ticket_webhooks.py) when one
of its tickets changes; the callouts are signed with a secret the connector generates here and
stores encrypted with the SecretBox, like the integration's own secret (secrets.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import ConfigError, InvalidInput
from connector.persistence.models import TicketWebhook, utcnow
from connector.pipeline.dispatch import CallLog
from connector.pipeline.trials import load_integration, store_calls
from connector.ports import TicketWebhookRegistrar
from connector.secrets import SecretBox
from connector.services import Services

#: The path the ticket system calls back, below the connector's public address.
CALLOUT_PATH = "/ticket-webhooks/{integration_id}"


def new_webhook_secret() -> str:
    """A fresh signing secret: 43 URL-safe characters (ticket systems allow 64, Autotask too)."""
    return secrets.token_urlsafe(32)


def callout_url(public_url: str, integration_id: int) -> str:
    """Where the ticket system calls back for an integration, under `public_url`."""
    base = public_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidInput(
            f"the connector's public address {public_url!r} is no http(s) URL: set PUBLIC_URL"
            " or pass --public-url"
        )
    return base + CALLOUT_PATH.format(integration_id=integration_id)


def save_ticket_webhook(
    session: Session,
    box: SecretBox,
    integration_id: int,
    *,
    url: str,
    secret: str,
    remote_id: int | None = None,
    excluded_resource_id: int | None = None,
    now: datetime | None = None,
) -> TicketWebhook:
    """Store (or replace) the integration's ticket webhook, its secret encrypted."""
    webhook = session.scalar(
        select(TicketWebhook).where(TicketWebhook.integration_id == integration_id)
    )
    if webhook is None:
        webhook = TicketWebhook(integration_id=integration_id, created_at=now or utcnow())
        session.add(webhook)
    webhook.url = url
    webhook.secret_encrypted = box.encrypt(secret)
    webhook.remote_id = remote_id
    webhook.excluded_resource_id = excluded_resource_id
    webhook.deactivated_at = None
    session.flush()
    return webhook


@dataclass(frozen=True)
class Registration:
    """A ticket webhook just registered: where it calls, its id there, whom it leaves out."""

    integration_id: int
    url: str
    remote_id: int
    excluded_resource_id: int | None


def register_ticket_webhook(
    services: Services, integration_id: int | None, public_url: str
) -> Registration:
    """Register the integration's ticket webhook through the ticket system's API; store it.

    A new secret is generated for it (an earlier registration's callouts stop verifying). Its
    calls are recorded as API activity, like a test delivery's.

    Raises:
        NotFoundError: no such integration.
        InvalidInput: `public_url` is no http(s) address.
        ConfigError: the integration's API flavour cannot register webhooks.
        TargetError: a call to the ticket system failed.
    """
    with services.transaction() as session:
        loaded = load_integration(services, session, integration_id)
    integration = loaded.integration
    url = callout_url(public_url, integration.id)
    calls = CallLog()
    try:
        target = services.targets()(integration, loaded.settings, calls)
        if not isinstance(target, TicketWebhookRegistrar):
            raise ConfigError(
                f"the {integration.api_flavour} API cannot register ticket webhooks;"
                " register one by hand, or use an integration on another API flavour"
            )
        secret = new_webhook_secret()
        registered = target.register_ticket_webhook(
            f"Alert connector: {integration.name}"[:100], url, secret
        )
    finally:
        store_calls(services, calls, integration)
    with services.transaction() as session:
        save_ticket_webhook(
            session,
            services.secret_box(),
            integration.id,
            url=url,
            secret=secret,
            remote_id=registered.remote_id,
            excluded_resource_id=registered.excluded_resource_id,
        )
    return Registration(integration.id, url, registered.remote_id, registered.excluded_resource_id)
