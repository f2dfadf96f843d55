"""The API user's security level: which entities it may query, create and update.

A real API user's security level decides what it may do (an API-only user gets "API User (API-only)"
or a copy of it; the Ticket entity "will respect the View, Add, and Edit permissions assigned to the
logged in resource": OFFICIAL SOAP TicketEntity.htm). The sandbox's API user may do everything
unless a test takes something away: `SandboxConfig.denied`, or at run time
`POST /_sandbox/permissions {"Tickets": ["create"]}`, so a connector's "check connection" can be
shown each missing permission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from adapters.sandbox.entities import REST_PROPERTIES
from adapters.sandbox.errors import SandboxError

#: What a security level allows or denies per entity, as entityInformation names it
#: (userAccessForQuery, userAccessForCreate, userAccessForUpdate).
ACTIONS = ("query", "create", "update")


def permission_error(action: str) -> str:
    """Autotask's refusal of an action the API user's security level does not allow.

    Real for create: "The logged in Resource does not have the adequate permissions to create this
    entity type." with HTTP 500 (django-autotask FORBIDDEN_ERROR_MESSAGE: "the REST API returns
    HTTP 500 for some insufficient permission cases"; autotask-api.md §7). The query and update
    sentences are the same words with their verb (inferred).
    """
    return (
        f"The logged in Resource does not have the adequate permissions to {action} this entity"
        " type."
    )


@dataclass
class SecurityLevel:
    """The actions the API user may not take, per REST entity (everything else is allowed)."""

    denied: dict[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, entity: str, action: str) -> bool:
        """Whether the API user may take `action` (query, create, update) on `entity`."""
        return action not in self.denied.get(entity, frozenset())

    def check(self, entity: str, action: str) -> None:
        """Refuse (SandboxError, HTTP 500) an action the security level does not allow."""
        if not self.allows(entity, action):
            raise SandboxError(permission_error(action))

    def describe(self) -> dict[str, list[str]]:
        """The denied actions as GET /_sandbox/permissions answers (and POST accepts) them."""
        return {
            entity: [action for action in ACTIONS if action in actions]
            for entity, actions in sorted(self.denied.items())
            if actions
        }


def load_security_level(body: Any) -> SecurityLevel:
    """Read `{"<REST entity>": ["query" | "create" | "update", …]}`; `{}` or null: all allowed.

    Raises ValidationError naming each unknown entity or action.
    """
    if body is None:
        return SecurityLevel()
    if not isinstance(body, Mapping):
        raise ValidationError({"_schema": ["Expected a JSON object of entity: [actions]."]})
    denied: dict[str, frozenset[str]] = {}
    errors: dict[str, list[str]] = {}
    for entity, actions in body.items():
        if entity not in REST_PROPERTIES:
            errors[str(entity)] = [f"Unknown entity; use one of {', '.join(REST_PROPERTIES)}."]
            continue
        if not isinstance(actions, list) or not all(a in ACTIONS for a in actions):
            errors[entity] = [f"Expected a list of {', '.join(ACTIONS)}."]
            continue
        denied[entity] = frozenset(actions)
    if errors:
        raise ValidationError(errors)
    return SecurityLevel(denied)
