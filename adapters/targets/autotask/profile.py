"""Every Autotask fact the adapters use, in one place, each with why it holds and where it is from.

References are sections of ../shared/reference/autotask-api.md unless said otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

from connector.domain import AlertStatus, OutboundRequest, RequestAction
from connector.errors import TargetAuthError, TargetError, TargetRefusal
from connector.ports import TargetProfile

# -- addresses ---------------------------------------------------------------------------------

#: How the outbound-URL guard (http.check_outbound_url) ends its refusal.
REFUSED_ADDRESS = "refusing to call it"

#: The REST API's path under a zone host; real clients write it in either case (§1).
REST_API_PATH = "atservicesrest/v1.0"
#: The version segment clients append to the zone's `url` (django-autotask, §1).
REST_VERSION_PATH = "v1.0/"
#: zoneInformation, asked relative to the lookup URL (…/atservicesrest/), without credentials (§1).
REST_ZONE_INFORMATION = "v1.0/zoneInformation"
#: The SOAP endpoint's path under a zone host: ATWS 1.6 (§10).
SOAP_API_PATH = "ATServices/1.6/atws.asmx"

#: Where a zone lookup is asked by default: the generic webservices host (§1; OFFICIAL
#: GetZoneInfoCall.htm for SOAP). README "Mapping" documents both.
ZONE_LOOKUP_URLS: Mapping[str, str] = {
    "rest": "https://webservices.autotask.net/atservicesrest/",
    "soap": f"https://webservices.autotask.net/{SOAP_API_PATH}",
}

#: A zone address for save-time checks of URLs (the real one is looked up at delivery time);
#: webservices2 is the pre-release zone (§1), written as the Swagger spec spells the path.
SAMPLE_ZONE_URLS: Mapping[str, str] = {
    "rest": "https://webservices2.autotask.net/ATServicesRest/V1.0/",
    "soap": f"https://webservices2.autotask.net/{SOAP_API_PATH}",
}

#: Zones live on these hosts unless an integration allows others (the sandbox: 127.0.0.1).
#: Reference: ../shared/reference/reliability-security.md §4.5 and S12.
DEFAULT_ALLOWED_ZONE_HOSTS: tuple[str, ...] = ("*.autotask.net",)

# -- what an admin picks from -------------------------------------------------------------------

#: Work types are the billing codes (REST BillingCodes, SOAP AllocationCode) of use type 1: "an
#: active AllocationCode with a UseType value = 1 (that is, a work type)" (OFFICIAL
#: ContractExclusionSetExcludedWorkTypeEntity.htm; AllocationCodeEntity.htm: "Types other than 1
#: (work types)"). A ticket's billingCodeID (SOAP AllocationCodeID) takes one (§3).
WORK_TYPE_USE_TYPE = 1

# -- thresholds --------------------------------------------------------------------------------

#: "a limit of 10,000 on the number of external requests allowed per hour between an individual
#: database and the API", shared by every integration of the tenant (§8).
HOURLY_REQUEST_THRESHOLD = 10_000
#: Autotask counts requests over a rolling 60 minutes (§8).
THRESHOLD_WINDOW_MINUTES = 60
#: "a thread limit of three per object endpoint and tracking identifier" since 2023.1 (§8,
#: OFFICIAL ThreadLimiting.htm); zone lookups are exempt.
THREADS_PER_ENDPOINT = 3

# -- SOAP --------------------------------------------------------------------------------------

#: The ATWS 1.6 namespace: elements, xsi:types and SOAPActions live in it (§10).
ATWS_NS = "http://autotask.net/ATWS/v1_6/"

# -- where a create's answer carries the new ticket's id ---------------------------------------

#: REST: OperationResultModel `{"itemId": id}` (§3).
DEFAULT_JSON_ID_PATH = "$.itemId"
#: Where a SOAP createResponse carries the new entity's id (§10).
DEFAULT_XML_ID_PATH = "//ATWS:EntityResults/ATWS:Entity/ATWS:id"
#: The prefix DEFAULT_XML_ID_PATH uses.
DEFAULT_NAMESPACES: Mapping[str, str] = {"ATWS": ATWS_NS}

# -- field limits ------------------------------------------------------------------------------

#: getFieldInfo: Ticket Title 255, Description 8000 (§3).
TICKET_TITLE_LIMIT = 255
TICKET_DESCRIPTION_LIMIT = 8000
#: Ticket Resolution holds 32000 characters (getFieldInfo, §3).
TICKET_RESOLUTION_LIMIT = 32000

#: Field limits (getFieldInfo: Ticket Title 255, Description 8000; TicketNote Title 250,
#: Description 32000 — §3 and §5). Keys match JSON members case-insensitively and XML element
#: local names.
TICKET_LIMITS: Mapping[str, int] = {
    "title": TICKET_TITLE_LIMIT,
    "description": TICKET_DESCRIPTION_LIMIT,
    "resolution": TICKET_RESOLUTION_LIMIT,
}
NOTE_LIMITS: Mapping[str, int] = {"title": 250, "description": 32000}

# -- what Autotask's error words mean ----------------------------------------------------------

#: Thread limiting and the hourly threshold. n8n-nodes-autotask saw thread rejections (code
#: Itgenatr005, "API thread threshold of 3 threads has been exceeded") "arrive with a non-429
#: HTTP status", so these win on any status. The hourly threshold's own wording is not
#: published; it is answered with 429 (sandbox) and matched by "request threshold" only in case.
#: Reference: ../shared/reference/autotask-api.md §7, §8 and §14.
RATE_LIMIT_MARKERS = ("thread threshold", "itgenatr005", "request threshold")

#: Real Autotask words that mark a refusal of this very request (validation, a reference that
#: does not exist, a permission): the same request always meets it again, so it is never
#: retried. Each is quoted from a real answer, never from the sandbox:
#: "Reference value on field: contactID of type: Contact does not exist or is invalid. ; on
#: record number [1]." and "dueDateTime is required.; on record number [0]." (§14), "String value
#: exceeds maximum length (field:description)." (§14, n8n-nodes-autotask #48), "Value does not
#: reference an existing entity for taskType ." (§7, autotask-mcp #46), "… must be unique."
#: (§7, OFFICIAL REST_Creating_Resources_POST.htm), "The logged in Resource does not have the
#: adequate permissions" (§7, django-autotask), "Unable to find projectID in the TimeEntry
#: Entity" (§14, autotask-mcp PR #282), "Invalid query syntax." (§8, OFFICIAL thresholds page),
#: "you must assign both …" (§3, msp-claude-plugins #32).
VALIDATION_MARKERS = (
    "on record number [",
    "reference value on field",
    "is required",
    "exceeds maximum length",
    "does not reference an existing entity",
    "must be unique",
    "adequate permissions",
    "unable to find",
    "invalid query syntax",
    "you must assign both",
)

#: The zone lookup calls as the clients name them in errors (REST zoneInformation, §1; SOAP
#: getZoneInfo, §10), lower case.
ZONE_LOOKUP_CALLS = ("zoneinformation", "getzoneinfo")

#: Words of a refusal for a missing permission: "The logged in Resource does not have the
#: adequate permissions to create this entity type." with HTTP 500 (django-autotask, §7); the
#: Swagger documents 403 Forbidden too.
PERMISSION_MARKERS = ("adequate permissions",)

#: Credential failures reported as ATWS errors (python-atws #64, autotask-php #174, §10).
SOAP_AUTH_MARKERS = (
    "integrationcode is invalid",
    "integration code required",
    "user name or password are incorrect",
    "authorization has been denied",
)

#: How often a request is tried that Autotask refused in its own error shape without saying why
#: (real tenants often answer just `{"errors":["Something went wrong"]}`, §14, apigrate #19).
#: Such a refusal usually repeats, but a passing fault on Autotask's side looks the same.
GENERIC_REFUSAL_ATTEMPTS = 3

#: Autotask field → the mapping setting that fills it, for refusals naming a required field
#: (API-only ticket categories make fields required, §14: API_only_Ticket_Categories.htm).
REQUIRED_FIELD_SETTINGS = {
    "queueid": "set a queue in the mapping (queue_id, or a monitor override's queue)",
    "billingcodeid": "set a work type in the mapping (work_type, or a monitor override's)",
    "allocationcodeid": "set a work type in the mapping (work_type, or a monitor override's)",
    "duedatetime": "set a due time in the mapping (due_days)",
    "issuetype": "set an issue type in the mapping (issue_type, or a monitor override's)",
    "subissuetype": "set a sub-issue type in the mapping (sub_issue_type)",
    "tickettype": "set a ticket type in the mapping (ticket_type)",
    "source": "set a ticket source in the mapping (source)",
    "resolution": "make the Cleared request set the ticket's resolution",
    "contactid": "add contactID to the create request",
}

# -- the requests a delivery sends by default -------------------------------------------------

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


# -- what a URL addresses ----------------------------------------------------------------------


def entity_of(url: str) -> str:
    """The entity a REST URL addresses, for the activity log: "Tickets", "TicketNotes" …"""
    # A child collection (…/Tickets/{id}/Notes) is named as Autotask names the child entity: the
    # parent in the singular plus the child (TicketNotes; §3 "Children", §5).
    segments = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    if len(segments) >= 3 and segments[-2].isdigit() and not segments[-1].isdigit():
        parent = segments[-3]
        singular = parent[:-3] + "y" if parent.endswith("ies") else parent.removesuffix("s")
        name = singular + segments[-1]
    else:
        names = [part for part in segments if not part.isdigit()]
        if len(names) >= 2 and names[-1].lower() in ("query", "count"):
            names.pop()
        name = names[-1] if names else ""
    # The activity log's entity column holds 100 characters.
    return name[:100]


def endpoint_of(request: OutboundRequest) -> str:
    """The object endpoint a request addresses, as Autotask's thread limit counts it.

    REST URLs name it (…/Tickets, …/Tickets/query, …/Tickets/{id}/Notes → TicketNotes); SOAP
    has one URL, so the action says it (notes → TicketNotes, everything else → Tickets).
    """
    if request.body_format == "json":
        name = entity_of(request.url)
        if name and name.lower() not in REST_API_PATH.split("/"):
            return name
    return "TicketNotes" if request.action is RequestAction.NOTE else "Tickets"


# -- what a refusal says ------------------------------------------------------------------------


def refusal_of(error: TargetError) -> TargetRefusal | None:
    """What Autotask refused, read from its status and words (autotask-api.md §2, §14)."""
    text = str(error).lower()
    response = error.response or {}
    if response.get("status") == 401 or "authorization has been denied" in text:
        return TargetRefusal.CREDENTIALS
    if isinstance(error, TargetAuthError) and any(
        call in text.replace(" ", "") for call in ZONE_LOOKUP_CALLS
    ):
        # The zone lookup is the one call without credentials: only the username can fail it
        # ("Zone information could not be determined", §14; SOAP getZoneInfo's ErrorCode -1).
        return TargetRefusal.UNKNOWN_USER
    if isinstance(error, TargetAuthError) or any(
        marker in text for marker in ("integrationcode", "integration code")
    ):
        # The user is known (its zone was found) and a wrong secret is a 401: what is left is
        # the tracking identifier, refused with a bare 500 (apigrate/autotask-restapi #19).
        return TargetRefusal.TRACKING_IDENTIFIER
    if "companyid" in text and "existing entity" in text:
        return TargetRefusal.UNKNOWN_COMPANY
    if "field: companyid of type" in text and "does not exist or is invalid" in text:
        # Autotask's reference error, also for an inactive company (§14).
        return TargetRefusal.INACTIVE_COMPANY
    if REFUSED_ADDRESS in text:
        return TargetRefusal.ADDRESS_NOT_ALLOWED
    return None


def check_zone_lookup_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Refuse, when an integration is saved, a zone lookup URL the clients would refuse to call."""
    # Deferred: http.py imports this module for its address constants.
    from adapters.targets.autotask.http import check_outbound_url

    hosts = [host.strip().lower() for host in allowed_hosts if host.strip()]
    check_outbound_url(url, hosts or DEFAULT_ALLOWED_ZONE_HOSTS, what="zone lookup URL")


