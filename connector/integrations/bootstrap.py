"""Startup: the configured integration as a seed, and the preset tokens, in the database.

The INTEGRATION setting (TOML or CONNECTOR_INTEGRATION) is a *seed*: applied when no integration
of its name exists, and left alone afterwards, so edits made through the API (or
`connector config import`) survive a restart. Its webhook credentials and the preset
HOOK_TOKEN are made to exist at every start (they are found by their secret: nothing doubles).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import ConfigError, ConflictError, InvalidInput
from connector.integrations.credentials import sync_configured_credentials
from connector.integrations.editing import (
    EditContext,
    IntegrationChangesSchema,
    IntegrationSchema,
    create_integration,
    load_input,
    update_integration,
)
from connector.integrations.tenants import entries_from, replace_tenants
from connector.persistence.models import ApiToken, HookCredential, Integration
from connector.secrets import token_hash

logger = logging.getLogger(__name__)

#: The integration's connection: what `refresh_connection` applies to an existing integration.
CONNECTION_KEYS = ("api_flavour", "zone_lookup_url", "username", "secret", "integration_code")
#: Keys of the INTEGRATION setting that are not ticket settings.
NOT_SETTINGS = {"name", *CONNECTION_KEYS, "tenants", "hook_credentials"}
#: What the INTEGRATION setting must give for a new integration.
REQUIRED = ("zone_lookup_url", "username", "secret", "integration_code")


def sync_configured_integration(
    session: Session,
    config: Mapping[str, Any],
    ctx: EditContext,
    *,
    hook_token: str = "",
    refresh_connection: bool = False,
) -> Integration:
    """Seed the integration the INTEGRATION setting describes, unless one of its name exists.

    A new one is created as the API creates one (same checks; its flavour's default delivery
    requests) with the configured tenant map. An existing one keeps everything it has, except
    with `refresh_connection` (`connector run`'s sandbox integration, whose port and generated
    credentials change between starts): then its connection follows the setting. Either way the
    configured `hook_credentials` and `hook_token` (a bearer credential valid on every source)
    are made to exist.

    Raises:
        ConfigError: the setting is invalid (the message names the field).
    """
    name = str(config.get("name") or "default")
    integration = session.scalar(select(Integration).where(Integration.name == name))
    try:
        if integration is None:
            integration = _seed(session, config, ctx, name)
        elif refresh_connection:
            changes = {k: str(config[k]) for k in CONNECTION_KEYS if config.get(k)}
            loaded = load_input(
                IntegrationChangesSchema(), changes, what="INTEGRATION is invalid", partial=True
            )
            update_integration(session, ctx, integration, loaded, what="INTEGRATION is invalid")
        else:
            logger.info("integration.seed_not_applied", extra={"integration": name})
    except (InvalidInput, ConflictError) as e:
        raise ConfigError(str(e), details=e.details) from e
    sync_configured_credentials(
        session,
        ctx.box,
        integration.id,
        config.get("hook_credentials") or [],
        sources=list(ctx.sources),
    )
    if hook_token:
        ensure_hook_token(session, integration.id, hook_token, label="preset")
    return integration


def _seed(session: Session, config: Mapping[str, Any], ctx: EditContext, name: str) -> Integration:
    missing = [k for k in REQUIRED if not config.get(k)]
    if missing:
        raise ConfigError(f"INTEGRATION is missing {', '.join(missing)}")
    # No flavour given: the first the target adapters register (the README names it).
    flavour = str(config.get("api_flavour") or next(iter(ctx.profiles), ""))
    fields = {
        "name": name,
        "api_flavour": flavour,
        **{k: str(config[k]) for k in REQUIRED},
        "settings": {k: v for k, v in config.items() if k not in NOT_SETTINGS},
    }
    data = load_input(IntegrationSchema(), fields, what="INTEGRATION is invalid")
    try:
        tenants = entries_from(config.get("tenants") or {})
    except ValidationError as e:
        raise ConfigError(
            f"INTEGRATION tenants must map tenant names to company ids (or false): {e.messages}"
        ) from e
    integration = create_integration(session, ctx, data, what="INTEGRATION is invalid")
    replace_tenants(session, integration, tenants)
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
