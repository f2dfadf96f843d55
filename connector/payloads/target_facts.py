"""The target's facts the payloads use: Autotask's field limits, id paths, zones and requests.

Everything here describes Autotask, not the template language, and is to be supplied by the
target adapter (its profile) in a later step; until then this is the one place in payloads that
spells an Autotask URL, namespace, endpoint, header or field limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from connector.domain import AlertStatus, RequestAction
from connector.integrations.settings import DESCRIPTION_LIMIT, TITLE_LIMIT

#: Field limits (getFieldInfo: Ticket Title 255, Description 8000; TicketNote Title 250,
#: Description 32000 — autotask-api.md §3 and §5). Keys match JSON members case-insensitively
#: and XML element local names.
TICKET_LIMITS: Mapping[str, int] = {
    "title": TITLE_LIMIT,
    "description": DESCRIPTION_LIMIT,
    # Ticket Resolution holds 32000 characters (getFieldInfo, autotask-api.md §3).
    "resolution": 32000,
}
NOTE_LIMITS: Mapping[str, int] = {"title": 250, "description": 32000}

#: Where a REST create answer carries the new entity's id.
DEFAULT_JSON_ID_PATH = "$.itemId"
#: Where a SOAP createResponse carries the new entity's id (autotask-api.md §10).
DEFAULT_XML_ID_PATH = "//ATWS:EntityResults/ATWS:Entity/ATWS:id"
DEFAULT_NAMESPACES: Mapping[str, str] = {"ATWS": "http://autotask.net/ATWS/v1_6/"}

#: A zone address per API flavour for save-time checks of URLs and for previews (the real one
#: is looked up at delivery time).
SAMPLE_ZONE_URLS: Mapping[str, str] = {
    "rest": "https://webservices2.autotask.net/ATServicesRest/V1.0/",
    "soap": "https://webservices2.autotask.net/ATServices/1.6/atws.asmx",
}

#: Headers the target sets itself: Autotask's credentials and the SOAP action.
TARGET_HEADERS = ("ApiIntegrationCode", "UserName", "Secret", "Authorization", "SOAPAction")

#: (method, URL, template file in payload_templates/) per flavour and (status, action);
#: Autotask's REST and SOAP 1.6 calls for tickets and ticket notes (autotask-api.md §3, §5, §10).
#: An entry for an action serves every status without an entry of its own.
DEFAULT_REQUESTS: Mapping[
    str, Mapping[RequestAction | tuple[AlertStatus, RequestAction], tuple[str, str, str]]
] = {
    "rest": {
        RequestAction.CREATE: ("POST", "##ZONEURL##Tickets", "rest/active.json"),
        RequestAction.UPDATE: ("PATCH", "##ZONEURL##Tickets", "rest/status.json"),
        (AlertStatus.CLEARED, RequestAction.UPDATE): (
            "PATCH",
            "##ZONEURL##Tickets",
            "rest/complete.json",
        ),
        RequestAction.NOTE: (
            "POST",
            "##ZONEURL##Tickets/##EXTERNALTICKETID##/Notes",
            "rest/note.json",
        ),
    },
    "soap": {
        RequestAction.CREATE: ("POST", "##ZONEURL##", "soap/create.xml"),
        RequestAction.UPDATE: ("POST", "##ZONEURL##", "soap/update.xml"),
        (AlertStatus.CLEARED, RequestAction.UPDATE): ("POST", "##ZONEURL##", "soap/complete.xml"),
        RequestAction.NOTE: ("POST", "##ZONEURL##", "soap/note.xml"),
    },
}
