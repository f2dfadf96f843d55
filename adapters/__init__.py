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

#: Target API flavour (an integration's api_flavour) → ("module:Client", "module:Target").
TARGETS = {
    "rest": (
        "adapters.targets.autotask.rest.client:AutotaskRestClient",
        "adapters.targets.autotask.rest.target:AutotaskRestTarget",
    ),
    "soap": (
        "adapters.targets.autotask.soap.client:AutotaskSoapClient",
        "adapters.targets.autotask.soap.target:AutotaskSoapTarget",
    ),
}


def load(dotted: str) -> Any:
    """Import "module:attribute" and return the attribute; fail loudly if it is missing."""
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_sources() -> dict[str, Any]:
    """Instantiate every registered source adapter (at app start, so a broken one fails fast)."""
    return {slug: load(path)() for slug, path in SOURCES.items()}


def load_targets() -> dict[str, tuple[Any, Any]]:
    """Import every registered target's client and target class (so a broken one fails fast)."""
    return {flavour: (load(client), load(target)) for flavour, (client, target) in TARGETS.items()}
