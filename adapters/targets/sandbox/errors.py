"""Errors the sandbox answers with, in Autotask's own shapes."""

from __future__ import annotations


class SandboxError(Exception):
    """A request Autotask would refuse: REST answers `{"errors": [...]}`, SOAP an ATWSError list.

    Real Autotask answers validation and lookup failures with HTTP 500 and this body.
    Reference: ../shared/reference/autotask-api.md §7.
    """

    def __init__(self, *messages: str, status: int = 500) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.status = status


class AuthFailure(SandboxError):
    """Credentials Autotask refuses: a wrong secret is 401, an unknown user or code is 500.

    Reference: autotask-api.md §2 (apigrate/autotask-restapi issue #19).
    """
