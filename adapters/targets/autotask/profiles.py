"""Autotask's REST and SOAP flavours as the core sees them (`connector.ports.TargetProfile`).

Every fact here is Autotask's: field limits, where a create's answer carries the id, the zone
addresses, the credential headers, the default requests and how calls count against the
per-endpoint thread limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from connector.domain import AlertStatus, OutboundRequest, RequestAction
from connector.ports import TargetProfile

#: Ticket field limits (getFieldInfo: Title 255, Description 8000, Resolution 32000 —
#: autotask-api.md §3). Keys match JSON members case-insensitively and XML element local names.
TICKET_LIMITS: Mapping[str, int] = {"title": 255, "description": 8000, "resolution": 32000}
#: TicketNote field limits (getFieldInfo: Title 250, Description 32000 — autotask-api.md §5).
NOTE_LIMITS: Mapping[str, int] = {"title": 250, "description": 32000}

#: Where a REST create answer carries the new entity's id (autotask-api.md §1).
REST_ID_PATH = "$.itemId"
#: Where a SOAP createResponse carries the new entity's id (autotask-api.md §10).
SOAP_ID_PATH = "//ATWS:EntityResults/ATWS:Entity/ATWS:id"
ATWS_NAMESPACES: Mapping[str, str] = {"ATWS": "http://autotask.net/ATWS/v1_6/"}

#: A zone address per flavour for save-time checks of URLs and for previews (the real one is
#: looked up at delivery time).
REST_SAMPLE_ZONE_URL = "https://webservices2.autotask.net/ATServicesRest/V1.0/"
SOAP_SAMPLE_ZONE_URL = "https://webservices2.autotask.net/ATServices/1.6/atws.asmx"

#: Headers the adapters set themselves: Autotask's credentials and the SOAP action.
TARGET_HEADERS = ("ApiIntegrationCode", "UserName", "Secret", "Authorization", "SOAPAction")

#: Autotask's REST and SOAP 1.6 calls for tickets and ticket notes (autotask-api.md §3, §5,
#: §10). An entry for an action serves every status without an entry of its own.
REST_REQUESTS: Mapping[RequestAction | tuple[AlertStatus, RequestAction], tuple[str, str, str]] = {
    RequestAction.CREATE: ("POST", "##ZONEURL##Tickets", "rest/active.json"),
    RequestAction.UPDATE: ("PATCH", "##ZONEURL##Tickets", "rest/status.json"),
    (AlertStatus.CLEARED, RequestAction.UPDATE): (
        "PATCH",
        "##ZONEURL##Tickets",
        "rest/complete.json",
    ),
    RequestAction.NOTE: ("POST", "##ZONEURL##Tickets/##EXTERNALTICKETID##/Notes", "rest/note.json"),
}
SOAP_REQUESTS: Mapping[RequestAction | tuple[AlertStatus, RequestAction], tuple[str, str, str]] = {
    RequestAction.CREATE: ("POST", "##ZONEURL##", "soap/create.xml"),
    RequestAction.UPDATE: ("POST", "##ZONEURL##", "soap/update.xml"),
    (AlertStatus.CLEARED, RequestAction.UPDATE): ("POST", "##ZONEURL##", "soap/complete.xml"),
    RequestAction.NOTE: ("POST", "##ZONEURL##", "soap/note.xml"),
}


def endpoint_of(request: OutboundRequest) -> str:
    """The object endpoint a request addresses, as Autotask's thread limit counts it.

    REST URLs name it (…/Tickets, …/Tickets/query, …/Tickets/{id}/Notes → TicketNotes); SOAP
    has one URL, so the action says it (notes → TicketNotes, everything else → Tickets).
    """
    if request.body_format == "json":
        segments = [unquote(part) for part in urlsplit(request.url).path.split("/") if part]
        if len(segments) >= 3 and segments[-2].isdigit() and not segments[-1].isdigit():
            parent = segments[-3]
            singular = parent[:-3] + "y" if parent.endswith("ies") else parent.removesuffix("s")
            return (singular + segments[-1])[:100]
        names = [part for part in segments if not part.isdigit()]
        if len(names) >= 2 and names[-1].lower() in ("query", "count"):
            names.pop()
        if names and names[-1].lower() not in ("v1.0", "atservicesrest"):
            return names[-1][:100]
    return "TicketNotes" if request.action is RequestAction.NOTE else "Tickets"


REST_PROFILE = TargetProfile(
    flavour="rest",
    body_format="json",
    only_method=None,
    sample_zone_url=REST_SAMPLE_ZONE_URL,
    id_path=REST_ID_PATH,
    namespaces={},
    ticket_limits=TICKET_LIMITS,
    note_limits=NOTE_LIMITS,
    target_headers=TARGET_HEADERS,
    default_requests=REST_REQUESTS,
    endpoint_of=endpoint_of,
)

# SOAP requests are POSTed XML envelopes to the one atws.asmx address (autotask-api.md §10).
SOAP_PROFILE = TargetProfile(
    flavour="soap",
    body_format="xml",
    only_method="POST",
    sample_zone_url=SOAP_SAMPLE_ZONE_URL,
    id_path=SOAP_ID_PATH,
    namespaces=ATWS_NAMESPACES,
    ticket_limits=TICKET_LIMITS,
    note_limits=NOTE_LIMITS,
    target_headers=TARGET_HEADERS,
    default_requests=SOAP_REQUESTS,
    endpoint_of=endpoint_of,
)
