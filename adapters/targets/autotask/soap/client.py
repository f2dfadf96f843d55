"""Autotask's SOAP API (ATWS 1.6) as the connector calls it: zone lookup, envelopes, one `_request`.

The SOAP twin of `adapters.targets.autotask.rest.client` (same constructor, same error model,
same SSRF guard), modelled on Sentry's BaseApiClient (../shared/reference/style-anchors.md §9.3):
one thin method per remote operation, every failure turned into a typed
`connector.errors.TargetError` in one place (`_request` and `classify_failure`), and query paging
in one helper. Envelopes are built with lxml, never by pasting values into strings, and answers
are read with a hardened parser (../shared/reference/reliability-security.md §4.6). SOAP facts and
their sources: ../shared/reference/autotask-api.md §10.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypeVar
from xml.sax.saxutils import escape as xml_escape

import requests
from lxml import etree

from adapters.targets.autotask.common import (
    BODY_KEEP_CHARS,
    DEFAULT_ALLOWED_ZONE_HOSTS,
    RATE_LIMIT_MARKERS,
    REDACTED,
    AutotaskUnavailable,
    check_outbound_url,
    credentials_refused,
    explain_refusal,
    is_validation_refusal,
    merge_headers,
    redact_text,
    response_text,
    retry_after,
    secret_forms,
    sent_record,
    transport_error,
)
from connector.domain import ApiCallRecord, OutboundRequest, TargetResponse, TicketRef
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)
from connector.ports import CallRecorder
from connector.safe_xml import XmlRefused, parse_untrusted

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATWS_NS = "http://autotask.net/ATWS/v1_6/"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = f"{{{XSI_NS}}}type"
XSI_NIL = f"{{{XSI_NS}}}nil"

#: Elements of the ATWS namespace are written unprefixed, as the official samples do
#: (autotask-api.md §10). lxml-stubs types nsmap keys as str; lxml takes None for the default.
_ATWS_DEFAULT: Any = {None: ATWS_NS}

#: Where zone URLs may point when nothing else is configured: Autotask's own hosts.
#: Reference: ../shared/reference/reliability-security.md §4.5 and S12.

#: "query() will return a maximum of 500 records at once, sorted by their id value … repeat the
#: query and filter by id value > the previous maximum id". Reference: autotask-api.md §10
#: (OFFICIAL QueryXML.htm).
MAX_QUERY_RECORDS = 500

#: A query never follows more pages than this (500 × 1000 records), so a server that keeps
#: answering full pages cannot loop us forever.
MAX_PAGES = 1000

#: "Any batch call must be 200 or less entities per call". Reference: autotask-api.md §10
#: (OFFICIAL Batching_API_Calls.htm; python-atws AUTOTASK_API_ENTITY_SEND_LIMIT = 200).
MAX_BATCH = 200

#: How much of an answer an error keeps.

#: Field order of the entities the connector writes: the xs:sequence of each complexType in the
#: ATWS 1.6 WSDL (tests/fixtures/autotask/specs/atws-v1_6.trepidity-autotask_ruby.wsdl, types
#: Ticket and TicketNote, after the Entity base's Fields, id, UserDefinedFields). Elements of an
#: xs:sequence must come in this order, so entities are written in it (`wsdl_order`).
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "Ticket": (
        "AccountID",
        "AllocationCodeID",
        "CompletedDate",
        "ContactID",
        "ContractID",
        "CreateDate",
        "CreatorResourceID",
        "Description",
        "DueDateTime",
        "EstimatedHours",
        "InstalledProductID",
        "IssueType",
        "LastActivityDate",
        "Priority",
        "QueueID",
        "AssignedResourceID",
        "AssignedResourceRoleID",
        "Source",
        "Status",
        "SubIssueType",
        "TicketNumber",
        "Title",
        "FirstResponseDateTime",
        "ResolutionPlanDateTime",
        "ResolvedDateTime",
        "FirstResponseDueDateTime",
        "ResolutionPlanDueDateTime",
        "ResolvedDueDateTime",
        "ServiceLevelAgreementID",
        "ServiceLevelAgreementHasBeenMet",
        "Resolution",
        "PurchaseOrderNumber",
        "TicketType",
        "ProblemTicketId",
        "OpportunityId",
        "ChangeApprovalBoard",
        "ChangeApprovalType",
        "ChangeApprovalStatus",
        "ChangeInfoField1",
        "ChangeInfoField2",
        "ChangeInfoField3",
        "ChangeInfoField4",
        "ChangeInfoField5",
        "LastCustomerNotificationDateTime",
        "LastCustomerVisibleActivityDateTime",
        "ContractServiceID",
        "ContractServiceBundleID",
        "HoursToBeScheduled",
        "MonitorTypeID",
        "MonitorID",
        "AEMAlertID",
        "TicketCategory",
        "ExternalID",
        "FirstResponseInitiatingResourceID",
        "FirstResponseAssignedResourceID",
        "ProjectID",
        "BusinessDivisionSubdivisionID",
        "CreatorType",
        "CompletedByResourceID",
        "AccountPhysicalLocationID",
        "LastActivityPersonType",
        "LastActivityResourceID",
        "ServiceLevelAgreementPausedNextEventHours",
        "CurrentServiceThermometerRating",
        "PreviousServiceThermometerRating",
        "ServiceThermometerTemperature",
    ),
    "TicketNote": (
        "CreatorResourceID",
        "Description",
        "LastActivityDate",
        "NoteType",
        "Publish",
        "TicketID",
        "Title",
        "ImpersonatorCreatorResourceID",
        "ImpersonatorUpdaterResourceID",
        "CreateDateTime",
    ),
}


#: Characters XML 1.0 cannot carry (lxml refuses them); alert text may hold any of them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60; numberOfExternalRequest: 0;"
#: (trepidity/autotask_ruby threshold_and_usage_info_response.xml, autotask-api.md §10).
_USAGE_PAIR = re.compile(r"\s*([A-Za-z]+)\s*:\s*(-?\d+)\s*;?")

_INT_TYPES = frozenset(
    {
        "int",
        "long",
        "short",
        "byte",
        "integer",
        "unsignedByte",
        "unsignedShort",
        "unsignedInt",
        "unsignedLong",
    }
)


class XsdValue(NamedTuple):
    """A field value kept exactly as Autotask sent it: its text and its xsi:type."""

    text: str
    xsd_type: str


class SoapEntity(dict[str, Any]):
    """One ATWS entity: `id`, WSDL field names → values, and `UserDefinedFields` (name → value).

    Values are Python values (int, str, bool, Decimal, float, datetime) or an `XsdValue`. An
    entity read from Autotask remembers the xsi:type each field came with, so sending it back
    (the full-entity update SOAP needs) repeats those types exactly.
    """

    def __init__(
        self,
        entity_type: str,
        fields: Mapping[str, Any] | None = None,
        *,
        xsd_types: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(fields or {})
        self.entity_type = entity_type
        self.xsd_types: dict[str, str] = dict(xsd_types or {})

    def __repr__(self) -> str:
        return f"SoapEntity({self.entity_type!r}, {dict(self)!r})"


# -- the one table of Autotask's answers → our errors ------------------------------------------
#
# Reference: autotask-api.md §10 (401 for bad Basic credentials; ReturnCode ≠ 1 with ATWSError
# messages; "IntegrationCode is invalid."), §7 and §8 (thread and hourly thresholds, 429).


#: Credential failures reported as ATWS errors (python-atws #64, autotask-php #174, §10).
_AUTH_MARKERS = (
    "integrationcode is invalid",
    "integration code required",
    "user name or password are incorrect",
    "authorization has been denied",
)


def classify_failure(
    status: int, messages: Sequence[str], *, fault_code: str | None = None
) -> tuple[type[TargetError], bool]:
    """Map a failed answer to (error class, may the request have been applied?).

    `status` is the HTTP status; an ATWSResponse with ReturnCode ≠ 1 arrives with a 2xx.
    `fault_code` is the soap:Fault's faultcode (e.g. "soap:Client"), when the answer is a Fault.
    """
    text = " ".join(messages).lower()
    code = (fault_code or "").rsplit(":", 1)[-1].split(".", 1)[0].lower()
    if 300 <= status < 400:
        # Redirects are never followed: credentials go only where the zone lookup allowed
        # (reliability-security.md §4.5, ASVS 15.3.2).
        return TargetRejected, False
    if status == 429 or any(marker in text for marker in RATE_LIMIT_MARKERS):
        return TargetRateLimited, False
    if status in (401, 403) or any(marker in text for marker in _AUTH_MARKERS):
        return TargetAuthError, False
    if 200 <= status < 300:
        # ReturnCode ≠ 1: the web method ran and refused the request (validation, lookup); a
        # batch fails whole, so nothing was applied (OFFICIAL Batching_API_Calls.htm, §10).
        return TargetRejected, False
    if status == 408:
        return TargetUnavailable, False  # the server gave up before it had the whole request
    if code == "client" or 400 <= status < 500:
        # SOAP 1.1 §4.4.1: a Client fault means "the message was incorrectly formed or did not
        # contain the appropriate information … it should not be resent without change".
        return TargetRejected, False
    # SOAP 1.1 §4.4.1: a Server fault "may succeed at a later point in time". 503 was refused
    # before processing; a 500 Fault, 502 or 504 may hide a request that was processed.
    return TargetUnavailable, status != 503


class _Answer(NamedTuple):
    """A successful ATWSResponse (ReturnCode 1): its entities and EntityReturnInfo messages."""

    entities: list[SoapEntity]
    info_messages: list[str]


class Envelope(NamedTuple):
    """A rendered SOAP request, parsed: the envelope and the operation inside its Body."""

    root: etree._Element
    operation: etree._Element

    @property
    def name(self) -> str:
        """The operation's name: create, update, query …"""
        return str(etree.QName(self.operation).localname)

    def entities(self) -> list[etree._Element]:
        """The `<Entity>` elements of a create or update (none for other operations)."""
        return _children(_find(self.operation, "Entities"), "Entity")

    def entity(self) -> str:
        """The entity the call is about, for the activity log: "Ticket", "TicketNote" …"""
        if self.name == "query":
            try:
                document = _parse((self.operation.findtext(_q("sXML")) or "").strip().encode())
            except _Unreadable:
                return ""
            return (document.findtext("entity") or "").strip()
        return ",".join(dict.fromkeys(entity_type(e) for e in self.entities()))


