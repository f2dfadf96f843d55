"""The Autotask SOAP (ATWS 1.6) ticket target: `AutotaskSoapClient` and `AutotaskSoapTarget`."""

from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.soap.client import (
    AutotaskSoapClient,
    SoapEntity,
    XsdValue,
    build_queryxml,
)
from adapters.targets.autotask.soap.target import AutotaskSoapTarget

__all__ = [
    "AutotaskSoapClient",
    "AutotaskSoapTarget",
    "AutotaskUnavailable",
    "SoapEntity",
    "XsdValue",
    "build_queryxml",
]
