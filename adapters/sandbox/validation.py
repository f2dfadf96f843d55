"""How the sandbox validates writes as Autotask does: known properties, types and lengths, then
required fields, picklists, references and the tenant's rules on the complete record."""

from __future__ import annotations

from typing import Any

from adapters.sandbox.entities import REST_PROPERTIES
from adapters.sandbox.entity_info import FIELD_ROWS, PARENTS, is_writable
from adapters.sandbox.errors import (
    SandboxError,
    length_error,
    reference_error,
    required_error,
)
from adapters.sandbox.seed import (
    PICKLISTS,
    REFERENCE_RECORDS,
    RESOURCE_ROLE_QUEUES,
    RESOURCE_SERVICE_DESK_ROLES,
    STATUS_COMPLETE,
    is_active,
)
from adapters.sandbox.state import SandboxState
from adapters.sandbox.tenant import ApiTicketCategory, TenantRules
from adapters.sandbox.values import coerce_value

#: Ticket reference fields whose record must belong to the ticket's company. Autotask documents
#: it for a ticket's additional contacts ("Contacts must be associated with the ticket's Company",
#: OFFICIAL TicketAdditionalContactsEntity.htm); contacts, locations, configuration items and
#: contracts all carry a required AccountID (getFieldInfo). Inferred for these fields, no public
#: source; a contract of a parent company is not modelled.
COMPANY_OWNED = {
    "contactID",
    "createdByContactID",
    "companyLocationID",
    "configurationItemID",
    "contractID",
}

#: The (resource, role) pairs a ticket may be assigned to: a service desk role of the resource
#: that is "associated with at least one Service Desk Queue" (OFFICIAL TicketsEntity.htm,
#: autotask-api.md §3). The queue need not be the ticket's: the documentation asks for one.
ASSIGNABLE_PAIRS = {
    (link["resourceID"], link["roleID"]) for link in RESOURCE_SERVICE_DESK_ROLES
} & {(link["resourceID"], link["roleID"]) for link in RESOURCE_ROLE_QUEUES}


def normalize(entity: str, body: Any, *, strict: bool) -> dict[str, Any]:
    """Map a request body's case-insensitive keys to REST properties.

    Autotask ignores properties it does not know (its JSON binder does); the sandbox refuses
    them (`strict`, the default) so a misspelt field is caught in tests, not silently dropped in
    production.
    """
    if not isinstance(body, dict):
        # invented wording: no public source
        raise SandboxError(f"The request body must be a {entity} object.")
    lookup = {prop.lower(): prop for prop in REST_PROPERTIES[entity]}
    found: dict[str, Any] = {}
    unknown = []
    for key, value in body.items():
        prop = lookup.get(str(key).lower())
        if prop is None:
            unknown.append(str(key))
        else:
            found[prop] = value
    if unknown and strict:
        names = ", ".join(sorted(unknown))
        # invented wording: no public source (real Autotask accepts the request)
        raise SandboxError(
            f"Unknown property {names} for entity {entity}"
            " (sandbox strict mode; real Autotask ignores unknown properties)."
        )
    return found


def coerce_values(entity: str, values: dict[str, Any], *, nulls_allowed: bool) -> dict[str, Any]:
    """Coerce the writable values given to their types and check lengths; read-only ones drop."""
    errors: list[str] = []
    clean: dict[str, Any] = {}
    kinds = REST_PROPERTIES[entity]
    for prop, value in values.items():
        if prop == "userDefinedFields":
            clean[prop] = _udfs(value, errors)
            continue
        if not is_writable(entity, prop):
            continue  # read-only fields are ignored, as Autotask does (autotask-api.md §13.4)
        if value is None:
            if not nulls_allowed:
                # Explicit nulls on create fail with HTTP 500 (autotask-api.md §3,
                # KelvinTegelaar/AutotaskAPI issue #26): clients must omit unset fields.
                # invented wording: no public source (the 500 is real, its text unknown)
                errors.append(f"Invalid value null for field {prop}; omit fields with no value.")
            clean[prop] = None
            continue
        try:
            coerced = coerce_value(prop, kinds[prop], value)
        except ValueError as e:
            # values.coerce_value's texts: invented wording: no public source
            errors.append(str(e))
            continue
        row = FIELD_ROWS[entity].get(prop)
        if row and row["length"] and isinstance(coerced, str):
            if utf16_length(coerced) > row["length"]:
                errors.append(length_error(prop))
                continue
        clean[prop] = coerced
    if errors:
        raise SandboxError(*errors)
    return clean


