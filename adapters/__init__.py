"""Adapters: the only code that knows a vendor. The registries map slugs to classes, lazily."""

from __future__ import annotations

import importlib
from typing import Any

#: Source slug (the /hooks/<slug> URL segment) → "module:Class".
SOURCES = {
    "generic": "adapters.sources.generic:GenericSource",
    "logicmonitor": "adapters.sources.logicmonitor:LogicMonitorSource",
    "datto_rmm": "adapters.sources.datto_rmm:DattoRmmSource",
    "office_protect": "adapters.sources.office_protect:OfficeProtectSource",
    "alertmanager": "adapters.sources.alertmanager:AlertmanagerSource",
}

#: Target API flavour (an integration's `api_flavour`) → ("module:Client", "module:Target",
#: "module:profile"): the client that talks to the API, the `connector.ports.TicketTarget` over
#: it, and the `connector.ports.TargetProfile` that tells the core what it must know of the API.
TARGETS = {
    "rest": (
        "adapters.targets.autotask.rest.client:AutotaskRestClient",
        "adapters.targets.autotask.rest.target:AutotaskRestTarget",
        "adapters.targets.autotask.profile:REST_PROFILE",
    ),
    "soap": (
        "adapters.targets.autotask.soap.client:AutotaskSoapClient",
        "adapters.targets.autotask.soap.target:AutotaskSoapTarget",
        "adapters.targets.autotask.profile:SOAP_PROFILE",
    ),
}


#: Target API flavour → "module:Catalog": what the ticket system tells an admin setting an
#: integration up (`connector.ports.TicketSystemCatalog`), built over the flavour's client with
#: the core's call gate.
CATALOGS = {
    "rest": "adapters.targets.autotask.rest.catalog:AutotaskRestCatalog",
    "soap": "adapters.targets.autotask.soap.catalog:AutotaskSoapCatalog",
}

#: The ticket system's webhook callouts (`connector.ports.TicketCallouts`): one for every flavour,
#: as Autotask's webhooks do not depend on the API an integration writes through.
TICKET_CALLOUTS = "adapters.targets.autotask.webhooks:AutotaskTicketCallouts"


def load(dotted: str) -> Any:
    """Import "module:attribute" and return the attribute; fail loudly if it is missing."""
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_sources() -> dict[str, Any]:
    """Instantiate every registered source adapter (at app start, so a broken one fails fast)."""
    return {slug: load(path)() for slug, path in SOURCES.items()}


def load_targets() -> dict[str, tuple[Any, Any]]:
    """Import every registered target's client and target class (so a broken one fails fast)."""
    return {
        flavour: (load(client), load(target)) for flavour, (client, target, _) in TARGETS.items()
    }


def load_target_profiles() -> dict[str, Any]:
    """Every registered target flavour's profile: what the core must know of its API."""
    return {flavour: load(profile) for flavour, (_, _, profile) in TARGETS.items()}


def load_catalogs() -> dict[str, Any]:
    """Every registered flavour's catalog class (so a broken one fails fast)."""
    return {flavour: load(path) for flavour, path in CATALOGS.items()}


def load_ticket_callouts() -> Any:
    """The class that verifies and reads the ticket system's webhook callouts."""
    return load(TICKET_CALLOUTS)
