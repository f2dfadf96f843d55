"""What a fresh sandbox holds: one API user, a few companies and the ticket picklists.

Picklist ids are tenant data in real Autotask; the ones here follow the values the reference could
confirm (status 1 New and 5 Complete, priority 1 High, queue 5 Client Portal, source 2 Insourced,
issue type 2 Hardware: ../shared/reference/autotask-api.md §6). Labels of the others are
illustrative; a connector must read them from `entityInformation/fields`, as it would in production.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

#: The status id Autotask uses for Complete. Reference: autotask-api.md §3 (Postman "not Complete").
STATUS_COMPLETE = 5

#: The sandbox's resource id for its API user (set as creatorResourceID on what it creates).
API_USER_RESOURCE_ID = 29682885


@dataclass(frozen=True)
class ApiUser:
    """The sandbox's one API-only user: username, secret and API tracking identifier."""

    username: str
    secret: str
    integration_code: str

    def __repr__(self) -> str:
        return f"ApiUser(username={self.username!r}, secret=<secret>, integration_code=<secret>)"


def make_api_user(username: str = "", secret: str = "", integration_code: str = "") -> ApiUser:
    """Return the API user, generating whatever was not preset."""
    alphabet = string.ascii_uppercase + string.digits
    return ApiUser(
        username=username or "alerts-api@sandbox.autotask.invalid",
        secret=secret or secrets.token_urlsafe(18),
        # Custom integrations get a 27-character identifier (autotask-api.md §2).
        integration_code=integration_code or "".join(secrets.choice(alphabet) for _ in range(27)),
    )


def _pick(value: int, label: str, order: int, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "value": str(value),
        "label": label,
        "isDefaultValue": False,
        "sortOrder": order,
        "parentValue": "",
        "isActive": True,
        "isSystem": False,
    }
    entry.update(extra)
    return entry


#: REST entity → {REST property: picklist values}; values are strings as the real API sends them.
PICKLISTS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "Tickets": {
        "status": [
            _pick(1, "New", 1, isDefaultValue=True, isSystem=True),
            _pick(5, "Complete", 2, isSystem=True),
            _pick(7, "Waiting Customer", 3),
            _pick(8, "In Progress", 4),
            _pick(9, "Waiting Materials", 5),
            _pick(10, "Scheduled", 6),
            _pick(11, "Escalate", 7),
            _pick(12, "Waiting Vendor", 8),
            _pick(13, "Acknowledged", 9),
            _pick(14, "Retired status", 10, isActive=False),
        ],
        "priority": [
            _pick(1, "High", 1),
            _pick(2, "Medium", 2, isDefaultValue=True),
            _pick(3, "Low", 3),
            _pick(4, "Critical", 4),
        ],
        "queueID": [
            _pick(5, "Client Portal", 1, isSystem=True),
            _pick(29682833, "Monitoring Alert", 2),
            _pick(29683481, "Level I Support", 3),
            _pick(29683482, "Level II Support", 4),
        ],
        "issueType": [
            _pick(2, "Hardware", 1),
            _pick(4, "Software", 2),
            _pick(12, "Network", 3),
            _pick(16, "Monitoring", 4),
        ],
        "subIssueType": [
            _pick(201, "Disk", 1, parentValue="2"),
            _pick(202, "Memory", 2, parentValue="2"),
            _pick(203, "CPU", 3, parentValue="2"),
            _pick(401, "Service stopped", 4, parentValue="4"),
            _pick(1201, "Link down", 5, parentValue="12"),
            _pick(1202, "Latency", 6, parentValue="12"),
            _pick(1601, "Threshold breached", 7, parentValue="16"),
            _pick(1602, "Check missing", 8, parentValue="16"),
        ],
        "ticketCategory": [
            _pick(2, "Standard", 1, isDefaultValue=True),
            _pick(3, "AEM Alert", 2, isSystem=True),
            _pick(4, "Monitoring Alert", 3),
            # An API-only category is hidden in the UI and used for tickets created through the
            # API (autotask.net help API_only_Ticket_Categories.htm; TicketCategoryModel has
            # isApiOnly). Its rules are off until set: SandboxConfig.api_ticket_category.
            _pick(5, "Alert Connector (API-only)", 4),
        ],
        "ticketType": [
            _pick(1, "Service Request", 1, isDefaultValue=True),
            _pick(2, "Incident", 2),
            _pick(3, "Problem", 3),
            _pick(4, "Change Request", 4),
            _pick(5, "Alert", 5),
        ],
        "source": [
            _pick(2, "Insourced", 1),
            _pick(4, "Phone", 2),
            _pick(6, "Email", 3),
            _pick(8, "Monitoring Alert", 4),
            _pick(-1, "Client Portal", 5, isSystem=True),
        ],
        "serviceLevelAgreementID": [_pick(1, "Standard SLA", 1)],
        "monitorTypeID": [_pick(1, "Online Status Monitor", 1), _pick(2, "Threshold Monitor", 2)],
    },
    "TicketNotes": {
        "noteType": [
            _pick(1, "Task Summary", 1, isDefaultValue=True),
            _pick(2, "Task Detail", 2),
            _pick(3, "Task Notes", 3),
        ],
        "publish": [
            _pick(1, "All Autotask Users", 1, isDefaultValue=True),
            _pick(2, "Internal Project Team", 2),
        ],
    },
    "Companies": {
        "companyType": [
            _pick(1, "Customer", 1, isDefaultValue=True),
            _pick(3, "Prospect", 2),
            _pick(7, "Vendor", 3),
        ],
    },
}


