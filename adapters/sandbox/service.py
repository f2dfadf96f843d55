"""Entity operations shared by the sandbox's REST and SOAP faces: validate, store, read, query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from adapters.sandbox.errors import (
    SandboxError,
    length_error,
    reference_error,
    required_error,
)
from adapters.sandbox.query import Group, matches
from adapters.sandbox.seed import (
    API_USER_RESOURCE_ID,
    PICKLISTS,
    REFERENCE_RECORDS,
    RESOURCE_ROLE_QUEUES,
    RESOURCE_SERVICE_DESK_ROLES,
    STATUS_COMPLETE,
    is_active,
)
from adapters.sandbox.state import SandboxState
from adapters.sandbox.tenant import ApiTicketCategory, TenantRules
from adapters.sandbox.values import coerce_value, format_datetime

#: REST entity → the entity a child record belongs to, and the property holding the parent id.
PARENTS = {"TicketNotes": ("Tickets", "ticketID")}

#: Entities the sandbox can create and update; Companies are seeded and read-only here.
WRITABLE = {"Tickets", "TicketNotes"}

#: Autotask returns at most 500 records per page. Reference: autotask-api.md §4 (paging).
MAX_PAGE = 500


def _field_rows(entity: str) -> dict[str, dict[str, Any]]:
    return {str(row["rest_name"]): row for row in FIELD_INFO[entity] if row["rest_name"]}


FIELD_ROWS = {entity: _field_rows(entity) for entity in REST_PROPERTIES}

#: Fields a client may not set even though getFieldInfo calls them writable.
SERVER_OWNED = {"id", "userDefinedFields"}

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


class SandboxService:
    """Validates and applies creates, updates and queries the way Autotask does."""

    def __init__(
        self,
        state: SandboxState,
        *,
        strict_properties: bool = True,
        clock: Callable[[], datetime] | None = None,
        rules: TenantRules | None = None,
    ) -> None:
        self.state = state
        self.strict_properties = strict_properties
        self.rules = rules or TenantRules()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._ticket_numbers: dict[str, int] = {}

    # -- input ---------------------------------------------------------------------------------

    def normalize(self, entity: str, body: Any) -> dict[str, Any]:
        """Map a request body's case-insensitive keys to REST properties.

        Autotask ignores properties it does not know (its JSON binder does); the sandbox refuses
        them by default so a misspelt field is caught in tests, not silently dropped in production.
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
        if unknown and self.strict_properties:
            names = ", ".join(sorted(unknown))
            # invented wording: no public source (real Autotask accepts the request)
            raise SandboxError(
                f"Unknown property {names} for entity {entity}"
                " (sandbox strict mode; real Autotask ignores unknown properties)."
            )
        return found

    def _writable(self, entity: str, prop: str) -> bool:
        row = FIELD_ROWS[entity].get(prop)
        return prop not in SERVER_OWNED and (row is None or not row["read_only"])

    def _coerce(
        self, entity: str, values: dict[str, Any], *, nulls_allowed: bool
    ) -> dict[str, Any]:
        """Validate types, lengths, picklists and references of the writable values given."""
        errors: list[str] = []
        clean: dict[str, Any] = {}
        kinds = REST_PROPERTIES[entity]
        for prop, value in values.items():
            if prop == "userDefinedFields":
                clean[prop] = self._udfs(value, errors)
                continue
            if not self._writable(entity, prop):
                continue  # read-only fields are ignored, as Autotask does (autotask-api.md §13.4)
            if value is None:
                if not nulls_allowed:
                    # Explicit nulls on create fail with HTTP 500 (autotask-api.md §3,
                    # KelvinTegelaar/AutotaskAPI issue #26): clients must omit unset fields.
                    # invented wording: no public source (the 500 is real, its text unknown)
                    errors.append(
                        f"Invalid value null for field {prop}; omit fields with no value."
                    )
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

    @staticmethod
    def _udfs(value: Any, errors: list[str]) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(
            isinstance(u, dict) and isinstance(u.get("name"), str) for u in value
        ):
            # invented wording: no public source
            errors.append("userDefinedFields must be a list of {name, value} objects.")
            return []
        return [{"name": u["name"], "value": u.get("value")} for u in value]

    def _check_record(
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
            for prop in self._required(entity, category)
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
            errors.extend(self._ticket_rules(record, given, before, category))
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

    def _required(self, entity: str, category: ApiTicketCategory | None) -> list[str]:
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
            if not self._writable(entity, prop):
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

    def _ticket_rules(
        self,
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

    # -- writes --------------------------------------------------------------------------------

    def create(self, entity: str, values: dict[str, Any], *, parent_id: int | None = None) -> int:
        """Create a record from REST-named values and return its new id."""
        self._check_writable(entity)
        if values.get("id") not in (None, 0):
            # invented wording: no public source
            raise SandboxError(f"A new {entity} record cannot carry an id ({values['id']}).")
        values = {k: v for k, v in values.items() if k != "id"}
        values = self._with_parent(entity, values, parent_id)
        if entity == "Tickets":
            values = self._with_category_defaults(values)
        clean = self._coerce(entity, values, nulls_allowed=False)
        record: dict[str, Any] = dict.fromkeys(REST_PROPERTIES[entity])
        record["userDefinedFields"] = []
        record.update(clean)
        self._check_record(entity, record, given={k for k, v in record.items() if v is not None})
        with self.state.lock:
            now = self.clock()
            self._stamp_create(entity, record, now)
            new_id = self.state.insert(entity, record)
            self._touch_parent(entity, record, now)
            return new_id

    def update(
        self,
        entity: str,
        values: dict[str, Any],
        *,
        replace: bool,
        parent_id: int | None = None,
    ) -> int:
        """PATCH (`replace=False`: only the values given change) or PUT (every writable field)."""
        self._check_writable(entity)
        record_id = values.get("id")
        if record_id is None:
            # invented wording: no public source
            raise SandboxError(f"The {entity} update needs the id of the record to change.")
        try:
            record_id = int(record_id)
        except (TypeError, ValueError) as e:
            # invented wording: no public source
            raise SandboxError(f"Invalid value {record_id!r} for field id.") from e
        values = self._with_parent(entity, values, parent_id)
        with self.state.lock:
            current = self.state.get(entity, record_id)
            if current is None or (
                parent_id is not None and current.get(PARENTS[entity][1]) != parent_id
            ):
                # "No matching records found" is real (django-autotask reads it, autotask-api.md
                # §7); the rest of the sentence is the sandbox's.
                raise SandboxError(f"No matching records found for {entity} id {record_id}.")
            changes = {k: v for k, v in values.items() if k != "id"}
            given = set(changes)
            if replace:
                # PUT nulls every writable field it does not carry. Reference: autotask-api.md §4.
                blank = {p: None for p in REST_PROPERTIES[entity] if self._writable(entity, p)}
                changes = blank | changes
            clean = self._coerce(entity, changes, nulls_allowed=True)
            record = current | clean
            self._check_record(entity, record, given=given, before=current)
            self._stamp_update(entity, current, record, self.clock())
            self.state.replace(entity, record)
            self._touch_parent(entity, record, self.clock())
            return record_id

    def _with_category_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """Put a new ticket in the API-only category, if one is set, and apply its defaults.

        API-only categories are "only used when … tickets … are created via the API" and set
        "the default value, and the Required setting of fields" (autotask.net help
        API_only_Ticket_Categories.htm, autotask-api.md §14). A ticket created without a category
        gets it, as from the API user's default ticket category (resources have one, same page);
        that is inferred: how a tenant attaches the category to its API user is not public.
        """
        category = self.rules.api_ticket_category
        if category is None:
            return values
        values = {"ticketCategory": category.id} | values
        if str(values["ticketCategory"]) != str(category.id):
            return values  # the client chose another category: its rules do not apply
        return category.defaults | values

    def _check_writable(self, entity: str) -> None:
        if entity not in WRITABLE:
            # invented wording: no public source
            raise SandboxError(f"The sandbox does not create or update {entity}.")

    @staticmethod
    def _with_parent(entity: str, values: dict[str, Any], parent_id: int | None) -> dict[str, Any]:
        if parent_id is None or entity not in PARENTS:
            return values
        key = PARENTS[entity][1]
        given = values.get(key)
        if given is not None and str(given) != str(parent_id):
            # invented wording: no public source
            raise SandboxError(
                f"{key} {given} does not match the parent id {parent_id} in the URL."
            )
        return values | {key: parent_id}

    def _stamp_create(self, entity: str, record: dict[str, Any], now: datetime) -> None:
        stamp = format_datetime(now)
        record["creatorResourceID"] = API_USER_RESOURCE_ID
        record["lastActivityDate"] = stamp
        if entity == "Tickets":
            record["createDate"] = stamp
            record["creatorType"] = 1
            record["lastTrackedModificationDateTime"] = stamp
            record["ticketNumber"] = self._next_ticket_number(now)
            if record.get("status") == STATUS_COMPLETE:
                record["completedDate"] = stamp
        elif entity == "TicketNotes":
            record["createDateTime"] = stamp

    def _stamp_update(
        self, entity: str, before: dict[str, Any], record: dict[str, Any], now: datetime
    ) -> None:
        stamp = format_datetime(now)
        record["lastActivityDate"] = stamp
        if entity != "Tickets":
            return
        record["lastTrackedModificationDateTime"] = stamp
        # Autotask sets completedDate itself when a ticket reaches Complete (read-only field,
        # autotask-api.md §3) and clears it when the ticket is reopened.
        if record.get("status") == STATUS_COMPLETE and before.get("status") != STATUS_COMPLETE:
            record["completedDate"] = stamp
        elif record.get("status") != STATUS_COMPLETE:
            record["completedDate"] = None

    def _touch_parent(self, entity: str, record: dict[str, Any], now: datetime) -> None:
        if entity not in PARENTS:
            return
        parent, key = PARENTS[entity]
        parent_record = self.state.get(parent, record[key])
        if parent_record is not None:
            parent_record["lastActivityDate"] = format_datetime(now)
            self.state.replace(parent, parent_record)

    def _next_ticket_number(self, now: datetime) -> str:
        """Ticket numbers look like T20180724.0001 (trepidity/autotask_ruby query fixture)."""
        day = now.strftime("%Y%m%d")
        if day not in self._ticket_numbers:
            # Continue after the tickets a state file already holds for the day.
            prefix = f"T{day}."
            self._ticket_numbers[day] = max(
                (
                    int(number.removeprefix(prefix))
                    for ticket in self.state.all("Tickets")
                    if isinstance(number := ticket.get("ticketNumber"), str)
                    and number.startswith(prefix)
                    and number.removeprefix(prefix).isdigit()
                ),
                default=0,
            )
        self._ticket_numbers[day] += 1
        return f"T{day}.{self._ticket_numbers[day]:04d}"

    # -- reads ---------------------------------------------------------------------------------

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        """Return one record with every model property (null where unset), or None."""
        record = self.state.get(entity, record_id)
        return self._full(entity, record) if record is not None else None

    @staticmethod
    def _full(entity: str, record: dict[str, Any]) -> dict[str, Any]:
        full = dict.fromkeys(REST_PROPERTIES[entity])
        full.update({k: v for k, v in record.items() if k in full})
        if "userDefinedFields" in full and full["userDefinedFields"] is None:
            full["userDefinedFields"] = []
        return full

    def query(
        self,
        entity: str,
        tree: Group,
        *,
        max_records: int = MAX_PAGE,
        after_id: int = -1,
        parent_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of matching records ordered by id, and whether more follow."""
        found = [
            self._full(entity, record)
            for record in self.state.all(entity)
            if record["id"] > after_id
            and (parent_id is None or record.get(PARENTS[entity][1]) == parent_id)
            and matches(record, tree)
        ]
        return found[:max_records], len(found) > max_records

    def count(self, entity: str, tree: Group) -> int:
        """Return how many records match."""
        return sum(1 for record in self.state.all(entity) if matches(record, tree))

    def field_definitions(self, entity: str) -> list[dict[str, Any]]:
        """Return `entityInformation/fields` rows with picklist values (strings, as Autotask)."""
        picklists = PICKLISTS.get(entity, {})
        fields = []
        for row in FIELD_INFO[entity]:
            prop = row["rest_name"]
            if not prop:
                continue
            kind = REST_PROPERTIES[entity][prop]
            fields.append(
                {
                    "name": prop,
                    "dataType": _DATA_TYPES.get(kind, "string"),
                    "length": row["length"],
                    "isRequired": row["required"],
                    "isReadOnly": row["read_only"],
                    "isQueryable": row["queryable"],
                    "isReference": bool(row["reference"]),
                    "referenceEntityType": row["reference"],
                    "isPickList": row["picklist"],
                    "picklistValues": [dict(v) for v in picklists.get(prop, [])]
                    if row["picklist"]
                    else None,
                    "picklistParentValueField": _rest_name(entity, row["picklist_parent"]),
                    "isSupportedWebhookField": False,
                }
            )
        return fields

    @staticmethod
    def entity_information(entity: str) -> dict[str, Any]:
        """Return `entityInformation` for the entity."""
        writable = entity in WRITABLE
        return {
            "name": _SINGULAR[entity],
            "canCreate": writable,
            "canDelete": False,
            "canQuery": True,
            "canUpdate": writable,
            "userAccessForCreate": "All" if writable else "None",
            "userAccessForDelete": "None",
            "userAccessForQuery": "All",
            "userAccessForUpdate": "All" if writable else "None",
            "hasUserDefinedFields": "userDefinedFields" in REST_PROPERTIES[entity],
            "supportsWebhookCallouts": entity != "TicketNotes",
        }


def utf16_length(text: str) -> int:
    """The length Autotask measures: UTF-16 code units, as .NET strings and SQL Server nvarchar.

    A character outside the Basic Multilingual Plane (most emoji) counts twice. Inferred from the
    platform, unconfirmed (autotask-api.md §14). Counted by code point, so a lone surrogate (JSON
    allows "\\ud800") counts once instead of failing to encode.
    """
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _seeded_and_active(entity_type: str, record_id: int) -> bool:
    record = REFERENCE_RECORDS[entity_type].get(record_id)
    return record is not None and is_active(entity_type, record)


_DATA_TYPES = {
    "int32": "integer",
    "int64": "long",
    "double": "double",
    "boolean": "boolean",
    "string": "string",
    "date-time": "datetime",
}

_SINGULAR = {"Tickets": "Ticket", "TicketNotes": "TicketNote", "Companies": "Company"}


def _rest_name(entity: str, soap_name: str) -> str:
    for row in FIELD_INFO[entity]:
        if row["name"] == soap_name:
            return str(row["rest_name"])
    return ""