# -- the flavours as the core sees them (connector.ports.TargetProfile) -------------------------

REST_PROFILE = TargetProfile(
    flavour="rest",
    body_format="json",
    only_method=None,
    sample_zone_url=SAMPLE_ZONE_URLS["rest"],
    default_zone_lookup_url=ZONE_LOOKUP_URLS["rest"],
    id_path=DEFAULT_JSON_ID_PATH,
    namespaces=DEFAULT_NAMESPACES,
    ticket_limits=TICKET_LIMITS,
    note_limits=NOTE_LIMITS,
    target_headers=TARGET_HEADERS,
    default_requests=REST_REQUESTS,
    endpoint_of=endpoint_of,
    refusal_of=refusal_of,
    check_zone_lookup_url=check_zone_lookup_url,
)

# SOAP requests are POSTed XML envelopes to the one atws.asmx address (autotask-api.md §10).
SOAP_PROFILE = TargetProfile(
    flavour="soap",
    body_format="xml",
    only_method="POST",
    sample_zone_url=SAMPLE_ZONE_URLS["soap"],
    default_zone_lookup_url=ZONE_LOOKUP_URLS["soap"],
    id_path=DEFAULT_XML_ID_PATH,
    namespaces=DEFAULT_NAMESPACES,
    ticket_limits=TICKET_LIMITS,
    note_limits=NOTE_LIMITS,
    target_headers=TARGET_HEADERS,
    default_requests=SOAP_REQUESTS,
    endpoint_of=endpoint_of,
    refusal_of=refusal_of,
    check_zone_lookup_url=check_zone_lookup_url,
    # update() replaces the whole entity, so the SOAP target reads the ticket right before each
    # update (soap/target.py): a status change is a query plus an update (§10).
    update_reads_ticket=True,
)
