"""JSON request bodies of the API: loaded by a marshmallow schema, refused with every bad field."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from connector.errors import InvalidInput
from connector.integrations.strict import StrictInteger, flatten
from connector.pipeline.outbox import reason_problem
from connector.web.params import MAX_ID


class InvalidBody(InvalidInput):
    """A request body the API refuses; the message names every bad field."""


def json_body(schema: Schema, *, required: bool = True, partial: bool = False) -> dict[str, Any]:
    """The JSON body loaded by `schema`; InvalidBody naming each bad field.

    Not `required`: an empty body reads as `{}`. `partial`: required fields may be left out
    (a PATCH).
    """
    raw = request.get_json(silent=True)
    if raw is None and not required and not request.get_data():
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidBody("the body must be a JSON object (Content-Type: application/json)")
    try:
        loaded: dict[str, Any] = schema.load(raw, partial=partial)
    except ValidationError as e:
        lines = flatten(e.messages)
        raise InvalidBody(
            "invalid body: " + "; ".join(lines), details={"fields": e.messages}
        ) from e
    return loaded


def _reason(value: str) -> bool:
    """A discard's reason as the core checks it (required, not blank, bounded)."""
    problem = reason_problem(value)
    if problem is not None:
        raise ValidationError(problem)
    return True


class DiscardSchema(Schema):
    """A discard of a dead letter or a kept webhook: `{"reason"}`."""

    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=_reason)


class ReplayAllSchema(Schema):
    """A replay of everything waiting: `{"integration_id"}` to keep to one integration."""

    class Meta:
        unknown = RAISE

    integration_id = StrictInteger(
        allow_none=True, load_default=None, validate=validate.Range(0, MAX_ID)
    )