class AutotaskSoapClient:
    """One Autotask API user's SOAP (ATWS 1.6) client; every failure is a `TargetError`."""

    #: SOAPAction is the namespace plus the operation (WSDL soap:operation soapAction).
    SOAP_ACTION = ATWS_NS + "{operation}"

    #: The zone of a user rarely changes; look it up again after this many seconds (and after a
    #: 401, see `_call`).
    ZONE_TTL_SECONDS = 3600.0

    def __init__(
        self,
        zone_lookup_url: str,
        username: str,
        secret: str,
        integration_code: str,
        *,
        allowed_zone_hosts: Sequence[str] = DEFAULT_ALLOWED_ZONE_HOSTS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        recorder: CallRecorder | None = None,
        session: requests.Session | None = None,
        zone_ttl: float = ZONE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.zone_lookup_url = zone_lookup_url
        self.username = username
        self._secret = secret
        self._integration_code = integration_code
        self._basic = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
        self._secret_forms = secret_forms(secret, integration_code, self._basic)
        self.allowed_zone_hosts = tuple(p.strip().lower() for p in allowed_zone_hosts if p.strip())
        # requests' timeout is (connect, read); every request carries it.
        # https://requests.readthedocs.io/en/latest/user/advanced/#timeouts
        self.timeout = (connect_timeout, read_timeout)
        self.recorder = recorder
        self.session = session or requests.Session()
        self.zone_ttl = zone_ttl
        self.clock = clock
        self._zone_lock = threading.Lock()
        self._zone_url: str | None = None
        self._zone_fetched = 0.0

    def __repr__(self) -> str:
        return (
            f"AutotaskSoapClient(zone_lookup_url={self.zone_lookup_url!r},"
            f" username={self.username!r}, secret=<secret>, integration_code=<secret>)"
        )

    # -- remote operations ---------------------------------------------------------------------

    def create(self, entities: Sequence[SoapEntity]) -> list[SoapEntity]:
        """create: return the created entities as Autotask answers them (with their new ids)."""
        return self._write("create", entities)

    def update(self, entities: Sequence[SoapEntity]) -> list[SoapEntity]:
        """update: Autotask *replaces* each entity, clearing every writable field not sent.

        "if no value is provided for non-ReadOnly fields, those fields are cleared" (OFFICIAL
        UpdateCall.htm, autotask-api.md §10): send the whole entity as `query` returned it.
        """
        return self._write("update", entities)

    def query(self, queryxml: str) -> list[SoapEntity]:
        """query with a `<queryxml>` document; return the entities of every page, by id.

        Autotask answers at most 500 entities per call, sorted by id; the query is repeated
        with `id > last id` until a page is short (OFFICIAL QueryXML.htm, autotask-api.md §10).
        """
        document = _parse_queryxml(queryxml)
        entity = (document.findtext("entity") or "").strip()
        found: list[SoapEntity] = []
        after: int | None = None
        for _ in range(MAX_PAGES):
            page_query = document if after is None else _after_id(document, after)
            operation = _operation("query")
            _sub(operation, "sXML", etree.tostring(page_query, encoding="unicode"))
            answer = self._call("query", entity, operation, write=False)
            found.extend(answer.entities)
            if len(answer.entities) < MAX_QUERY_RECORDS:
                return found
            last = max(e["id"] for e in answer.entities)
            if after is not None and last <= after:
                raise AutotaskUnavailable(
                    f"Autotask {entity} query paging did not advance past id {after}.",
                    ambiguous=False,
                )
            after = last
        raise AutotaskUnavailable(
            f"Autotask {entity} query paging did not end after {MAX_PAGES} pages.",
            ambiguous=False,
        )

    def threshold_and_usage(self) -> dict[str, int]:
        """getThresholdAndUsageInfo: the hourly threshold, its timeframe and the current count.

        Keys as Autotask names them in its message: ThresholdOfExternalRequest,
        TimeframeOfLimitation, numberOfExternalRequest (autotask-api.md §10).
        """
        answer = self._call(
            "getThresholdAndUsageInfo", "", _operation("getThresholdAndUsageInfo"), write=False
        )
        usage: dict[str, int] = {}
        for message in answer.info_messages:
            usage.update((name, int(value)) for name, value in _USAGE_PAIR.findall(message))
        if not usage:
            raise AutotaskUnavailable(
                "Autotask getThresholdAndUsageInfo answered without usage figures.",
                ambiguous=False,
            )
        return usage

    def send_envelope(self, request: OutboundRequest, envelope: Envelope) -> TargetResponse:
        """POST `envelope` (parsed from `request`) with HTTP Basic; a failure raises its error."""
        # The answer is read as every call's is (Fault, ReturnCode ≠ 1, unreadable → typed
        # errors); `TargetResponse.sent` is the envelope as sent, credentials redacted.
        self.check_request_url(request.url)
        if request.method.upper() != "POST":
            raise TargetRejected(f"SOAP requests are POSTed envelopes, not {request.method}.")
        self._add_integration_code(envelope.root)
        name = envelope.name
        entity = envelope.entity()
        data = etree.tostring(envelope.root, xml_declaration=True, encoding="utf-8")
        headers = merge_headers(request.headers, self._headers(name, authenticated=True))
        # Reads answer with entities, every other operation changes something: for those a
        # 2xx whose answer cannot be read leaves the outcome unknown.
        write = name != "query" and not name.lower().startswith("get")
        zone = self._zone_url
        try:
            try:
                return self._send(name, entity, request.url, data, headers, write=write)
            except _UnexplainedRefusal as e:
                raise self._unless_credentials_refused(e) from e
        except TargetAuthError as e:
            # As in `_call`: a 401 can mean the database moved zone (autotask-api.md §2); a URL
            # under the old zone is sent again under the new one, once, if the zone changed.
            if not e.response or e.response.get("status") != 401:
                raise
            if zone is None or not request.url.startswith(zone):
                raise
            fresh = self.zone_url(refresh=True)
            if fresh == zone:
                raise
            logger.info("autotask.soap.zone_changed", extra={"zone_url": fresh})
            url = fresh + request.url[len(zone) :]
            self.check_request_url(url)
            return self._send(name, entity, url, data, headers, write=write)

    def check_request_url(self, url: str) -> None:
        """Refuse (TargetRejected) a request URL that is not on an allowed zone host."""
        self._check_outbound_url(url, what="request URL")

    def _send(
        self,
        operation_name: str,
        entity: str,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        *,
        write: bool,
    ) -> TargetResponse:
        answer, response = self._exchange(
            operation_name, entity, url, data, headers, read=self._atws_answer, write=write
        )
        return TargetResponse(
            status=response.status_code,
            body=response_text(response, self._redact_xml),
            sent={
                **sent_record("POST", url, headers, "", self._redact),
                "body": self._redact_xml(data.decode("utf-8", errors="replace")),
            },
            ticket=_answered_ticket(answer.entities),
        )

    def _add_integration_code(self, root: etree._Element) -> None:
        """Give an envelope without an IntegrationCode the API user's tracking identifier.

        Without one ATWS answers "IntegrationCode is invalid." (python-atws #64) or
        "Integration code required" (autotask-php #174); autotask-api.md §10.
        """
        header = root.find(f"{{{SOAP_ENV_NS}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP_ENV_NS}}}Header")
            root.insert(0, header)
        integrations = header.find(_q("AutotaskIntegrations"))
        if integrations is None:
            integrations = etree.SubElement(header, _q("AutotaskIntegrations"), nsmap=_ATWS_DEFAULT)
        code = integrations.find(_q("IntegrationCode"))
        if code is None:
            code = etree.Element(_q("IntegrationCode"))
            # The WSDL's AutotaskIntegrations is a sequence: PartnerID?, IntegrationCode?,
            # ImpersonateAsResourceID? (autotask-api.md §10).
            partner = integrations.find(_q("PartnerID"))
            if partner is not None:
                partner.addnext(code)
            else:
                integrations.insert(0, code)
        if not (code.text or "").strip():
            code.text = self._integration_code

    # -- zone ----------------------------------------------------------------------------------

    def zone_url(self, *, refresh: bool = False) -> str:
        """The zone's SOAP endpoint (…/ATServices/1.6/atws.asmx), looked up and cached for a TTL."""
        with self._zone_lock:
            fresh = self.clock() - self._zone_fetched < self.zone_ttl
            if self._zone_url is None or refresh or not fresh:
                self._zone_url = self._lookup_zone()
                self._zone_fetched = self.clock()
            return self._zone_url

    def _lookup_zone(self) -> str:
        """Ask getZoneInfo (without credentials) where this user's database lives."""
        # The lookup URL is configuration, but it gets the username, so it meets the same rule.
        self._check_outbound_url(self.zone_lookup_url, what="zone lookup URL")
        operation = _operation("getZoneInfo")
        _sub(operation, "UserName", self.username)
        # getZoneInfo "does not require authentication or a tracking identifier" (OFFICIAL
        # GetZoneInfoCall.htm, autotask-api.md §10), so neither is sent.
        url = self._request(
            "getZoneInfo",
            "",
            self.zone_lookup_url,
            operation,
            authenticated=False,
            write=False,
            read=self._zone_answer,
        )
        self._check_outbound_url(url, what="zone URL")
        return url

    def _zone_answer(self, content: etree._Element) -> tuple[str, int | None]:
        """ATWSZoneInfo: URL, ErrorCode (negative: lookup failed), DataBaseType, CI, WebUrl."""
        result = _child(content, "getZoneInfoResult")
        code = int(_required_text(result, "ErrorCode"))
        if code < 0:
            # "a negative ErrorCode" means the lookup failed (OFFICIAL GetZoneInfoCall.htm,
            # autotask-api.md §10): Autotask knows no such API user.
            raise _ZoneRefused(
                f"Autotask getZoneInfo found no zone for user {self.username!r} (ErrorCode {code})."
            )
        return _required_text(result, "URL").strip(), None

    def _check_outbound_url(self, url: str, *, what: str) -> None:
        """Refuse a URL credentials must not go to (see autotask_common.check_outbound_url)."""
        check_outbound_url(url, self.allowed_zone_hosts, what=what)

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, operation_name: str, entities: Sequence[SoapEntity]) -> list[SoapEntity]:
        if not entities:
            return []
        if len(entities) > MAX_BATCH:
            raise TargetRejected(
                f"Autotask takes at most {MAX_BATCH} entities per {operation_name} call;"
                f" got {len(entities)}."
            )
        operation = _operation(operation_name)
        holder = _sub(operation, "Entities")
        for entity in entities:
            _write_entity(holder, entity)
        kinds = ",".join(dict.fromkeys(e.entity_type for e in entities))
        answer = self._call(operation_name, kinds, operation, write=True)
        if len(answer.entities) != len(entities):
            # The write succeeded (ReturnCode 1) but we cannot tell which ids it made.
            raise AutotaskUnavailable(
                f"Autotask {operation_name} {kinds}: answered {len(answer.entities)} entities"
                f" for {len(entities)} sent; outcome unknown.",
                ambiguous=True,
            )
        return answer.entities

    def _call(
        self, operation_name: str, entity: str, operation: etree._Element, *, write: bool
    ) -> _Answer:
        """Call the zone's endpoint; on a 401 look the zone up again once, as for REST.

        A 401 can mean the database moved to another zone (django-autotask MAX_401_ATTEMPTS = 1,
        autotask-api.md §2); the call is repeated only when the zone URL actually changed.
        """
        url = self.zone_url()
        try:
            try:
                return self._request(
                    operation_name, entity, url, operation, write=write, read=self._atws_answer
                )
            except _UnexplainedRefusal as e:
                if operation_name == "getThresholdAndUsageInfo":
                    raise  # the credentials check itself: its caller judges
                raise self._unless_credentials_refused(e) from e
        except TargetAuthError as e:
            if not e.response or e.response.get("status") != 401:
                raise
            fresh = self.zone_url(refresh=True)
            if fresh == url:
                raise
            logger.info("autotask.soap.zone_changed", extra={"zone_url": fresh})
            return self._request(
                operation_name, entity, fresh, operation, write=write, read=self._atws_answer
            )

    @staticmethod
    def _atws_answer(content: etree._Element) -> tuple[_Answer, int | None]:
        """`<{op}Response><{op}Result>` holding an ATWSResponse (WSDL type ATWSResponse)."""
        result = next(_elements(content), None)
        if result is None:
            raise _Unreadable(f"{etree.QName(content).localname} holds no result")
        return_code = int(_required_text(result, "ReturnCode"))
        entities = [
            _read_entity(element) for element in _children(_find(result, "EntityResults"), "Entity")
        ]
        errors = [
            (error.findtext(_q("Message")) or "").strip()
            for error in _children(_find(result, "Errors"), "ATWSError")
        ]
        infos = [
            info.findtext(_q("Message")) or ""
            for info in _children(_find(result, "EntityReturnInfoResults"), "EntityReturnInfo")
        ]
        if return_code != 1:
            # python-atws treats any ReturnCode other than 1 as failure (autotask-api.md §10).
            raise _Refused(return_code, [e for e in errors if e])
        return _Answer(entities, infos), len(entities)

    def _envelope(self, operation: etree._Element, *, authenticated: bool) -> bytes:
        """soap:Envelope with the AutotaskIntegrations header (autotask-api.md §10) and the Body."""
        envelope = etree.Element(
            f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS, "xsi": XSI_NS, "xsd": XSD_NS}
        )
        if authenticated:
            header = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
            integrations = etree.SubElement(header, _q("AutotaskIntegrations"), nsmap=_ATWS_DEFAULT)
            # The API tracking identifier; without it ATWS answers "IntegrationCode is invalid."
            # (python-atws #64) or "Integration code required" (autotask-php #174).
            _sub(integrations, "IntegrationCode", self._integration_code)
        etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body").append(operation)
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")

    def _headers(self, operation_name: str, *, authenticated: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "Accept": "text/xml",
            # SOAP 1.1 §6.1.1 quotes the SOAPAction URI, as .NET clients send it; the value is
            # the WSDL's soap:operation soapAction (autotask-api.md §10).
            "SOAPAction": '"' + self.SOAP_ACTION.format(operation=operation_name) + '"',
        }
        if authenticated:
            # HTTP Basic with the API user (autotask-api.md §10); built here, UTF-8 encoded.
            headers["Authorization"] = "Basic " + self._basic
        return headers

    def _request(
        self,
        operation_name: str,
        entity: str,
        url: str,
        operation: etree._Element,
        *,
        read: Callable[[etree._Element], tuple[T, int | None]],
        write: bool,
        authenticated: bool = True,
    ) -> T:
        """POST the operation in an envelope; return `read(Body content)`, or raise."""
        value, _ = self._exchange(
            operation_name,
            entity,
            url,
            self._envelope(operation, authenticated=authenticated),
            self._headers(operation_name, authenticated=authenticated),
            read=read,
            write=write,
        )
        return value

    def _exchange(
        self,
        operation_name: str,
        entity: str,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        *,
        read: Callable[[etree._Element], tuple[T, int | None]],
        write: bool,
    ) -> tuple[T, requests.Response]:
        """POST one envelope; return (`read(Body content)`, response), or raise the TargetError.

        Every call, failed or not, is reported to the recorder exactly once; the recorder must
        not raise (its exception would replace the call's result).
        """
        at = datetime.now(UTC)
        started = time.monotonic()
        status: int | None = None
        records: int | None = None
        failure: TargetError | None = None
        what = f"{operation_name} {entity}".strip()
        try:
            try:
                response = self.session.post(
                    url,
                    data=data,
                    headers=dict(headers),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as e:
                failure = self._transport_error(what, e)
                raise failure from e
            status = response.status_code
            try:
                content: etree._Element | None = _body_content(response.content)
                problem = ""
            except _Unreadable as e:
                content, problem = None, str(e)
            if content is not None and content.tag == f"{{{SOAP_ENV_NS}}}Fault":
                failure = self._failure(what, response, _fault(content))
                raise failure
            if not 200 <= status < 300:
                failure = self._failure(what, response, (None, _text_messages(response.text)))
                raise failure
            try:
                if content is None:
                    raise _Unreadable(problem)
                value, records = read(content)
            except _Refused as e:
                records = 0
                failure = self._failure(what, response, (None, e.messages), e.return_code)
                raise failure from e
            except _ZoneRefused as e:
                failure = TargetAuthError(self._redact(str(e)), response=self._summary(response))
                raise failure from e
            except (_Unreadable, ValueError, TypeError, KeyError) as e:
                # Not XML, a DOCTYPE, or not the shape the WSDL documents: no usable answer. A
                # write that got a 2xx was probably applied, so its outcome is unknown.
                failure = AutotaskUnavailable(
                    self._redact(f"Autotask {what}: unexpected answer: {e}"),
                    ambiguous=write,
                    response=self._summary(response),
                )
                raise failure from e
            return value, response
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            self._record(
                ApiCallRecord(
                    at=at,
                    # Every SOAP call is an HTTP POST; the operation goes with the entity, as
                    # "Ticket.create" (the activity log's method column holds 10 characters).
                    method="POST",
                    entity=(f"{entity}.{operation_name}" if entity else operation_name)[:100],
                    http_status=status,
                    execution_ms=round(elapsed_ms, 3),
                    records=records,
                    error=str(failure) if failure is not None else None,
                )
            )

    def _record(self, record: ApiCallRecord) -> None:
        logger.debug(
            "autotask.soap.call",
            extra={
                "method": record.method,
                "entity": record.entity,
                "http_status": record.http_status,
                "execution_ms": record.execution_ms,
            },
        )
        if self.recorder is not None:
            self.recorder(record)

    def _transport_error(self, what: str, error: requests.RequestException) -> TargetError:
        """Map a requests exception (see autotask_common.transport_error)."""
        return transport_error(what, error, self._redact)

    def _failure(
        self,
        what: str,
        response: requests.Response,
        fault: tuple[str | None, list[str]],
        return_code: int | None = None,
    ) -> TargetError:
        """Map a Fault, a non-2xx answer or a ReturnCode ≠ 1 through `classify_failure`."""
        status = response.status_code
        fault_code, messages = fault
        summary = self._summary(response)
        detail = "; ".join(messages) or response.reason or "no message"
        if return_code is not None:
            detail = f"ReturnCode {return_code}: {detail}"
        elif fault_code:
            detail = f"{fault_code}: {detail}"
        message = self._redact(f"Autotask {what}: HTTP {status}: {detail}")
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            message = self._redact(
                f"Autotask {what}: HTTP {status} redirect to {location!r} not followed"
            )
        kind, ambiguous = classify_failure(status, messages, fault_code=fault_code)
        wait = retry_after(response.headers)
        if kind is TargetRateLimited:
            return TargetRateLimited(message, response=summary, retry_after=wait)
        if kind is TargetUnavailable:
            return AutotaskUnavailable(
                message, ambiguous=ambiguous, response=summary, retry_after=wait
            )
        if kind is TargetRejected:
            explanation = explain_refusal(messages)
            if explanation:
                message = f"{message} ({explanation})"
            if return_code is not None and not is_validation_refusal(messages):
                return _UnexplainedRefusal(message, response=summary)
        return kind(message, response=summary)

    def _unless_credentials_refused(self, error: _UnexplainedRefusal) -> TargetError:
        """After a refusal that names no field, ask whether Autotask still takes our credentials.

        An unknown tracking identifier is refused in the same ATWSResponse shape as a bad
        entity (python-atws #64, autotask-api.md §10), and a tenant may say no more than that
        something went wrong (§14); getThresholdAndUsageInfo needs nothing but the credentials.
        """
        try:
            self.threshold_and_usage()
        except (TargetAuthError, _UnexplainedRefusal) as probe:
            return credentials_refused(error, probe)
        except TargetError:
            pass  # the check could not run: the refusal stands as it was
        return error

    def _summary(self, response: requests.Response) -> dict[str, object]:
        """error.response: the HTTP status and the first 2,000 characters of the answer."""
        return {
            "status": response.status_code,
            "body": self._redact(response.text[:BODY_KEEP_CHARS]),
        }

    def _redact(self, text: str) -> str:
        """Never let the secret, the tracking identifier or the Basic token into a message."""
        return redact_text(text, self._secret_forms)

    def _redact_xml(self, text: str) -> str:
        """`_redact` for XML text: the marker is escaped, so a redacted envelope stays XML."""
        return redact_text(text, self._secret_forms, xml_escape(REDACTED))


# -- writing -----------------------------------------------------------------------------------


class _UnexplainedRefusal(TargetRejected):
    """ReturnCode ≠ 1 without real validation words: the credentials are checked first."""


def _q(name: str) -> str:
    return f"{{{ATWS_NS}}}{name}"


def _xml_text(value: str) -> str:
    """Replace what XML 1.0 cannot carry (lxml would refuse the whole envelope)."""
    return _NOT_XML.sub("\ufffd", value)


def _operation(name: str) -> etree._Element:
    return etree.Element(_q(name), nsmap=_ATWS_DEFAULT)


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if text is not None:
        element.text = _xml_text(text)
    return element


def wsdl_order(entity_type: str, names: Iterable[str]) -> list[str]:
    """`names` in the entity's WSDL sequence order (`FIELD_ORDER`).

    A name the vendored WSDL does not list (a field a newer Autotask returned) keeps its place
    right after the known field it followed, so a read entity goes back as it came.
    """
    order = {name: index for index, name in enumerate(FIELD_ORDER.get(entity_type, ()))}
    keyed = []
    previous = -1
    for position, name in enumerate(names):
        previous = order.get(name, previous)
        keyed.append(((previous, position), name))
    return [name for _, name in sorted(keyed)]


def _write_entity(
    parent: etree._Element, entity: SoapEntity, *, nsmap: Mapping[str, str] | None = None
) -> etree._Element:
    """`<Entity xsi:type="…">`: id, UserDefinedFields, then the set fields in WSDL order.

    Entity is abstract in the WSDL, so xsi:type names the concrete type; the Entity base's
    sequence is Fields?, id, UserDefinedFields? and the concrete type's fields follow. Unset
    (None) fields are left out; `nsmap` declares prefixes on the element.
    """
    element = etree.SubElement(parent, _q("Entity"), nsmap=dict(nsmap) if nsmap else None)
    element.set(XSI_TYPE, entity.entity_type)
    entity_id = entity.get("id")
    _sub(element, "id", str(int(entity_id)) if entity_id is not None else "0")
    udfs = entity.get("UserDefinedFields")
    if udfs:
        holder = _sub(element, "UserDefinedFields")
        for name, value in dict(udfs).items():
            udf = _sub(holder, "UserDefinedField")
            _sub(udf, "Name", str(name))
            if value is not None:
                _sub(udf, "Value", str(value))
    names = [k for k, v in entity.items() if k not in ("id", "UserDefinedFields") and v is not None]
    for name in wsdl_order(entity.entity_type, names):
        text, xsd_type = _wire_value(entity[name], entity.xsd_types.get(name))
        field = _sub(element, name, text)
        # Entity fields are untyped (xs:anyType) in the WSDL, so each value says its type, as the
        # real answers do: <AccountID xsi:type="xsd:int"> (autotask-api.md §10, trepidity
        # query_ticket_9137_response.xml). A value a template wrote untyped stays untyped.
        if xsd_type:
            field.set(XSI_TYPE, xsd_type)
    return element


def _wire_value(value: Any, remembered: str | None) -> tuple[str, str]:
    """(text, xsi:type) for a field value; a type read with the value is kept when it fits."""
    if isinstance(value, XsdValue):
        return value.text, value.xsd_type
    local = remembered.split(":", 1)[1] if remembered and ":" in remembered else None
    if isinstance(value, bool):
        return ("true" if value else "false"), "xsd:boolean"
    if isinstance(value, int):
        if local in _INT_TYPES:
            return str(value), f"xsd:{local}"
        return str(value), "xsd:int" if -(2**31) <= value < 2**31 else "xsd:long"
    if isinstance(value, Decimal):
        return format(value, "f"), "xsd:decimal"
    if isinstance(value, float):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "INF" if value > 0 else "-INF"
        else:
            text = repr(value)
        return text, f"xsd:{local}" if local in ("double", "float") else "xsd:double"
    if isinstance(value, datetime):
        return _wire_datetime(value), "xsd:dateTime"
    if isinstance(value, str):
        return value, "xsd:string"
    raise TargetRejected(f"Cannot send a {type(value).__name__} value to Autotask SOAP.")


def _wire_datetime(value: datetime) -> str:
    """xsd:dateTime: an aware time in UTC with a Z; a naive one as it is (as it was read)."""
    if value.tzinfo is None:
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"


def build_queryxml(entity: str, conditions: Iterable[tuple[str, str, object]]) -> str:
    """A `<queryxml>` document: entity, then one `<field>Name<expression op=…>value</…>` each.

    Values are element text, escaped by lxml; the fields are AND-ed (OFFICIAL QueryXML.htm,
    autotask-api.md §10).
    """
    root = etree.Element("queryxml")
    etree.SubElement(root, "entity").text = entity
    query = etree.SubElement(root, "query")
    for name, op, value in conditions:
        field = etree.SubElement(query, "field")
        field.text = name
        expression = etree.SubElement(field, "expression", op=op)
        if value is not None:
            expression.text = _xml_text(str(value))
    return etree.tostring(root, encoding="unicode")


def _parse_queryxml(queryxml: str) -> etree._Element:
    try:
        document = _parse(queryxml.encode("utf-8"))
    except _Unreadable as e:
        raise TargetRejected(f"The queryxml is not usable: {e}") from e
    if document.tag != "queryxml" or document.find("query") is None:
        raise TargetRejected("The queryxml must be <queryxml> with <entity> and <query>.")
    if not (document.findtext("entity") or "").strip():
        raise TargetRejected("The queryxml names no entity.")
    return document


def _after_id(document: etree._Element, after: int) -> etree._Element:
    """The same query AND-ed with `id > after`: the next page (OFFICIAL QueryXML.htm, §10).

    The original conditions move into one `<condition>`, so a top-level OR in them cannot
    swallow the id filter.
    """
    page = parse_untrusted(etree.tostring(document))
    query = page.find("query")
    if query is None:  # _parse_queryxml checked it
        raise TargetRejected("The queryxml has no <query>.")
    group = etree.Element("condition")
    for child in list(query):
        group.append(child)
    query.text = None
    query.append(group)
    field = etree.SubElement(query, "field")
    field.text = "id"
    etree.SubElement(field, "expression", op="greaterthan").text = str(after)
    return page


# -- rendered requests ---------------------------------------------------------------------------


def parse_envelope(body: str) -> Envelope:
    """Read a rendered SOAP request with the hardened parser; TargetRejected if it is not one."""
    try:
        root = _parse(body.strip().encode("utf-8"))
    except _Unreadable as e:
        raise TargetRejected(f"The SOAP request is not usable: {e}.") from e
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise TargetRejected("The SOAP request is not a SOAP 1.1 envelope (soap:Envelope).")
    body_element = root.find(f"{{{SOAP_ENV_NS}}}Body")
    operation = next(_elements(body_element), None) if body_element is not None else None
    if operation is None:
        raise TargetRejected("The SOAP request's Body holds no operation.")
    if etree.QName(operation).namespace != ATWS_NS:
        raise TargetRejected(
            f"The SOAP operation {etree.QName(operation).localname} is not in the ATWS"
            f" namespace {ATWS_NS}."
        )
    return Envelope(root, operation)


def entity_type(element: etree._Element) -> str:
    """The concrete type an `<Entity xsi:type="Ticket">` names ("Ticket")."""
    # xsi:type="Ticket" names a type of the ATWS namespace (the default namespace there).
    return (element.get(XSI_TYPE) or "").rpartition(":")[2].strip()


def entity_id(element: etree._Element) -> int:
    """The `<id>` of an `<Entity>`; TargetRejected when it has none that names a record."""
    text = (element.findtext(_q("id")) or "").strip()
    if not text.isdigit() or int(text) <= 0:
        raise TargetRejected(
            f"The {entity_type(element) or 'entity'} to update has no usable id ({text!r})."
        )
    return int(text)


def merge_entity(current: SoapEntity, element: etree._Element) -> SoapEntity:
    """`current` with the fields an `<Entity>` element writes applied over it (theirs win)."""
    # SOAP update replaces the whole entity (OFFICIAL UpdateCall.htm, autotask-api.md §10), so
    # every field the element leaves out keeps its queried value. A field keeps the xsi:type
    # Autotask answered it with; one Autotask did not send keeps the element's type, or none, as
    # the element wrote it. `xsi:nil="true"` clears a field.
    merged = SoapEntity(current.entity_type, current, xsd_types=current.xsd_types)
    for child in _elements(element):
        name = etree.QName(child).localname
        if name in ("id", "Fields"):
            continue  # the id picks the record; Fields is metadata, never data
        if name == "UserDefinedFields":
            udfs = dict(merged.get("UserDefinedFields") or {})
            udfs.update(
                (udf.findtext(_q("Name")) or "", udf.findtext(_q("Value")))
                for udf in _children(child, "UserDefinedField")
            )
            merged["UserDefinedFields"] = udfs
            continue
        merged.xsd_types.pop(name, None)
        if child.get(XSI_NIL, "").strip().lower() in ("true", "1"):
            merged[name] = None
            continue
        was = current.get(name)
        declared = _xsd_local(child, child.get(XSI_TYPE))
        xsd_type = (
            current.xsd_types.get(name)
            or (was.xsd_type if isinstance(was, XsdValue) else None)
            or (f"xsd:{declared}" if declared else "")
        )
        text = child.text or ""
        merged[name] = XsdValue(text if xsd_type in ("", "xsd:string") else text.strip(), xsd_type)
    return merged


def replace_entity(element: etree._Element, entity: SoapEntity) -> None:
    """Put `entity`, written in WSDL order with its types, where the `<Entity>` element is."""
    parent = element.getparent()
    if parent is None:
        raise TargetRejected("The entity to replace is not inside an <Entities> element.")
    # The field types are written as "xsd:int": declare the prefixes if the envelope does not.
    missing = {p: ns for p, ns in (("xsi", XSI_NS), ("xsd", XSD_NS)) if parent.nsmap.get(p) != ns}
    written = _write_entity(parent, entity, nsmap=missing)
    written.tail = element.tail
    element.addprevious(written)
    parent.remove(element)


def ticket_ref(ticket: SoapEntity) -> TicketRef:
    """A TicketRef from a Ticket entity (id, TicketNumber, Status)."""
    try:
        status = ticket.get("Status")
        number = ticket.get("TicketNumber")
        if isinstance(status, XsdValue):
            status = status.text
        if isinstance(number, XsdValue):
            number = number.text
        return TicketRef(
            ticket_id=int(ticket["id"]),
            ticket_number=str(number) if number is not None else None,
            status=int(status) if status is not None else None,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise AutotaskUnavailable(
            f"Autotask answered a ticket without a usable id or status: {e}", ambiguous=False
        ) from e


def _answered_ticket(entities: Sequence[SoapEntity]) -> TicketRef | None:
    """The first Ticket an answer carries, or None (a note's answer, or an unusable Ticket)."""
    ticket = next((e for e in entities if e.entity_type == "Ticket"), None)
    try:
        return ticket_ref(ticket) if ticket is not None else None
    except AutotaskUnavailable:
        # The write was applied: an odd Status must not turn it into a failure. The worker
        # reads the id with its XPath and can read the ticket back.
        return None


# -- reading -----------------------------------------------------------------------------------


class _Unreadable(Exception):
    """An answer that is not the XML we can read (malformed, a DOCTYPE, no SOAP Body)."""


class _ZoneRefused(Exception):
    """getZoneInfo answered with a negative ErrorCode."""


class _Refused(Exception):
    """An ATWSResponse with a ReturnCode other than 1, and its ATWSError messages."""

    def __init__(self, return_code: int, messages: list[str]) -> None:
        super().__init__(f"ReturnCode {return_code}")
        self.return_code = return_code
        self.messages = messages


def _parse(data: bytes) -> etree._Element:
    """Parse untrusted XML with the one hardened parser; _Unreadable if malformed or a DOCTYPE."""
    try:
        return parse_untrusted(data)
    except XmlRefused as e:
        raise _Unreadable(str(e)) from e


def _body_content(data: bytes) -> etree._Element:
    """The element inside soap:Body: `{op}Response` or soap:Fault."""
    if not data.strip():
        raise _Unreadable("the answer is empty")
    envelope = _parse(data.strip())
    if envelope.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise _Unreadable("the answer is not a SOAP 1.1 envelope")
    body = envelope.find(f"{{{SOAP_ENV_NS}}}Body")
    content = next(_elements(body), None) if body is not None else None
    if content is None:
        raise _Unreadable("the SOAP Body is empty")
    return content


def _fault(content: etree._Element) -> tuple[str | None, list[str]]:
    """(faultcode, [faultstring]) of a SOAP 1.1 Fault (unqualified children, SOAP 1.1 §4.4)."""
    code = (content.findtext("faultcode") or "").strip() or None
    message = (content.findtext("faultstring") or "").strip()
    return code, [message] if message else []


def _text_messages(text: str) -> list[str]:
    """A non-SOAP error body (401 plain text, a proxy's page) as one short message."""
    text = text.strip()
    return [text[:300]] if text else []


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (no comments)."""
    return (child for child in parent if isinstance(child.tag, str))


def _find(parent: etree._Element | None, name: str) -> etree._Element | None:
    """The ATWS child element `name`, or None."""
    return parent.find(_q(name)) if parent is not None else None


def _child(parent: etree._Element, name: str) -> etree._Element:
    """The ATWS child element `name`; an answer without it is unreadable."""
    element = _find(parent, name)
    if element is None:
        raise _Unreadable(f"the answer has no {name}")
    return element


def _children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if parent is None else list(parent.iterfind(_q(name)))


def _required_text(parent: etree._Element | None, name: str) -> str:
    element = _find(parent, name)
    if element is None or element.text is None:
        raise _Unreadable(f"the answer has no {name}")
    return element.text


def _read_entity(element: etree._Element) -> SoapEntity:
    """`<Entity xsi:type="Ticket">` → SoapEntity; values converted by their xsi:type."""
    # xsi:type="Ticket" names a type of the ATWS namespace (the answer's default namespace).
    entity = SoapEntity((element.get(XSI_TYPE) or "").rpartition(":")[2].strip())
    for child in _elements(element):
        name = etree.QName(child).localname
        if name == "Fields":
            continue  # field metadata, never data
        if name == "id":
            entity["id"] = int((child.text or "").strip())
        elif name == "UserDefinedFields":
            entity["UserDefinedFields"] = {
                udf.findtext(_q("Name")) or "": udf.findtext(_q("Value"))
                for udf in _children(child, "UserDefinedField")
            }
        elif child.get(XSI_NIL, "").strip().lower() not in ("true", "1"):
            value, xsd_type = _read_value(child)
            entity[name] = value
            if xsd_type:
                entity.xsd_types[name] = xsd_type
    if "id" not in entity:
        raise _Unreadable("an entity has no id")
    return entity


def _xsd_local(element: etree._Element, qname: str | None) -> str | None:
    """The XML Schema type an xsi:type names (e.g. "int"), or None for another namespace."""
    if not qname:
        return None
    prefix, _, local = qname.strip().rpartition(":")
    if element.nsmap.get(prefix or None) != XSD_NS:
        return None
    return local


def _read_value(element: etree._Element) -> tuple[Any, str | None]:
    """(Python value, remembered "xsd:…" type) of a field element."""
    text = element.text or ""
    local = _xsd_local(element, element.get(XSI_TYPE))
    if local is None or local == "string":
        return text, ("xsd:string" if local else None)
    xsd_type = f"xsd:{local}"
    stripped = text.strip()
    try:
        if local in _INT_TYPES:
            return int(stripped), xsd_type
        if local == "boolean":
            if stripped.lower() in ("true", "1"):
                return True, xsd_type
            if stripped.lower() in ("false", "0"):
                return False, xsd_type
        elif local == "decimal":
            return Decimal(stripped), xsd_type
        elif local in ("double", "float"):
            return float({"INF": "inf", "-INF": "-inf"}.get(stripped, stripped)), xsd_type
        elif local == "dateTime":
            return datetime.fromisoformat(stripped.replace("Z", "+00:00")), xsd_type
    except (ValueError, InvalidOperation):
        pass
    # A type we do not convert, or text we cannot: keep it exactly, to send back as it came.
    return XsdValue(text, xsd_type), None


# -- helpers -----------------------------------------------------------------------------------
