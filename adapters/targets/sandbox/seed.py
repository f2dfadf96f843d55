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