def seed_companies() -> list[dict[str, Any]]:
    """Return the seeded companies; id 0 is the MSP's own company, as in real tenants."""
    rows = [
        (0, "Sandbox MSP", "0", 1, True),
        (29683414, "Contoso Ltd", "CONTOSO", 1, True),
        (29683415, "Fabrikam Inc", "FABRIKAM", 1, True),
        (29683416, "Northwind Traders", "NORTHWIND", 1, True),
        (29683417, "Adventure Works (inactive)", "ADVWORKS", 3, False),
    ]
    return [
        {
            "id": company_id,
            "companyName": name,
            "companyNumber": number,
            "companyType": company_type,
            "isActive": active,
            "phone": "+1 555 0100",
            "ownerResourceID": API_USER_RESOURCE_ID,
            "userDefinedFields": [],
        }
        for company_id, name, number, company_type, active in rows
    ]


# -- reference records ---------------------------------------------------------------------------
#
# Tickets point at these through reference fields. They are keyed by the reference entity type
# getFieldInfo gives each field (Ticket.ContactID → "Contact", AllocationCodeID → "AllocationCode",
# …), because that is the type Autotask's reference error names (autotask-api.md §14). Records use
# the REST property names of the Swagger models (ContactModel, CompanyLocationModel, …). Ids are
# in the range real tenants use; an inactive record says so in its name. Companies are seeded in
# the state (seed_companies), since the REST API serves them.

#: Contacts (ContactModel; isActive is an int32 there): each belongs to one seeded company.
CONTACTS: list[dict[str, Any]] = [
    {"id": 29683601, "companyID": 29683414, "firstName": "Megan", "lastName": "Bowen"},
    {"id": 29683602, "companyID": 29683414, "firstName": "Alex", "lastName": "Wilber (inactive)"},
    {"id": 29683603, "companyID": 29683415, "firstName": "Diego", "lastName": "Siciliani"},
    {"id": 29683604, "companyID": 29683416, "firstName": "Lynne", "lastName": "Robbins"},
    {"id": 29683605, "companyID": 0, "firstName": "Service", "lastName": "Desk"},
]

#: Company locations (CompanyLocationModel; SOAP AccountPhysicalLocation).
COMPANY_LOCATIONS: list[dict[str, Any]] = [
    {"id": 29683701, "companyID": 29683414, "name": "Headquarters", "isPrimary": True},
    {"id": 29683702, "companyID": 29683414, "name": "Old warehouse (inactive)", "isPrimary": False},
    {"id": 29683703, "companyID": 29683415, "name": "Headquarters", "isPrimary": True},
    {"id": 29683704, "companyID": 29683416, "name": "Headquarters", "isPrimary": True},
    {"id": 29683705, "companyID": 0, "name": "Main office", "isPrimary": True},
]

#: Configuration items (ConfigurationItemModel; SOAP InstalledProduct), one company each.
CONFIGURATION_ITEMS: list[dict[str, Any]] = [
    {"id": 29683801, "companyID": 29683414, "referenceTitle": "srv01"},
    {"id": 29683802, "companyID": 29683414, "referenceTitle": "srv-legacy (inactive)"},
    {"id": 29683803, "companyID": 29683415, "referenceTitle": "fw01"},
    {"id": 29683804, "companyID": 29683416, "referenceTitle": "nas01"},
]

#: Contracts (ContractModel). A contract is active when its status is 1 (illustrative picklist
#: value: the tenant's Contract status picklist is not in the specs).
CONTRACTS: list[dict[str, Any]] = [
    {"id": 29683901, "companyID": 29683414, "contractName": "Contoso Managed Services"},
    {"id": 29683902, "companyID": 29683414, "contractName": "Contoso Block Hours (inactive)"},
    {"id": 29683903, "companyID": 29683415, "contractName": "Fabrikam Managed Services"},
    {"id": 29683904, "companyID": 29683416, "contractName": "Northwind Time and Materials"},
]

#: The billing code use type of work types: "an active AllocationCode with a UseType value = 1
#: (that is, a work type)" (OFFICIAL ContractExclusionSetExcludedWorkTypeEntity.htm).
WORK_TYPE_USE_TYPE = 1

