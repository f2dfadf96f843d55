"""A faithful local simulator of Autotask PSA's REST and SOAP APIs (the "sandbox").

It is the Autotask every test and `make run` talk to. Nothing here is imported by the connector's
core; `create_app` and the CLI wire it in.
"""

from adapters.sandbox.app import create_sandbox_app
from adapters.sandbox.core import Sandbox, SandboxConfig
from adapters.sandbox.limits import LimitSettings
from adapters.sandbox.seed import ApiUser, make_api_user
from adapters.sandbox.server import SandboxServer

__all__ = [
    "ApiUser",
    "LimitSettings",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "create_sandbox_app",
    "make_api_user",
]
