"""What every webhook needs of its sender and integration, kept per process until it changes.

A webhook is answered in one write transaction. What it reads of the configuration (who a
bearer or basic credential is, the integration's settings and tenant map) changes rarely, so a
web process keeps it; what must be right at once is read again in that transaction, in one
statement (`IngestState.read`):

- the credential is still live: a revoked token is refused on its next webhook, whichever
  process revoked it;
- the integration's `active` flag, under a share lock on PostgreSQL (an activation waits for
  this ingest, as `pipeline.ingest.is_active` explains);
- the integration's `updated_at`, the version of its settings: every edit of the settings or the
  tenant map changes it (the ORM's onupdate, `tenants._touch`), so the settings and tenant map
  kept for an older version are read again, in the same transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from marshmallow import ValidationError
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from connector.errors import AuthError, ConfigError
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.verification import HookCaller
from connector.persistence.models import HookCredential, Integration
from connector.pipeline.ingest import tenant_routes
from connector.pipeline.routing import TenantRoute

#: Credentials kept per process: far more than any installation has senders.
CALLERS_KEPT = 1024


@dataclass(frozen=True)
class IngestConfig:
    """An integration's settings and tenant map, as of one version of it."""

    version: datetime | None
    settings: IntegrationSettings
    routes: Mapping[str, TenantRoute]


@dataclass(frozen=True)
class IngestState:
    """What a webhook's transaction reads of its integration before it writes."""

    #: False: the integration is inactive, its deliveries are held.
    active: bool
    config: IngestConfig


class HookCache:
    """One web process's memory of webhook callers and integrations' ingest settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callers: OrderedDict[Hashable, HookCaller] = OrderedDict()
        self._configs: dict[int, IngestConfig] = {}

    def caller(self, key: Hashable) -> HookCaller | None:
        """The caller a credential (by the digest of what was presented) was found to be."""
        with self._lock:
            found = self._callers.get(key)
            if found is not None:
                self._callers.move_to_end(key)
            return found

    def remember(self, key: Hashable, caller: HookCaller) -> None:
        """Keep a caller found in the database (only plain credentials: no HMAC, no replay)."""
        with self._lock:
            self._callers[key] = caller
            while len(self._callers) > CALLERS_KEPT:
                self._callers.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        """Drop a caller whose credential turned out revoked."""
        with self._lock:
            self._callers.pop(key, None)

    def config(self, integration_id: int) -> IngestConfig | None:
        """The settings and tenant map last read for the integration (perhaps no longer its
        current ones: `state` tells, in the webhook's transaction); None when never read."""
        return self._configs.get(integration_id)

    def state(self, session: Session, caller: HookCaller) -> IngestState:
        """The integration's state for this webhook, in the caller's transaction (one statement;
        two more when the settings changed since this process last read them).

        Raises AuthError when the credential was revoked (or deleted) since it was checked.
        """
        row = session.connection().execute(_STATE, {"credential_id": caller.credential_id}).first()
        if row is None:
            raise AuthError("the webhook credential was revoked")
        active, version = row
        config = self._configs.get(caller.integration_id)
        if config is None or config.version != version:
            config = _read_config(session, caller.integration_id, version)
            with self._lock:
                self._configs[caller.integration_id] = config
        return IngestState(active is not False, config)


_INTEGRATIONS = cast(Table, Integration.__table__)
_CREDENTIALS = cast(Table, HookCredential.__table__)
#: The one statement of every webhook's reads (a Core select built once: its ORM form cost as
#: much as the webhook's writes): the credential live, the integration's activity and version.
_STATE = (
    select(_INTEGRATIONS.c.active, _INTEGRATIONS.c.updated_at)
    .join(_CREDENTIALS, _CREDENTIALS.c.integration_id == _INTEGRATIONS.c.id)
    .where(
        _CREDENTIALS.c.id == bindparam("credential_id"),
        _CREDENTIALS.c.revoked_at.is_(None),
    )
    .with_for_update(read=True, of=_INTEGRATIONS)
)


def _read_config(session: Session, integration_id: int, version: datetime | None) -> IngestConfig:
    """The integration's validated settings and tenant map, read now."""
    raw = session.scalar(select(Integration.settings).where(Integration.id == integration_id))
    try:
        settings = load_settings(raw or {})
    except ValidationError as e:
        # Settings are validated when they are saved, so this is a bug, not a sender's fault.
        raise ConfigError(f"integration {integration_id} has invalid settings") from e
    return IngestConfig(version, settings, tenant_routes(session, integration_id))
