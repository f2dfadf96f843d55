"""Composition root for the worker: builds each integration's ticket target from its adapter.

Like create_app, this is where the core meets the adapters; nothing else in connector/ imports one.
"""

from __future__ import annotations

from connector.errors import ConfigError
from connector.integration import IntegrationSettings
from connector.models import Integration
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services
from connector.worker import TargetFactory, Worker


def target_factory(services: Services) -> TargetFactory:
    """A factory that builds an integration's target, decrypting its secrets on the way."""
    from adapters.targets.autotask_rest.client import AutotaskRestClient
    from adapters.targets.autotask_rest.target import AutotaskRestTarget

    settings = services.settings

    def build(
        integration: Integration, options: IntegrationSettings, recorder: CallRecorder
    ) -> TicketTarget:
        if integration.api_flavour != "rest":
            raise ConfigError(f"API flavour {integration.api_flavour!r} is not supported yet")
        box = services.secret_box()
        client = AutotaskRestClient(
            integration.zone_lookup_url,
            integration.username,
            box.decrypt(integration.secret_encrypted),
            box.decrypt(integration.integration_code_encrypted),
            allowed_zone_hosts=options.allowed_zone_hosts,
            connect_timeout=float(settings["AUTOTASK_CONNECT_TIMEOUT"]),
            read_timeout=float(settings["AUTOTASK_READ_TIMEOUT"]),
            recorder=recorder,
        )
        return AutotaskRestTarget(client, note_type=options.note_type, publish=options.publish)

    return build


def make_worker(services: Services, *, worker_id: str | None = None) -> Worker:
    """A worker wired to the real targets."""
    return Worker(services, target_factory(services), worker_id=worker_id)
