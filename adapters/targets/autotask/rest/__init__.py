"""The Autotask REST (JSON) ticket target: `AutotaskRestClient` and `AutotaskRestTarget`."""

from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.rest.client import AutotaskRestClient
from adapters.targets.autotask.rest.target import AutotaskRestTarget

__all__ = ["AutotaskRestClient", "AutotaskRestTarget", "AutotaskUnavailable"]
