"""The adapters' side of the composition root: each integration's target, and the mail sender.

create_app puts the factories and the mail sender on Services once; the worker, the web layer
and the CLI reach them there. Like create_app, this is where the core meets the adapters;
nothing else in connector/ imports one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from connector.errors import ConfigError
from connector.integrations.settings import IntegrationSettings
from connector.integrations.zones import ZoneMemory
from connector.persistence.models import Integration
from connector.pipeline.worker import Worker
from connector.ports import CallGate, CallRecorder, MailSender, TicketSystemCatalog, TicketTarget
from connector.scheduler import Scheduler, default_jobs
from connector.services import CatalogFactory, Services, TargetFactory


def _client_builder(services: Services, clients: dict[str, Any]) -> Any:
    """Builds an integration's API client of its flavour, decrypting its secrets on the way.

    Each client starts from the integration's kept zone, if any, and keeps every zone it looks
    up (connector.integrations.zones): a new client, here or in another process, then makes no
    zone lookup of its own.
    """
    settings = services.settings
    zones = ZoneMemory(services)

    def client(
        integration: Integration,
        options: IntegrationSettings,
        recorder: CallRecorder,
        read_timeout: float | None = None,
    ) -> Any:
        if integration.api_flavour not in clients:
            known = " or ".join(sorted(clients))
            raise ConfigError(f"API flavour {integration.api_flavour!r} is unknown: use {known}")
        box = services.secret_box()
        # No hosts in the settings: the adapter keeps its own default (Autotask's zone hosts).
        hosts = (
            {"allowed_zone_hosts": options.allowed_zone_hosts} if options.allowed_zone_hosts else {}
        )
        return clients[integration.api_flavour](
            integration.zone_lookup_url,
            integration.username,
            box.decrypt(integration.secret_encrypted),
            box.decrypt(integration.integration_code_encrypted),
            **hosts,
            connect_timeout=float(settings["AUTOTASK_CONNECT_TIMEOUT"]),
            read_timeout=min(float(settings["AUTOTASK_READ_TIMEOUT"]), read_timeout or math.inf),
            recorder=recorder,
            known_zone=zones.known(integration),
            on_zone=zones.listener(integration),
        )

    return client


def target_factory(services: Services) -> TargetFactory:
    """A factory that builds an integration's target, decrypting its secrets on the way."""
    from adapters import load_targets

    flavours = load_targets()
    client = _client_builder(services, {name: pair[0] for name, pair in flavours.items()})

    def build(
        integration: Integration,
        options: IntegrationSettings,
        recorder: CallRecorder,
        /,
        *,
        read_timeout: float | None = None,
    ) -> TicketTarget:
        made = client(integration, options, recorder, read_timeout)
        target: TicketTarget = flavours[integration.api_flavour][1](made)
        return target

    return build


def catalog_factory(services: Services) -> CatalogFactory:
    """A factory that builds an integration's catalog over the client its target would use."""
    from adapters import load_catalogs, load_targets

    catalogs = load_catalogs()
    client = _client_builder(
        services,
        {name: pair[0] for name, pair in load_targets().items() if name in catalogs},
    )

    def build(
        integration: Integration,
        options: IntegrationSettings,
        recorder: CallRecorder,
        gate: CallGate,
    ) -> TicketSystemCatalog:
        made = client(integration, options, recorder)
        catalog: TicketSystemCatalog = catalogs[integration.api_flavour](made, gate)
        return catalog

    return build


def mail_sender(settings: Mapping[str, Any]) -> MailSender | None:
    """The SMTP sender the smtp settings describe; None when no smtp host is set."""
    from adapters.mail.smtp import SmtpMailSender

    if not settings["SMTP_HOST"]:
        return None
    return SmtpMailSender(
        settings["SMTP_HOST"],
        int(settings["SMTP_PORT"]),
        settings["SMTP_FROM"],
        username=settings["SMTP_USERNAME"],
        password=settings["SMTP_PASSWORD"],
        starttls=bool(settings["SMTP_STARTTLS"]),
        use_ssl=bool(settings["SMTP_SSL"]),
        timeout=float(settings["SMTP_TIMEOUT_SECONDS"]),
    )


def make_worker(services: Services, *, worker_id: str | None = None) -> Worker:
    """A worker on the app's Services (and so its ticket targets)."""
    return Worker(services, worker_id=worker_id)


def make_scheduler(services: Services) -> Scheduler:
    """The periodic jobs' scheduler on the app's Services (started by each worker process)."""
    return Scheduler(services, default_jobs(services.settings))
