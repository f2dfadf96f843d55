"""Autotask's REST API as the connector calls it: zone lookup, auth headers, one `_request`.

Modelled on Sentry's BaseApiClient (../shared/reference/style-anchors.md §9.3): endpoint paths as
class constants, one thin method per remote call, every failure turned into a typed
`connector.errors.TargetError` in one place (`_request` and `classify_failure`), and pagination in
one helper. REST facts and their sources: ../shared/reference/autotask-api.md §1–§8.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

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
from adapters.targets.autotask.profile import (
    GENERIC_REFUSAL_ATTEMPTS,
    RATE_LIMIT_MARKERS,
    REST_VERSION_PATH,
    REST_ZONE_INFORMATION,
    entity_of,
)
from connector.domain import OutboundRequest, TargetResponse, redact
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
)

T = TypeVar("T")

#: Autotask answers at most 500 records per query page. Reference: autotask-api.md §4.
MAX_PAGE_SIZE = 500

#: A query never follows more pages than this (500 × 1000 records), so a server that keeps
#: answering with a nextPageUrl cannot loop us forever.
MAX_PAGES = 1000


# -- the one table of Autotask's answers → our errors ------------------------------------------
#
# Read by status and structure, never by the sandbox's wording. Reference: autotask-api.md §7
# (status codes; Autotask's own `{"errors": [...]}` body), §2 (a wrong secret is 401; an unknown
# user or integration code is a 500, "typically" with no more than "Something went wrong"), §8
# and §14 (thresholds; real validation wording).


class Refusal(StrEnum):
    """How a non-2xx answer is taken."""

    #: Autotask refused this request (validation, reference, permission): never retried.
    REJECTED = "rejected"
    #: Autotask refused in its own shape without saying why: the credentials are checked, then
    #: the request is tried GENERIC_REFUSAL_ATTEMPTS times in all.
    GENERIC = "generic"
    #: Slow down: 429, or the thread or hourly threshold on any status.
    RATE_LIMITED = "rate_limited"
    #: The credentials were refused.
    AUTH = "auth"
    #: No answer from Autotask itself (a gateway, a non-Autotask body, 503): retried.
    UNAVAILABLE = "unavailable"


def classify_failure(status: int, messages: Sequence[str], *, autotask_body: bool) -> Refusal:
    """Map a non-2xx answer to how it is taken.

    `autotask_body` says whether the body is Autotask's error shape (`{"errors": [...]}`), the
    proof that Autotask itself ran the request and refused it.
    """
    text = " ".join(messages).lower()
    if 300 <= status < 400:
        # Redirects are never followed: an outbound call goes only where the zone lookup
        # allowed (reliability-security.md §4.5, ASVS 15.3.2).
        return Refusal.REJECTED
    if status == 429 or any(marker in text for marker in RATE_LIMIT_MARKERS):
        return Refusal.RATE_LIMITED
    if status in (401, 403):
        return Refusal.AUTH
    if status in (408, 502, 503, 504):
        return Refusal.UNAVAILABLE  # a gateway or the server gave up: Autotask never said no
    if status == 500:
        if not autotask_body:
            return Refusal.UNAVAILABLE  # an HTML error page, an empty body: not Autotask's answer
        return Refusal.REJECTED if is_validation_refusal(messages) else Refusal.GENERIC
    if 400 <= status < 500:
        return Refusal.REJECTED  # 400, 404 unknown route, 405 (§7): the request is wrong
    return Refusal.UNAVAILABLE


class _GenericRefusal(AutotaskUnavailable, UnexplainedRefusal):
    """Autotask refused in its own error shape without a reason (see Refusal.GENERIC)."""


class AutotaskRestClient(AutotaskHttpClient):
    """One Autotask API user's REST client; every failure is a `connector.errors.TargetError`."""

    THRESHOLD_INFORMATION = "ThresholdInformation"
    TICKETS = "Tickets"
    TICKET = "Tickets/{ticket_id}"
    TICKETS_QUERY = "Tickets/query"
    TICKET_NOTES = "Tickets/{ticket_id}/Notes"

    LOG_NAME = "autotask.rest"
    ZONE_LOG_FIELD = "base_url"

    # -- remote operations ---------------------------------------------------------------------

    def create_ticket(self, body: Mapping[str, Any]) -> int:
        """POST Tickets; return the new ticket's id. Unset (None) fields are not sent."""
        return self._call("POST", "Tickets", self.TICKETS, body=_without_nulls(body), read=_item_id)

    def patch_ticket(self, body: Mapping[str, Any]) -> int:
        """PATCH Tickets: change only the fields given (None ones are not sent); needs `id`."""
        if body.get("id") is None:
            raise TargetRejected("PATCH Tickets needs the ticket's id in the body.")
        return self._call(
            "PATCH", "Tickets", self.TICKETS, body=_without_nulls(body), read=_item_id
        )

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """GET Tickets/{id}; None when Autotask answers `{"item": null}` (no such ticket)."""
        path = self.TICKET.format(ticket_id=int(ticket_id))
        return self._call("GET", "Tickets", path, read=_single_item)

    def query_tickets(
        self,
        filters: Sequence[Mapping[str, Any]],
        include_fields: Sequence[str] | None = None,
        max_records: int = MAX_PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Query Tickets with a QueryModel filter list; return the items of every page.

        `max_records` is the page size (1–500); all pages are followed.
        """
        return self._query("Tickets", self.TICKETS_QUERY, filters, include_fields, max_records)

    def create_note(self, ticket_id: int, body: Mapping[str, Any]) -> int:
        """POST Tickets/{id}/Notes; return the new note's id. Unset (None) fields are not sent."""
        path = self.TICKET_NOTES.format(ticket_id=int(ticket_id))
        return self._call("POST", "TicketNotes", path, body=_without_nulls(body), read=_item_id)

    def threshold_information(self) -> dict[str, Any]:
        """GET ThresholdInformation: the hourly threshold, its timeframe and the current count."""
        return self._call("GET", "ThresholdInformation", self.THRESHOLD_INFORMATION, read=_object)

    def send(self, request: OutboundRequest) -> TargetResponse:
        """Send a rendered request with the auth headers; a non-2xx answer raises a TargetError."""
        # The answer goes back as text: the worker reads the ticket id from it with the admin's
        # JSONPath, so a 2xx that is not JSON is not an error here.
        self._check_outbound_url(request.url, what="request URL")
        method = request.method.upper()
        entity = entity_of(request.url)
        base = self._zone
        try:
            try:
                return self._send(method, entity, request.url, request)
            except _GenericRefusal as e:
                raise self._unless_credentials_refused(e) from e
        except TargetAuthError as e:
            # As in `_call`: a 401 can mean the database moved zone (django-autotask
            # MAX_401_ATTEMPTS = 1, autotask-api.md §2); a URL under the old zone is sent again
            # under the new one, once, and only when the zone actually changed.
            if base is None or not request.url.startswith(base):
                raise
            fresh = self._moved_zone(e, base)
            if fresh is None:
                raise
            url = fresh + request.url[len(base) :]
            self._check_outbound_url(url, what="request URL")
            return self._send(method, entity, url, request)

    def _send(self, method: str, entity: str, url: str, request: OutboundRequest) -> TargetResponse:
        headers = merge_headers(request.headers, self._headers(authenticated=True))
        response, _ = self._exchange(
            method,
            entity,
            url,
            read=_as_is,
            headers=headers,
            data=request.body.encode("utf-8"),
        )
        return TargetResponse(
            status=response.status_code,
            body=response_text(response, self._redact),
            sent=sent_record(method, url, headers, request.body, self._redact),
        )

    # -- zone ----------------------------------------------------------------------------------

    def base_url(self, *, refresh: bool = False) -> str:
        """The zone's REST base URL (…/atservicesrest/v1.0/), looked up and cached for a TTL."""
        return self._cached_zone(refresh=refresh)

    def _lookup_zone(self) -> str:
        """Ask zoneInformation (without credentials) where this user's database lives."""
        # The lookup URL is configuration, but it gets the username, so it meets the same rule.
        self._check_outbound_url(self.zone_lookup_url, what="zone lookup URL")
        lookup = self.zone_lookup_url
        zone = self._request(
            "GET",
            "ZoneInformation",
            (lookup if lookup.endswith("/") else lookup + "/") + REST_ZONE_INFORMATION,
            params={"user": self.username},
            authenticated=False,
            read=_zone_url,
        )
        # Clients append the version to `url` (django-autotask); one third-party mock already
        # carries it, so do not add it twice. Reference: autotask-api.md §1 (form UNCERTAIN).
        base = zone if zone.endswith("/") else zone + "/"
        if not base.lower().endswith("/" + REST_VERSION_PATH):
            base += REST_VERSION_PATH
        self._check_outbound_url(base, what="zone URL")
        return base

    # -- plumbing ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        entity: str,
        path: str,
        *,
        read: Callable[[Any], tuple[T, int | None]],
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> T:
        """Call base URL + path; on a 401 look the zone up again once (`_moved_zone`)."""
        base = self.base_url()
        try:
            try:
                return self._request(
                    method, entity, base + path, params=params, body=body, read=read
                )
            except _GenericRefusal as e:
                raise self._unless_credentials_refused(e) from e
        except TargetAuthError as e:
            fresh = self._moved_zone(e, base)
            if fresh is None:
                raise
            return self._request(method, entity, fresh + path, params=params, body=body, read=read)

    def _query(
        self,
        entity: str,
        path: str,
        filters: Sequence[Mapping[str, Any]],
        include_fields: Sequence[str] | None,
        max_records: int,
    ) -> list[dict[str, Any]]:
        """Run a query and follow pageDetails.nextPageUrl verbatim until it is null."""
        if not 1 <= max_records <= MAX_PAGE_SIZE:
            raise TargetRejected(f"max_records must be between 1 and {MAX_PAGE_SIZE}.")
        search: dict[str, Any] = {"filter": [dict(f) for f in filters], "maxRecords": max_records}
        if include_fields:
            # "For search results that contain more than 500 results, you must include Id as a
            # field" (REST_Advanced_Query_Features.htm, autotask-api.md §4).
            fields = list(include_fields)
            if not any(name.lower() == "id" for name in fields):
                fields.insert(0, "id")
            search["includeFields"] = fields
        # GET with ?search=: the next page is then a GET too (a POSTed query's nextPageUrl must be
        # POSTed again, which some clients report; autotask-api.md §4, UNCERTAIN).
        params = {"search": _json(search)}
        items, next_url = self._call("GET", entity, path, params=params, read=_page)
        seen: set[str] = set()
        while next_url:
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise AutotaskUnavailable(
                    f"Autotask {entity} query paging did not end after {len(seen)} pages.",
                    ambiguous=False,
                )
            seen.add(next_url)
            self._check_same_host(next_url, self._zone or "")
            page, next_url = self._request("GET", entity, next_url, read=_page)
            items.extend(page)
        return items

    def _check_same_host(self, url: str, base_url: str) -> None:
        """A nextPageUrl gets our credentials, so it must point at the zone we already trust."""
        base = urlsplit(base_url)
        target = urlsplit(url)
        if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise TargetRejected(
                f"Autotask nextPageUrl host {target.netloc!r} is not the zone host"
                f" {base.netloc!r}; refusing to follow it."
            )

    def _headers(self, *, authenticated: bool) -> dict[str, str]:
        """Autotask's three auth headers (autotask-api.md §2), JSON in and out."""
        headers = {"Accept": "application/json"}
        if authenticated:
            headers.update(
                {
                    "ApiIntegrationCode": self._integration_code,
                    "UserName": self.username,
                    "Secret": self._secret,
                    "Content-Type": "application/json",
                }
            )
        return headers

    def _request(
        self,
        method: str,
        entity: str,
        url: str,
        *,
        read: Callable[[Any], tuple[T, int | None]],
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> T:
        """Send one request; return `read(parsed JSON)`, or raise the mapped TargetError."""

        def parsed(response: requests.Response) -> tuple[T, int | None]:
            return read(response.json())

        value, _ = self._exchange(
            method,
            entity,
            url,
            read=parsed,
            headers=self._headers(authenticated=authenticated),
            params=params,
            body=body,
            authenticated=authenticated,
        )
        return value

    def _exchange(
        self,
        method: str,
        entity: str,
        url: str,
        *,
        read: Callable[[requests.Response], tuple[T, int | None]],
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        authenticated: bool = True,
    ) -> tuple[T, requests.Response]:
        """Send one request; return (`read(response)`, response), or raise the mapped TargetError.

        Every call, failed or not, is reported to the recorder exactly once; the recorder must
        not raise (its exception would replace the call's result).
        """
        with self._recorded(method, entity) as call:
            response = self._http(
                method,
                url,
                what=f"{method} {entity}",
                headers=headers,
                params=params,
                json=body,
                data=data,
            )
            call.status = response.status_code
            if not 200 <= call.status < 300:
                raise self._status_error(method, entity, response, zone=not authenticated)
            try:
                value, call.records = read(response)
            except (ValueError, KeyError, TypeError) as e:
                # Not JSON, or not the shape Autotask documents: no usable answer. A write that
                # got a 2xx was probably applied, so its outcome is unknown.
                raise AutotaskUnavailable(
                    self._redact(f"Autotask {method} {entity}: unexpected answer: {e}"),
                    ambiguous=method != "GET",
                    response=self._summary(response),
                ) from e
            return value, response

    def _status_error(
        self, method: str, entity: str, response: requests.Response, *, zone: bool
    ) -> TargetError:
        """Map a non-2xx answer through the one table, `classify_failure`."""
        status = response.status_code
        summary = self._summary(response)
        messages = _messages(summary["body"])
        detail = "; ".join(messages) or response.reason or "no message"
        message = self._redact(f"Autotask {method} {entity}: HTTP {status}: {detail}")
        if zone and status == 500 and messages:
            # An unknown user gets a 500 from zoneInformation, "Zone information could not be
            # determined" (autotask-api.md §1, §14): a credential problem, not an outage.
            return TargetAuthError(message, response=summary)
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            message = self._redact(
                f"Autotask {method} {entity}: HTTP {status} redirect to {location!r} not followed"
            )
        refusal = classify_failure(
            status, messages, autotask_body=_is_autotask_error(summary["body"])
        )
        wait = retry_after(response.headers)
        if refusal is Refusal.RATE_LIMITED:
            return TargetRateLimited(message, response=summary, retry_after=wait)
        if refusal is Refusal.AUTH:
            return TargetAuthError(message, response=summary)
        if refusal is Refusal.REJECTED:
            explanation = explain_refusal(messages)
            return TargetRejected(
                f"{message} ({explanation})" if explanation else message, response=summary
            )
        if refusal is Refusal.GENERIC:
            return _GenericRefusal(
                message,
                ambiguous=method != "GET",
                response=summary,
                retry_after=wait,
                max_attempts=GENERIC_REFUSAL_ATTEMPTS,
            )
        return AutotaskUnavailable(
            message,
            ambiguous=method != "GET" and status not in (408, 503),
            response=summary,
            retry_after=wait,
        )

    def _check_credentials(self) -> None:
        """GET ThresholdInformation: it needs nothing but the credentials."""
        self._request(
            "GET",
            "ThresholdInformation",
            self.base_url() + self.THRESHOLD_INFORMATION,
            read=_object,
        )

    def _summary(self, response: requests.Response) -> dict[str, object]:
        """error.response: status and parsed body (or its first 2,000 chars)."""
        body: object
        try:
            body = response.json()
        except ValueError:
            body = response.text[:BODY_KEEP_CHARS]
        return {"status": response.status_code, "body": redact(body, self._secrets)}


# -- readers: the response shapes we accept (autotask-api.md §1, §4, §8) ------------------------


def _object(payload: Any) -> tuple[dict[str, Any], int | None]:
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    return payload, None


def _as_is(response: requests.Response) -> tuple[requests.Response, int | None]:
    """A sent request's answer, read by the worker; records counted when it is a query page."""
    try:
        payload = response.json()
    except ValueError:
        return response, None
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        return response, len(payload["items"])
    return response, None


def _zone_url(payload: Any) -> tuple[str, int | None]:
    """ZoneInformationResultModel: {"zoneName", "url", "webUrl", "ci"}."""
    url = _object(payload)[0]["url"]
    if not isinstance(url, str) or not url:
        raise TypeError("zoneInformation has no url")
    return url, None


def _item_id(payload: Any) -> tuple[int, int | None]:
    """OperationResultModel: {"itemId": id}."""
    item_id = _object(payload)[0]["itemId"]
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise TypeError(f"itemId {item_id!r} is not an integer")
    return item_id, None


def _single_item(payload: Any) -> tuple[dict[str, Any] | None, int | None]:
    """ItemQueryResultModel: {"item": {...}} or {"item": null} for a missing id."""
    item = _object(payload)[0]["item"]
    if item is None:
        return None, 0
    if not isinstance(item, dict):
        raise TypeError("item is not an object")
    return item, 1


def _page(payload: Any) -> tuple[tuple[list[dict[str, Any]], str | None], int | None]:
    """QueryActionResult: {"items": [...], "pageDetails": {..., "nextPageUrl"}}."""
    body = _object(payload)[0]
    items = body["items"]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TypeError("items is not a list of objects")
    details = body.get("pageDetails") or {}
    if not isinstance(details, dict):
        raise TypeError("pageDetails is not an object")
    next_url = details.get("nextPageUrl")
    if next_url is not None and not isinstance(next_url, str):
        raise TypeError("nextPageUrl is not a string")
    return (items, next_url or None), len(items)


# -- helpers -----------------------------------------------------------------------------------


def _without_nulls(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset fields: explicit nulls on create fail with HTTP 500.

    Reference: autotask-api.md §3 (KelvinTegelaar/AutotaskAPI issue #26).
    """
    return {key: value for key, value in body.items() if value is not None}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_autotask_error(body: object) -> bool:
    """Whether a body is Autotask's error shape: `{"errors": ["…", …]}` (autotask-api.md §7)."""
    if not isinstance(body, dict):
        return False
    errors = body.get("errors")
    return isinstance(errors, list) and bool(errors) and all(isinstance(e, str) for e in errors)


def _messages(body: object) -> list[str]:
    """Autotask's `{"errors": ["…"]}` messages, or ASP.NET's `{"Message": "…"}` (§7)."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [str(e) for e in errors if e]
        if isinstance(errors, str):
            return [errors]
        for key in ("Message", "message"):
            message = body.get(key)
            if isinstance(message, str):
                return [message]
        return []
    if isinstance(body, str) and body.strip():
        return [body.strip()[:300]]
    return []
