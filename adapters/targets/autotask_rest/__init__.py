"""The Autotask REST (JSON) ticket target: `AutotaskRestClient` and `AutotaskRestTarget`."""

from adapters.targets.autotask_common import AutotaskUnavailable
from adapters.targets.autotask_rest.client import AutotaskRestClient
from adapters.targets.autotask_rest.target import AutotaskRestTarget

__all__ = ["AutotaskRestClient", "AutotaskRestTarget", "AutotaskUnavailable"]
