"""The ticket targets' side of the composition root: each integration's target from its adapter.

create_app puts the factory on Services once; the worker, the web layer and the CLI reach it
there. Like create_app, this is where the core meets the adapters; nothing else in connector/
imports one.
"""

from __future__ import annotations

from connector.errors import ConfigError
from connector.integrations.settings import IntegrationSettings
from connector.persistence.models import Integration
from connector.pipeline.worker import Worker
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services, TargetFactory


def target_factory(services: Services) -> TargetFactory:
    """A factory that builds an integration's target, decrypting its secrets on the way."""
    from adapters import load_targets

    settings = services.settings
    flavours = load_targets()

    def build(
        integration: Integration, options: IntegrationSettings, recorder: CallRecorder
    ) -> TicketTarget:
        if integration.api_flavour not in flavours:
            raise ConfigError(
                f"API flavour {integration.api_flavour!r} is unknown: use rest or soap"
            )
        client_class, target_class = flavours[integration.api_flavour]
        box = services.secret_box()
        # No hosts in the settings: the adapter keeps its own default (Autotask's zone hosts).
        hosts = (
            {"allowed_zone_hosts": options.allowed_zone_hosts} if options.allowed_zone_hosts else {}
        )
        client = client_class(
            integration.zone_lookup_url,
            integration.username,
            box.decrypt(integration.secret_encrypted),
            box.decrypt(integration.integration_code_encrypted),
            **hosts,
            connect_timeout=float(settings["AUTOTASK_CONNECT_TIMEOUT"]),
            read_timeout=float(settings["AUTOTASK_READ_TIMEOUT"]),
            recorder=recorder,
        )
        target: TicketTarget = target_class(client)
        return target

    return build


def make_worker(services: Services, *, worker_id: str | None = None) -> Worker:
    """A worker on the app's Services (and so its ticket targets)."""
    return Worker(services, worker_id=worker_id)
