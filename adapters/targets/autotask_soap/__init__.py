"""The Autotask SOAP (ATWS 1.6) ticket target: `AutotaskSoapClient` and `AutotaskSoapTarget`."""

from adapters.targets.autotask_common import AutotaskUnavailable
from adapters.targets.autotask_soap.client import (
    AutotaskSoapClient,
    SoapEntity,
    XsdValue,
    build_queryxml,
)
from adapters.targets.autotask_soap.target import AutotaskSoapTarget

__all__ = [
    "AutotaskSoapClient",
    "AutotaskSoapTarget",
    "AutotaskUnavailable",
    "SoapEntity",
    "XsdValue",
    "build_queryxml",
]