def _udfs(value: Any, errors: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(
        isinstance(u, dict) and isinstance(u.get("name"), str) for u in value
    ):
        # invented wording: no public source
        errors.append("userDefinedFields must be a list of {name, value} objects.")
        return []
    return [{"name": u["name"], "value": u.get("value")} for u in value]


def utf16_length(text: str) -> int:
    """The length Autotask measures: UTF-16 code units, as .NET strings and SQL Server nvarchar.

    A character outside the Basic Multilingual Plane (most emoji) counts twice. Inferred from the
    platform, unconfirmed (autotask-api.md §14). Counted by code point, so a lone surrogate (JSON
    allows "\\ud800") counts once instead of failing to encode.
    """
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


class RecordValidator:
    """Checks complete records against Autotask's rules and the tenant's, reading `state`."""

    def __init__(self, state: SandboxState, rules: TenantRules) -> None:
        self.state = state
        self.rules = rules

    def check(
        self,
        entity: str,
        record: dict[str, Any],
        *,
        given: set[str],
        before: dict[str, Any] | None = None,
    ) -> None:
        """Check a complete record: required fields, picklist members, references, tenant rules.

        `given` names the properties the request carried (on create, every property set);
        `before` is the stored record an update changes, None on create.
        """
        category = self._category_of(entity, record)
        errors = [
            required_error(prop)
            for prop in _required(entity, category)
            if record.get(prop) is None or record.get(prop) == ""
        ]
        for prop, values in PICKLISTS.get(entity, {}).items():
            value = record.get(prop)
            if value is None:
                continue
            allowed = {v["value"]: v for v in values if v["isActive"]}
            entry = allowed.get(str(value))
            if entry is None:
                # invented wording: no public source
                errors.append(f"Value {value} is not a valid picklist value for field {prop}.")
            elif entry["parentValue"] and entry["parentValue"] != str(record.get("issueType")):
                # invented wording: no public source
                errors.append(
                    f"Value {value} for field {prop} does not belong to"
                    f" issueType {record.get('issueType')}."
                )
        errors.extend(self._reference_errors(entity, record, given, before))
        if entity == "Tickets":
            errors.extend(_ticket_rules(record, given, before, category))
        if errors:
            raise SandboxError(*errors)

    def _category_of(self, entity: str, record: dict[str, Any]) -> ApiTicketCategory | None:
        """The configured API-only category if the ticket (or a note's ticket) is in it."""
        category = self.rules.api_ticket_category
        if category is None:
            return None
        ticket: dict[str, Any] | None = record
        if entity in PARENTS:
            parent, key = PARENTS[entity]
            ticket = self.state.get(parent, record[key]) if record.get(key) is not None else None
        if ticket is None:
            return None
        return category if ticket.get("ticketCategory") == category.id else None

    def _reference_errors(
        self,
        entity: str,
        record: dict[str, Any],
        given: set[str],
        before: dict[str, Any] | None,
    ) -> list[str]:
        """Refuse each given reference to a record that is missing, inactive or not the ticket's.

        Inactive contacts and resources are refused like missing ones (autotask-api.md §14,
        n8n-nodes-autotask inactive-entity handling). Moving a ticket to another company re-checks
        the records that must belong to it.
        """
        checked = set(given)
        if entity == "Tickets" and "companyID" in given:
            checked |= COMPANY_OWNED
        errors = []
        for prop, row in FIELD_ROWS[entity].items():
            entity_type = row["reference"]
            value = record.get(prop)
            if not entity_type or value is None or prop not in checked:
                continue
            if not is_writable(entity, prop):
                continue  # server-set references (creatorResourceID, …) are ignored if sent
            if not self._reference_fits(entity, prop, entity_type, value, record, before):
                errors.append(reference_error(prop, entity_type))
        return errors

    def _reference_fits(
        self,
        entity: str,
        prop: str,
        entity_type: str,
        value: int,
        record: dict[str, Any],
        before: dict[str, Any] | None,
    ) -> bool:
        if entity_type == "Account":
            company = self.state.get("Companies", value)
            if company is None:
                return False
            moved = before is None or before.get(prop) != value
            # A tenant may refuse new tickets for inactive companies; tickets they already have
            # can still be worked and completed. SandboxConfig.refuse_inactive_companies.
            return company["isActive"] or not (self.rules.refuse_inactive_companies and moved)
        if entity_type == "Ticket":
            return self.state.get("Tickets", value) is not None
        target = REFERENCE_RECORDS.get(entity_type, {}).get(value)
        if target is None:
            # Entity types the sandbox does not seed (Project, Opportunity, ContractService,
            # BusinessDivisionSubdivision, …) hold no record: every id is refused.
            return False
        if not is_active(entity_type, target):
            return False
        if entity == "Tickets" and prop in COMPANY_OWNED:
            return bool(target["companyID"] == record.get("companyID"))
        return True


def _required(entity: str, category: ApiTicketCategory | None) -> list[str]:
    required = [
        prop
        for prop, row in FIELD_ROWS[entity].items()
        if row["required"] and not row["read_only"] and prop != "id"
    ]
    if category is not None and entity == "Tickets":
        required += [prop for prop in category.required if prop not in required]
    if category is not None and entity == "TicketNotes" and category.note_title_required:
        required.append("title")
    return required


def _ticket_rules(
    record: dict[str, Any],
    given: set[str],
    before: dict[str, Any] | None,
    category: ApiTicketCategory | None,
) -> list[str]:
    errors = []
    resource, role = record.get("assignedResourceID"), record.get("assignedResourceRoleID")
    if (resource is None) != (role is None):
        # Reference: autotask-api.md §3 (WYRE-AI/msp-claude-plugins issue #32).
        errors.append(
            "When assigning a Resource, you must assign both a assignedResourceID"
            " and assignedResourceRoleID."
        )
    elif (
        resource is not None
        and role is not None
        and given & {"assignedResourceID", "assignedResourceRoleID"}
        and _seeded_and_active("Resource", resource)
        and _seeded_and_active("Role", role)
        and (resource, role) not in ASSIGNABLE_PAIRS
    ):
        # "A Resource + Role combination assigned to a ticket must be associated with at
        # least one Service Desk Queue" (OFFICIAL TicketsEntity.htm, autotask-api.md §3).
        # The real text for this case is not public; the role is the reference refused.
        errors.append(reference_error("assignedResourceRoleID", "Role"))
    completing = record.get("status") == STATUS_COMPLETE and (
        before is None or before.get("status") != STATUS_COMPLETE
    )
    if (
        category is not None
        and category.resolution_required_to_complete
        and completing
        and not str(record.get("resolution") or "").strip()
    ):
        # A ticket category can require a resolution before a ticket is completed (tenant
        # setting; autotask-api.md §3 calls it a category setting, UNCERTAIN).
        # invented wording: no public source (shaped like the cited required-field form)
        errors.append(required_error("resolution"))
    return errors


def _seeded_and_active(entity_type: str, record_id: int) -> bool:
    record = REFERENCE_RECORDS[entity_type].get(record_id)
    return record is not None and is_active(entity_type, record)
