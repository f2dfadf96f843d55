"""Entity operations shared by the sandbox's REST and SOAP faces: validate, store, read, query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.targets.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from adapters.targets.sandbox.errors import SandboxError
from adapters.targets.sandbox.query import Group, matches
from adapters.targets.sandbox.seed import API_USER_RESOURCE_ID, PICKLISTS, STATUS_COMPLETE
from adapters.targets.sandbox.state import SandboxState
from adapters.targets.sandbox.values import coerce_value, format_datetime

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


class SandboxService:
    """Validates and applies creates, updates and queries the way Autotask does."""

    def __init__(
        self,
        state: SandboxState,
        *,
        strict_properties: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.state = state
        self.strict_properties = strict_properties
        self.clock = clock or (lambda: datetime.now(UTC))
        self._ticket_numbers: dict[str, int] = {}

    # -- input ---------------------------------------------------------------------------------

    def normalize(self, entity: str, body: Any) -> dict[str, Any]:
        """Map a request body's case-insensitive keys to REST properties.

        Autotask ignores properties it does not know (its JSON binder does); the sandbox refuses
        them by default so a misspelt field is caught in tests, not silently dropped in production.
        """
        if not isinstance(body, dict):
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
            raise SandboxError(
                f"Unknown property {names} for entity {entity}"
                " (sandbox strict mode; real Autotask ignores unknown properties)."
            )
        return found

    def _writable(self, entity: str, prop: str) -> bool:
        row = FIELD_ROWS[entity].get(prop)
        return prop not in SERVER_OWNED and (row is None or not row["read_only"])

    def _required(self, entity: str) -> list[str]:
        return [
            prop
            for prop, row in FIELD_ROWS[entity].items()
            if row["required"] and not row["read_only"] and prop != "id"
        ]

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
                    errors.append(
                        f"Invalid value null for field {prop}; omit fields with no value."
                    )
                clean[prop] = None
                continue
            try:
                coerced = coerce_value(prop, kinds[prop], value)
            except ValueError as e:
                errors.append(str(e))
                continue
            row = FIELD_ROWS[entity].get(prop)
            if row and row["length"] and isinstance(coerced, str) and len(coerced) > row["length"]:
                errors.append(
                    f"Value for field {prop} is {len(coerced)} characters long;"
                    f" the maximum length is {row['length']}."
                )
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
            errors.append("userDefinedFields must be a list of {name, value} objects.")
            return []
        return [{"name": u["name"], "value": u.get("value")} for u in value]

    def _check_record(self, entity: str, record: dict[str, Any]) -> None:
        """Check a complete record: required fields, picklist members, references."""
        errors = [
            f"Missing Required Field: {prop}."
            for prop in self._required(entity)
            if record.get(prop) is None or record.get(prop) == ""
        ]
        for prop, values in PICKLISTS.get(entity, {}).items():
            value = record.get(prop)
            if value is None:
                continue
            allowed = {v["value"]: v for v in values if v["isActive"]}
            entry = allowed.get(str(value))
            if entry is None:
                errors.append(f"Value {value} is not a valid picklist value for field {prop}.")
            elif entry["parentValue"] and entry["parentValue"] != str(record.get("issueType")):
                errors.append(
                    f"Value {value} for field {prop} does not belong to"
                    f" issueType {record.get('issueType')}."
                )
        if entity == "Tickets":
            errors.extend(self._ticket_rules(record))
        if entity in PARENTS:
            parent, key = PARENTS[entity]
            if record.get(key) is not None and self.state.get(parent, record[key]) is None:
                errors.append(f"Value does not reference an existing entity for {key} .")
        if errors:
            raise SandboxError(*errors)

    def _ticket_rules(self, record: dict[str, Any]) -> list[str]:
        errors = []
        company = record.get("companyID")
        if company is not None and self.state.get("Companies", company) is None:
            # Wording of a real reference error. Reference: autotask-api.md §7 (autotask-mcp #46).
            errors.append("Value does not reference an existing entity for companyID . ")
        if (record.get("assignedResourceID") is None) != (
            record.get("assignedResourceRoleID") is None
        ):
            # Reference: autotask-api.md §3 (WYRE-AI/msp-claude-plugins issue #32).
            errors.append(
                "When assigning a Resource, you must assign both a assignedResourceID"
                " and assignedResourceRoleID."
            )
        return errors

    # -- writes --------------------------------------------------------------------------------

    def create(self, entity: str, values: dict[str, Any], *, parent_id: int | None = None) -> int:
        """Create a record from REST-named values and return its new id."""
        self._check_writable(entity)
        if values.get("id") not in (None, 0):
            raise SandboxError(f"A new {entity} record cannot carry an id ({values['id']}).")
        values = {k: v for k, v in values.items() if k != "id"}
        values = self._with_parent(entity, values, parent_id)
        clean = self._coerce(entity, values, nulls_allowed=False)
        record: dict[str, Any] = dict.fromkeys(REST_PROPERTIES[entity])
        record["userDefinedFields"] = []
        record.update(clean)
        self._check_record(entity, record)
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
            raise SandboxError(f"The {entity} update needs the id of the record to change.")
        try:
            record_id = int(record_id)
        except (TypeError, ValueError) as e:
            raise SandboxError(f"Invalid value {record_id!r} for field id.") from e
        values = self._with_parent(entity, values, parent_id)
        with self.state.lock:
            current = self.state.get(entity, record_id)
            if current is None or (
                parent_id is not None and current.get(PARENTS[entity][1]) != parent_id
            ):
                raise SandboxError(f"No matching records found for {entity} id {record_id}.")
            changes = {k: v for k, v in values.items() if k != "id"}
            if replace:
                # PUT nulls every writable field it does not carry. Reference: autotask-api.md §4.
                blank = {p: None for p in REST_PROPERTIES[entity] if self._writable(entity, p)}
                changes = blank | changes
            clean = self._coerce(entity, changes, nulls_allowed=True)
            record = current | clean
            self._check_record(entity, record)
            self._stamp_update(entity, current, record, self.clock())
            self.state.replace(entity, record)
            self._touch_parent(entity, record, self.clock())
            return record_id

    def _check_writable(self, entity: str) -> None:
        if entity not in WRITABLE:
            raise SandboxError(f"The sandbox does not create or update {entity}.")

    @staticmethod
    def _with_parent(entity: str, values: dict[str, Any], parent_id: int | None) -> dict[str, Any]:
        if parent_id is None or entity not in PARENTS:
            return values
        key = PARENTS[entity][1]
        given = values.get(key)
        if given is not None and str(given) != str(parent_id):
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
