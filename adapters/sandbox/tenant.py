"""Tenant settings that change which tickets the sandbox accepts, as they differ between tenants.

Set in SandboxConfig (and CONNECTOR_SANDBOX_* for `connector sandbox`); the API-only ticket
category can also be changed at run time with POST /_sandbox/ticket-category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validates

from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from adapters.sandbox.seed import PICKLISTS
from adapters.sandbox.values import coerce_value

#: Ticket properties a category cannot default or require: the server owns them, or they are
#: the category itself.
_NOT_CATEGORY_FIELDS = {"id", "ticketCategory", "userDefinedFields"}


@dataclass(frozen=True)
class ApiTicketCategory:
    """An API-only ticket category: its defaults and the fields it makes required.

    Autotask applies an API-only category to tickets created through the API; the category
    controls "the available values, the default value, and the Required setting of fields"
    (autotask.net help API_only_Ticket_Categories.htm; autotask-api.md §14). That is how some
    tenants answer "dueDateTime is required." (WYRE-AI/autotask-mcp PR #288) or need queueID or
    billingCodeID (KelvinTegelaar/AutotaskAPI #74).
    """

    #: A value of the Tickets ticketCategory picklist.
    id: int
    #: Ticket property → value, applied to a created ticket of the category that does not give it.
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Ticket properties a ticket of the category must have (after the defaults are applied).
    required: tuple[str, ...] = ()
    #: Completing a ticket of the category needs a non-empty resolution.
    resolution_required_to_complete: bool = False
    #: Notes on a ticket of the category need a title ("Require titles on ticket notes" is a
    #: ticket category setting: OFFICIAL TicketNotesEntity.htm, autotask-api.md §5).
    note_title_required: bool = False

    def describe(self) -> dict[str, Any]:
        """Return the category as GET /_sandbox/ticket-category answers (and POST accepts) it."""
        return {
            "id": self.id,
            "defaults": dict(self.defaults),
            "required": list(self.required),
            "resolution_required_to_complete": self.resolution_required_to_complete,
            "note_title_required": self.note_title_required,
        }


@dataclass
class TenantRules:
    """The tenant-specific ticket rules one sandbox applies."""

    #: Refuse new tickets for inactive companies (and moving a ticket to one).
    refuse_inactive_companies: bool = True
    #: The API-only ticket category, or None for none (the default).
    api_ticket_category: ApiTicketCategory | None = None


_TICKET_PROPERTIES = {prop.lower(): prop for prop in REST_PROPERTIES["Tickets"]}
_READ_ONLY = {str(row["rest_name"]) for row in FIELD_INFO["Tickets"] if row["read_only"]}


def _ticket_property(name: str) -> str:
    """The Ticket property a (case-insensitive) name stands for; ValidationError if none."""
    prop = _TICKET_PROPERTIES.get(name.lower())
    if prop is None or prop in _NOT_CATEGORY_FIELDS or prop in _READ_ONLY:
        raise ValidationError(f"{name} is not a writable Ticket property.")
    return prop


class ApiTicketCategorySchema(Schema):
    id = fields.Integer(required=True, strict=True)
    defaults = fields.Dict(keys=fields.String(), load_default=dict)
    required = fields.List(fields.String(), load_default=list)
    resolution_required_to_complete = fields.Boolean(load_default=False)
    note_title_required = fields.Boolean(load_default=False)

    @validates("id")
    def _is_a_category(self, value: int, **_: Any) -> None:
        active = {v["value"] for v in PICKLISTS["Tickets"]["ticketCategory"] if v["isActive"]}
        if str(value) not in active:
            raise ValidationError(
                f"{value} is not an active value of the ticketCategory picklist"
                f" ({', '.join(sorted(active))})."
            )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ApiTicketCategory:
        errors: dict[str, list[str]] = {}
        defaults = {}
        for name, value in data["defaults"].items():
            try:
                prop = _ticket_property(name)
                if value is None:
                    raise ValidationError(f"{name}: a default needs a value.")
                defaults[prop] = coerce_value(prop, REST_PROPERTIES["Tickets"][prop], value)
            except (ValidationError, ValueError) as e:
                errors.setdefault("defaults", []).append(str(e.args[0]))
        required = []
        for name in data["required"]:
            try:
                required.append(_ticket_property(name))
            except ValidationError as e:
                errors.setdefault("required", []).append(str(e.args[0]))
        if errors:
            raise ValidationError(errors)
        return ApiTicketCategory(
            id=data["id"],
            defaults=defaults,
            required=tuple(required),
            resolution_required_to_complete=data["resolution_required_to_complete"],
            note_title_required=data["note_title_required"],
        )


def load_ticket_category(body: Any) -> ApiTicketCategory | None:
    """Read an API-only ticket category from JSON; `{}` or null is none. ValidationError if bad."""
    if body is None or body == {}:
        return None
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["Expected a JSON object (or {} or null for none)."]})
    category: ApiTicketCategory = ApiTicketCategorySchema().load(body)
    return category