#: Work types: the billing codes a ticket's billingCodeID takes (BillingCodeModel; SOAP
#: AllocationCode). 29682801 and 29682805 are the work types the connector's tests configure.
BILLING_CODES: list[dict[str, Any]] = [
    {"id": 29682801, "name": "Remote Support", "useType": WORK_TYPE_USE_TYPE},
    {"id": 29682802, "name": "On-site Support", "useType": WORK_TYPE_USE_TYPE},
    {"id": 29682805, "name": "Storage and Backup", "useType": WORK_TYPE_USE_TYPE},
    {"id": 29682809, "name": "Legacy Support (inactive)", "useType": WORK_TYPE_USE_TYPE},
]

#: Billing codes that are no work type, so a ticket cannot take them: served by BillingCodes
#: queries only. There are six kinds (work types, material, internal time, expense categories,
#: recurring contract service, milestone: OFFICIAL BillingCodesEntity.htm); only use type 1 is
#: confirmed, so this material code's use type 3 is illustrative.
OTHER_BILLING_CODES: list[dict[str, Any]] = [
    {"id": 29682811, "name": "Hardware (material)", "useType": 3},
]


def seed_billing_codes() -> list[dict[str, Any]]:
    """The billing codes BillingCodes queries answer: the work types and the other codes."""
    return [
        _activity("AllocationCode", record) for record in (*BILLING_CODES, *OTHER_BILLING_CODES)
    ]


#: Resources (ResourceModel). The API user is a resource too, but has no service desk role, so a
#: ticket cannot be assigned to it.
RESOURCES: list[dict[str, Any]] = [
    {"id": API_USER_RESOURCE_ID, "firstName": "Alerts", "lastName": "API (API-only user)"},
    {"id": 29682886, "firstName": "Pat", "lastName": "Rivera"},
    {"id": 29682887, "firstName": "Sam", "lastName": "Chen"},
    {"id": 29682888, "firstName": "Jordan", "lastName": "Blake (inactive)"},
]

#: Roles (RoleModel).
ROLES: list[dict[str, Any]] = [
    {"id": 29682803, "name": "Technician"},
    {"id": 29682804, "name": "Engineer"},
    {"id": 29682806, "name": "Project Manager"},
    {"id": 29682807, "name": "Dispatcher (inactive)"},
]

#: The service desk roles a resource may work tickets in (ResourceServiceDeskRoleModel).
RESOURCE_SERVICE_DESK_ROLES: list[dict[str, Any]] = [
    {"resourceID": 29682886, "roleID": 29682803, "isDefault": True},
    {"resourceID": 29682886, "roleID": 29682806, "isDefault": False},  # in no queue, see below
    {"resourceID": 29682887, "roleID": 29682804, "isDefault": True},
    {"resourceID": 29682887, "roleID": 29682803, "isDefault": False},
    {"resourceID": 29682888, "roleID": 29682803, "isDefault": True},
]

#: Queue membership per resource and role (SOAP ResourceRoleQueue: ResourceID, RoleID, QueueID).
RESOURCE_ROLE_QUEUES: list[dict[str, Any]] = [
    {"resourceID": 29682886, "roleID": 29682803, "queueID": 29682833},
    {"resourceID": 29682886, "roleID": 29682803, "queueID": 29683481},
    {"resourceID": 29682887, "roleID": 29682804, "queueID": 29683482},
    {"resourceID": 29682887, "roleID": 29682803, "queueID": 29682833},
    {"resourceID": 29682888, "roleID": 29682803, "queueID": 29682833},
]


def _is_inactive(record: dict[str, Any]) -> bool:
    names = (record.get(key) for key in ("name", "lastName", "referenceTitle", "contractName"))
    return any(isinstance(name, str) and name.endswith("(inactive)") for name in names)


def _activity(entity_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record with its model's activity flag set from the "(inactive)" in its name."""
    active = not _is_inactive(record)
    if entity_type == "Contact":
        return record | {"isActive": int(active)}  # an int32 in ContactModel
    if entity_type == "Contract":
        return record | {"status": 1 if active else 0}
    return record | {"isActive": active}


#: getFieldInfo reference entity type → {id: record}; read-only for the life of the process.
REFERENCE_RECORDS: dict[str, dict[int, dict[str, Any]]] = {
    entity_type: {record["id"]: _activity(entity_type, record) for record in records}
    for entity_type, records in (
        ("Contact", CONTACTS),
        ("AccountPhysicalLocation", COMPANY_LOCATIONS),
        ("InstalledProduct", CONFIGURATION_ITEMS),
        ("Contract", CONTRACTS),
        ("AllocationCode", BILLING_CODES),
        ("Resource", RESOURCES),
        ("Role", ROLES),
    )
}


def is_active(entity_type: str, record: dict[str, Any]) -> bool:
    """Whether a seeded reference record (or a company) is active."""
    if entity_type == "Contract":
        return bool(record.get("status") == 1)
    return bool(record.get("isActive"))
