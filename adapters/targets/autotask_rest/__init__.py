"""The Autotask REST (JSON) ticket target: `AutotaskRestClient` and `AutotaskRestTarget`."""

from adapters.targets.autotask_rest.client import AutotaskRestClient, AutotaskUnavailable
from adapters.targets.autotask_rest.target import AutotaskRestTarget

__all__ = ["AutotaskRestClient", "AutotaskRestTarget", "AutotaskUnavailable"]
