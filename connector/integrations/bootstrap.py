"""Startup: migrate, and make the configured integration and preset tokens exist in the database."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.errors import ConfigError
from connector.integrations.credentials import sync_configured_credentials
from connector.integrations.settings import load_settings
from connector.integrations.store import generate_for, stored_requests
from connector.persistence.models import ApiToken, HookCredential, Integration, TenantMapping
from connector.ports import TargetProfile
from connector.secrets import SecretBox, token_hash

#: Keys of the INTEGRATION setting that are not ticket settings.
CONNECTION_KEYS = {
    "name",
    "api_flavour",
    "zone_lookup_url",
    "username",
    "secret",
    "integration_code",
    "tenants",
    "hook_credentials",
}


def sync_configured_integration(
    session: Session,
    config: Mapping[str, Any],
    box: SecretBox,
    *,
    hook_token: str = "",
    sources: Collection[str] = (),
    profiles: Mapping[str, TargetProfile],
) -> Integration:
    """Create or update the integration described by the INTEGRATION setting.

    `hook_token` becomes a bearer credential valid on every source; `sources` are the registered
    source slugs that `hook_credentials` entries may be limited to.
    """
    missing = [
        k
        for k in ("zone_lookup_url", "username", "secret", "integration_code")
        if not config.get(k)
    ]
    if missing:
        raise ConfigError(f"INTEGRATION is missing {', '.join(missing)}")
    ticket_settings = {k: v for k, v in config.items() if k not in CONNECTION_KEYS}
    try:
        load_settings(ticket_settings)
    except ValidationError as e:
        raise ConfigError(f"INTEGRATION has invalid settings: {e.messages}") from e
    name = str(config.get("name") or "default")
    integration = session.scalar(select(Integration).where(Integration.name == name))
    if integration is None:
        integration = Integration(name=name)
        session.add(integration)
    flavour = str(config.get("api_flavour") or "rest")
    if flavour not in profiles:
        known = " or ".join(profiles)
        raise ConfigError(f"INTEGRATION api_flavour {flavour!r} is unknown: use {known}")
    flavour_changed = integration.api_flavour != flavour
    integration.api_flavour = flavour
    integration.zone_lookup_url = str(config["zone_lookup_url"])
    integration.username = str(config["username"])
    integration.secret_encrypted = box.encrypt(str(config["secret"]))
    integration.integration_code_encrypted = box.encrypt(str(config["integration_code"]))
    integration.settings = ticket_settings
    session.flush()
    if flavour_changed or not stored_requests(session, integration.id):
        # Requests written for the other flavour cannot work: start again from its defaults.
        generate_for(session, integration, profiles[flavour])
    tenants = config.get("tenants") or {}
    if not isinstance(tenants, Mapping):
        raise ConfigError("INTEGRATION tenants must map tenant names to company ids (or false)")
    session.execute(delete(TenantMapping).where(TenantMapping.integration_id == integration.id))
    for tenant, company in tenants.items():
        enabled = company is not False
        session.add(
            TenantMapping(
                integration_id=integration.id,
                tenant=str(tenant),
                company_id=int(company) if enabled and company is not None else None,
                enabled=enabled,
            )
        )
    sync_configured_credentials(
        session, box, integration.id, config.get("hook_credentials") or [], sources=sources
    )
    if hook_token:
        ensure_hook_token(session, integration.id, hook_token, label="preset")
    return integration


def ensure_hook_token(session: Session, integration_id: int, token: str, *, label: str) -> None:
    """Store the token's hash as a bearer credential for every source, unless it is stored."""
    digest = token_hash(token)
    row = session.scalar(select(HookCredential).where(HookCredential.token_sha256 == digest))
    if row is not None and row.integration_id == integration_id:
        # The preset token must work on every source, whatever hook_credentials said of it.
        row.source = None
    elif row is None:
        session.add(
            HookCredential(
                integration_id=integration_id,
                scheme="bearer",
                source=None,
                token_sha256=digest,
                label=label,
            )
        )


def ensure_api_token(session: Session, token: str, *, label: str) -> None:
    """Store an API token's hash unless it is stored already."""
    digest = token_hash(token)
    if session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest)) is None:
        session.add(ApiToken(token_sha256=digest, label=label))
