"""The Autotask REST (JSON) ticket target: `AutotaskRestClient`, `AutotaskRestTarget` and the
admin's `AutotaskRestCatalog`."""

from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.rest.catalog import AutotaskRestCatalog
from adapters.targets.autotask.rest.client import AutotaskRestClient
from adapters.targets.autotask.rest.target import AutotaskRestTarget

__all__ = ["AutotaskRestCatalog", "AutotaskRestClient", "AutotaskRestTarget", "AutotaskUnavailable"]
