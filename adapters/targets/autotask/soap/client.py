"""Autotask's SOAP API (ATWS 1.6) as the connector calls it: zone lookup, operations, errors.

The SOAP twin of `adapters.targets.autotask.rest.client` (same constructor, same error model,
same SSRF guard, one base: `adapters.targets.autotask.http`), modelled on Sentry's BaseApiClient
(../shared/reference/style-anchors.md §9.3): one thin method per remote operation, every failure
turned into a typed `connector.errors.TargetError` in one place (`_exchange` and
`classify_failure`), and query paging in one helper. The XML is written and read by `atws`,
`envelopes` and `answers`. SOAP facts and their sources: ../shared/reference/autotask-api.md §10.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar
from xml.sax.saxutils import escape as xml_escape

import requests
from lxml import etree

from adapters.targets.autotask.errors import (
    AutotaskUnavailable,
    UnexplainedRefusal,
    explain_refusal,
    is_validation_refusal,
)
from adapters.targets.autotask.http import (
    BODY_KEEP_CHARS,
    AutotaskHttpClient,
    merge_headers,
    response_text,
    retry_after,
    sent_record,
)
from adapters.targets.autotask.profile import ATWS_NS, RATE_LIMIT_MARKERS, SOAP_AUTH_MARKERS
from adapters.targets.autotask.soap.answers import (
    Refused,
    ZoneRefused,
    answered_ticket,
    atws_answer,
    body_content,
    entity_infos,
    field_infos,
    read_fault,
    text_messages,
    usage_figures,
    zone_answer,
)
from adapters.targets.autotask.soap.atws import (
    SOAP_ENV_NS,
    SoapEntity,
    Unreadable,
    operation_element,
    sub_element,
    write_entity,
)
from adapters.targets.autotask.soap.envelopes import (
    Envelope,
    add_integration_code,
    after_id,
    build_envelope,
    parse_queryxml,
)
from connector.domain import REDACTED, OutboundRequest, TargetResponse, ZoneAnswer, redact_text
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)

T = TypeVar("T")

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


# -- the one table of Autotask's answers → our errors ------------------------------------------
#
# Reference: autotask-api.md §10 (401 for bad Basic credentials; ReturnCode ≠ 1 with ATWSError
# messages; "IntegrationCode is invalid."), §7 and §8 (thread and hourly thresholds, 429).


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
    if status in (401, 403) or any(marker in text for marker in SOAP_AUTH_MARKERS):
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


class _UnexplainedRefusal(TargetRejected, UnexplainedRefusal):
    """ReturnCode ≠ 1 without real validation words: the credentials are checked first."""


class AutotaskSoapClient(AutotaskHttpClient):
    """One Autotask API user's SOAP (ATWS 1.6) client; every failure is a `TargetError`."""

    #: SOAPAction is the namespace plus the operation (WSDL soap:operation soapAction).
    SOAP_ACTION = ATWS_NS + "{operation}"

    LOG_NAME = "autotask.soap"
    ZONE_LOG_FIELD = "zone_url"

    @property
    def _basic(self) -> str:
        """The HTTP Basic token of the API user (autotask-api.md §10), UTF-8 encoded."""
        return base64.b64encode(f"{self.username}:{self._secret}".encode()).decode("ascii")

    def _derived_secrets(self) -> tuple[str, ...]:
        """The Basic token carries the secret, so redaction hides it too."""
        return (self._basic,)

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

    def query(self, queryxml: str, *, limit: int | None = None) -> list[SoapEntity]:
        """query with a `<queryxml>` document; return the entities of every page, by id.

        Autotask answers at most 500 entities per call, sorted by id; the query is repeated
        with `id > last id` until a page is short (OFFICIAL QueryXML.htm, autotask-api.md §10),
        or until `limit` entities are found.
        """
        document = parse_queryxml(queryxml)
        entity = (document.findtext("entity") or "").strip()
        found: list[SoapEntity] = []
        after: int | None = None
        for _ in range(MAX_PAGES):
            page_query = document if after is None else after_id(document, after)
            operation = operation_element("query")
            sub_element(operation, "sXML", etree.tostring(page_query, encoding="unicode"))
            answer = self._call("query", entity, operation, write=False, read=atws_answer)
            found.extend(answer.entities)
            if limit is not None and len(found) >= limit:
                return found[:limit]
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
        operation = operation_element("getThresholdAndUsageInfo")
        answer = self._call(
            "getThresholdAndUsageInfo", "", operation, write=False, read=atws_answer
        )
        usage = usage_figures(answer.info_messages)
        if not usage:
            raise AutotaskUnavailable(
                "Autotask getThresholdAndUsageInfo answered without usage figures.",
                ambiguous=False,
            )
        return usage

    def entity_info(self) -> dict[str, dict[str, bool]]:
        """getEntityInfo: per entity, whether it may be created, queried, updated (canCreate …)."""
        operation = operation_element("GetEntityInfo")
        return self._call("GetEntityInfo", "", operation, write=False, read=entity_infos)

    def field_info(self, entity: str) -> list[dict[str, object]]:
        """GetFieldInfo(psObjectType): the entity's fields with their picklists."""
        operation = operation_element("GetFieldInfo")
        sub_element(operation, "psObjectType", entity)
        return self._call("GetFieldInfo", entity, operation, write=False, read=field_infos)

    def send_envelope(self, request: OutboundRequest, envelope: Envelope) -> TargetResponse:
        """POST `envelope` (parsed from `request`) with HTTP Basic; a failure raises its error."""
        # The answer is read as every call's is (Fault, ReturnCode ≠ 1, unreadable → typed
        # errors); `TargetResponse.sent` is the envelope as sent, credentials redacted.
        if request.method.upper() != "POST":
            raise TargetRejected(f"SOAP requests are POSTed envelopes, not {request.method}.")
        self.check_request_url(request.url)
        add_integration_code(envelope.root, self._integration_code)
        name = envelope.name
        entity = envelope.entity()
        data = etree.tostring(envelope.root, xml_declaration=True, encoding="utf-8")
        headers = merge_headers(request.headers, self._headers(name, authenticated=True))
        # Reads answer with entities, every other operation changes something: for those a
        # 2xx whose answer cannot be read leaves the outcome unknown.
        write = name != "query" and not name.lower().startswith("get")
        return self._sent_following_the_zone(
            request.url,
            self._zone,
            lambda url: self._send(name, entity, url, data, headers, write=write),
        )

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
            operation_name, entity, url, data, headers, read=atws_answer, write=write
        )
        return TargetResponse(
            status=response.status_code,
            body=response_text(response, self._redact_xml),
            sent={
                **sent_record("POST", url, headers, "", self._redact),
                "body": self._redact_xml(data.decode("utf-8", errors="replace")),
            },
            ticket=answered_ticket(answer.entities),
        )

    # -- zone ----------------------------------------------------------------------------------

    def zone_url(self, *, refresh: bool = False) -> str:
        """The zone's SOAP endpoint (…/ATServices/1.6/atws.asmx), looked up and cached for a TTL."""
        return self._cached_zone(refresh=refresh)

    def _lookup_zone(self) -> ZoneAnswer:
        """Ask getZoneInfo (without credentials) where this user's database lives."""
        # The lookup URL is configuration, but it gets the username, so it meets the same rule.
        self._check_outbound_url(self.zone_lookup_url, what="zone lookup URL")
        operation = operation_element("getZoneInfo")
        sub_element(operation, "UserName", self.username)
        # getZoneInfo "does not require authentication or a tracking identifier" (OFFICIAL
        # GetZoneInfoCall.htm, autotask-api.md §10), so neither is sent.
        answer = self._request(
            "getZoneInfo",
            "",
            self.zone_lookup_url,
            operation,
            authenticated=False,
            write=False,
            read=partial(zone_answer, username=self.username),
        )
        self._check_outbound_url(answer.url, what="zone URL")
        return answer

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, operation_name: str, entities: Sequence[SoapEntity]) -> list[SoapEntity]:
        if not entities:
            return []
        if len(entities) > MAX_BATCH:
            raise TargetRejected(
                f"Autotask takes at most {MAX_BATCH} entities per {operation_name} call;"
                f" got {len(entities)}."
            )
        operation = operation_element(operation_name)
        holder = sub_element(operation, "Entities")
        for entity in entities:
            write_entity(holder, entity)
        kinds = ",".join(dict.fromkeys(e.entity_type for e in entities))
        answer = self._call(operation_name, kinds, operation, write=True, read=atws_answer)
        if len(answer.entities) != len(entities):
            # The write succeeded (ReturnCode 1) but we cannot tell which ids it made.
            raise AutotaskUnavailable(
                f"Autotask {operation_name} {kinds}: answered {len(answer.entities)} entities"
                f" for {len(entities)} sent; outcome unknown.",
                ambiguous=True,
            )
        return answer.entities

    def _call(
        self,
        operation_name: str,
        entity: str,
        operation: etree._Element,
        *,
        write: bool,
        read: Callable[[etree._Element], tuple[T, int | None]],
    ) -> T:
        """Call the zone's endpoint; after a failure that suggests a wrong zone (a 401 …) look
        the zone up again and, if it moved, call there once (`_moved_zone`)."""
        url = self.zone_url()
        try:
            try:
                answer = self._request(
                    operation_name, entity, url, operation, write=write, read=read
                )
            except _UnexplainedRefusal as e:
                if operation_name == "getThresholdAndUsageInfo":
                    raise  # the credentials check itself: its caller judges
                raise self._unless_credentials_refused(e) from e
        except TargetError as e:
            fresh = self._moved_zone(e, url)
            if fresh is None:
                raise
            return self._request(operation_name, entity, fresh, operation, write=write, read=read)
        self._confirm_zone(url)
        return answer

    def _check_credentials(self) -> None:
        """getThresholdAndUsageInfo: it needs nothing but the credentials."""
        self.threshold_and_usage()

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
            build_envelope(
                operation, integration_code=self._integration_code if authenticated else None
            ),
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
        what = f"{operation_name} {entity}".strip()
        # Every SOAP call is an HTTP POST; the operation goes with the entity, as
        # "Ticket.create" (the activity log's method column holds 10 characters).
        logged = (f"{entity}.{operation_name}" if entity else operation_name)[:100]
        with self._recorded("POST", logged) as call:
            response = self._http("POST", url, what=what, headers=headers, data=data, note=call)
            call.status = response.status_code
            try:
                content: etree._Element | None = body_content(response.content)
                problem = ""
            except Unreadable as e:
                content, problem = None, str(e)
            if content is not None and content.tag == f"{{{SOAP_ENV_NS}}}Fault":
                raise self._failure(what, response, read_fault(content))
            if not 200 <= call.status < 300:
                raise self._failure(what, response, (None, text_messages(response.text)))
            try:
                if content is None:
                    raise Unreadable(problem)
                value, call.records = read(content)
            except Refused as e:
                call.records = 0
                raise self._failure(what, response, (None, e.messages), e.return_code) from e
            except ZoneRefused as e:
                raise TargetAuthError(self._redact(str(e)), response=self._summary(response)) from e
            except (Unreadable, ValueError, TypeError, KeyError) as e:
                # Not XML, a DOCTYPE, or not the shape the WSDL documents: no usable answer. A
                # write that got a 2xx was probably applied, so its outcome is unknown.
                raise AutotaskUnavailable(
                    self._redact(f"Autotask {what}: unexpected answer: {e}"),
                    ambiguous=write,
                    response=self._summary(response),
                ) from e
            return value, response

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

    def _summary(self, response: requests.Response) -> dict[str, object]:
        """error.response: the HTTP status and the first 2,000 characters of the answer."""
        return {
            "status": response.status_code,
            "body": self._redact(response.text[:BODY_KEEP_CHARS]),
        }

    def _redact_body(self, text: str) -> str:
        """Bodies are XML: the marker is escaped (`_redact_xml`)."""
        return self._redact_xml(text)

    def _redact_xml(self, text: str) -> str:
        """`_redact` for XML text: the marker is escaped, so a redacted envelope stays XML."""
        return redact_text(text, self._secret_forms, xml_escape(REDACTED))
