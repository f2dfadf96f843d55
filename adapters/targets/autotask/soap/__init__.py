"""The Autotask SOAP (ATWS 1.6) ticket target: `AutotaskSoapClient` and `AutotaskSoapTarget`.

`atws` writes and reads ATWS XML, `envelopes` builds and merges requests, `answers` reads the
answers, `client` carries them, `catalog` is the admin's (`AutotaskSoapCatalog`); `fields` is
generated from the WSDL.
"""

from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.soap.atws import SoapEntity, XsdValue
from adapters.targets.autotask.soap.catalog import AutotaskSoapCatalog
from adapters.targets.autotask.soap.client import AutotaskSoapClient
from adapters.targets.autotask.soap.envelopes import build_queryxml
from adapters.targets.autotask.soap.target import AutotaskSoapTarget

__all__ = [
    "AutotaskSoapCatalog",
    "AutotaskSoapClient",
    "AutotaskSoapTarget",
    "AutotaskUnavailable",
    "SoapEntity",
    "XsdValue",
    "build_queryxml",
]
