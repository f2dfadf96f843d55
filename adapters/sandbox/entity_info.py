"""What the sandbox knows and tells about its entities: which ones and which fields a client may
write, child-parent links, and the entityInformation and field definitions both faces answer."""

from __future__ import annotations

from typing import Any

from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from adapters.sandbox.permissions import SecurityLevel
from adapters.sandbox.query import SINGULAR
from adapters.sandbox.seed import PICKLISTS

#: REST entity → the entity a child record belongs to, and the property holding the parent id.
PARENTS = {"TicketNotes": ("Tickets", "ticketID")}

#: Entities the sandbox can create and update; Companies and BillingCodes are seeded and
#: read-only here.
WRITABLE = {"Tickets", "TicketNotes"}


def _field_rows(entity: str) -> dict[str, dict[str, Any]]:
    return {str(row["rest_name"]): row for row in FIELD_INFO[entity] if row["rest_name"]}


#: REST entity → {REST property: its getFieldInfo row}.
FIELD_ROWS = {entity: _field_rows(entity) for entity in REST_PROPERTIES}

#: Fields a client may not set even though getFieldInfo calls them writable.
SERVER_OWNED = {"id", "userDefinedFields"}


def is_writable(entity: str, prop: str) -> bool:
    """Whether a client may set the property (read-only and server-owned ones are ignored)."""
    row = FIELD_ROWS[entity].get(prop)
    return prop not in SERVER_OWNED and (row is None or not row["read_only"])


def field_definitions(entity: str) -> list[dict[str, Any]]:
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


def entity_information(entity: str, security: SecurityLevel | None = None) -> dict[str, Any]:
    """Return `entityInformation` for the entity, as the API user's security level sees it.

    `can…` say what the API allows on the entity at all, `userAccessFor…` what this API user
    may do ("All" or "None", the values the real getFieldInfo cache holds). Whether Autotask
    computes userAccessFor… from the logged-in resource, as the name says, is unconfirmed;
    the sandbox does, and over SOAP (whose EntityInfo has no userAccess) it folds the same
    answer into Can….
    """
    security = security or SecurityLevel()
    writable = entity in WRITABLE

    def access(allowed: bool, action: str) -> str:
        return "All" if allowed and security.allows(entity, action) else "None"

    return {
        "name": SINGULAR[entity],
        "canCreate": writable,
        "canDelete": False,
        "canQuery": True,
        "canUpdate": writable,
        "userAccessForCreate": access(writable, "create"),
        "userAccessForDelete": "None",
        "userAccessForQuery": access(True, "query"),
        "userAccessForUpdate": access(writable, "update"),
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


def _rest_name(entity: str, soap_name: str) -> str:
    for row in FIELD_INFO[entity]:
        if row["name"] == soap_name:
            return str(row["rest_name"])
    return ""
