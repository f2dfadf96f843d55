"""Autotask's REST API as the connector calls it: zone lookup, auth headers, one `_request`.

Modelled on Sentry's BaseApiClient (../shared/reference/style-anchors.md §9.3), on the base shared
with SOAP (`adapters.targets.autotask.http`): endpoint paths as class constants, one thin method
per remote call, every failure turned into a typed `connector.errors.TargetError` in one place
(`_exchange`, through `rest.answers.classify_failure`), and pagination in one helper. REST facts
and their sources: ../shared/reference/autotask-api.md §1–§8.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from adapters.targets.autotask.errors import (
    AutotaskUnavailable,
    UnexplainedRefusal,
    explain_refusal,
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
    REST_VERSION_PATH,
    REST_ZONE_INFORMATION,
    entity_of,
)
from adapters.targets.autotask.rest.answers import (
    Refusal,
    as_is,
    classify_failure,
    fields_of,
    info_of,
    is_autotask_error,
    item_id,
    messages_of,
    object_of,
    page_of,
    single_item,
    zone_of,
)
from connector.domain import OutboundRequest, TargetResponse, ZoneAnswer, redact
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
        return self._call("POST", "Tickets", self.TICKETS, body=_without_nulls(body), read=item_id)

    def patch_ticket(self, body: Mapping[str, Any]) -> int:
        """PATCH Tickets: change only the fields given (None ones are not sent); needs `id`."""
        if body.get("id") is None:
            raise TargetRejected("PATCH Tickets needs the ticket's id in the body.")
        return self._call("PATCH", "Tickets", self.TICKETS, body=_without_nulls(body), read=item_id)

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """GET Tickets/{id}; None when Autotask answers `{"item": null}` (no such ticket)."""
        path = self.TICKET.format(ticket_id=int(ticket_id))
        return self._call("GET", "Tickets", path, read=single_item)

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

    def query(
        self,
        entity: str,
        filters: Sequence[Mapping[str, Any]],
        include_fields: Sequence[str] | None = None,
        max_records: int = MAX_PAGE_SIZE,
        *,
        all_pages: bool = True,
    ) -> list[dict[str, Any]]:
        """Query any entity ({Entity}/query); the items of every page, or of the first only."""
        return self._query(
            entity, f"{entity}/query", filters, include_fields, max_records, all_pages=all_pages
        )

    def entity_information(self, entity: str) -> dict[str, Any]:
        """GET {Entity}/entityInformation: what the API allows on it, and the user's access."""
        return self._call("GET", entity, f"{entity}/entityInformation", read=info_of)

    def entity_fields(self, entity: str) -> list[dict[str, Any]]:
        """GET {Entity}/entityInformation/fields: its field definitions, picklists included."""
        return self._call("GET", entity, f"{entity}/entityInformation/fields", read=fields_of)

    def create_note(self, ticket_id: int, body: Mapping[str, Any]) -> int:
        """POST Tickets/{id}/Notes; return the new note's id. Unset (None) fields are not sent."""
        path = self.TICKET_NOTES.format(ticket_id=int(ticket_id))
        return self._call("POST", "TicketNotes", path, body=_without_nulls(body), read=item_id)

    def create_entity(self, entity: str, path: str, body: Mapping[str, Any]) -> int:
        """POST any entity (or child entity) at `path`; return the new record's id."""
        return self._call("POST", entity, path, body=_without_nulls(body), read=item_id)

    def threshold_information(self) -> dict[str, Any]:
        """GET ThresholdInformation: the hourly threshold, its timeframe and the current count."""
        return self._call("GET", "ThresholdInformation", self.THRESHOLD_INFORMATION, read=object_of)

    def send(self, request: OutboundRequest) -> TargetResponse:
        """Send a rendered request with the auth headers; a non-2xx answer raises a TargetError."""
        # The answer goes back as text: the worker reads the ticket id from it with the admin's
        # JSONPath, so a 2xx that is not JSON is not an error here.
        self.check_request_url(request.url)
        method = request.method.upper()
        entity = entity_of(request.url)
        return self._sent_following_the_zone(
            request.url, self._zone, lambda url: self._send(method, entity, url, request)
        )

    def _send(self, method: str, entity: str, url: str, request: OutboundRequest) -> TargetResponse:
        headers = merge_headers(request.headers, self._headers(authenticated=True))
        response, _ = self._exchange(
            method,
            entity,
            url,
            read=as_is,
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

    def _lookup_zone(self) -> ZoneAnswer:
        """Ask zoneInformation (without credentials) where this user's database lives."""
        # The lookup URL is configuration, but it gets the username, so it meets the same rule.
        self._check_outbound_url(self.zone_lookup_url, what="zone lookup URL")
        lookup = self.zone_lookup_url
        answer = self._request(
            "GET",
            "ZoneInformation",
            (lookup if lookup.endswith("/") else lookup + "/") + REST_ZONE_INFORMATION,
            params={"user": self.username},
            authenticated=False,
            read=zone_of,
        )
        zone = answer.url
        # Clients append the version to `url` (django-autotask); one third-party mock already
        # carries it, so do not add it twice. Reference: autotask-api.md §1 (form UNCERTAIN).
        base = zone if zone.endswith("/") else zone + "/"
        if not base.lower().endswith("/" + REST_VERSION_PATH):
            base += REST_VERSION_PATH
        self._check_outbound_url(base, what="zone URL")
        return ZoneAnswer(base, answer.database_id)

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
        """Call base URL + path; after a failure that suggests a wrong zone (a 401 …) look the
        zone up again and, if it moved, call there once (`_moved_zone`)."""
        base = self.base_url()
        try:
            try:
                answer = self._request(
                    method, entity, base + path, params=params, body=body, read=read
                )
            except _GenericRefusal as e:
                raise self._unless_credentials_refused(e) from e
        except TargetError as e:
            fresh = self._moved_zone(e, base)
            if fresh is None:
                raise
            return self._request(method, entity, fresh + path, params=params, body=body, read=read)
        self._confirm_zone(base)
        return answer

    def _query(
        self,
        entity: str,
        path: str,
        filters: Sequence[Mapping[str, Any]],
        include_fields: Sequence[str] | None,
        max_records: int,
        *,
        all_pages: bool = True,
    ) -> list[dict[str, Any]]:
        """Run a query and follow pageDetails.nextPageUrl verbatim until it is null (or not)."""
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
        items, next_url = self._call("GET", entity, path, params=params, read=page_of)
        if not all_pages:
            return items
        seen: set[str] = set()
        while next_url:
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise AutotaskUnavailable(
                    f"Autotask {entity} query paging did not end after {len(seen)} pages.",
                    ambiguous=False,
                )
            seen.add(next_url)
            self._check_same_host(next_url, self._zone or "")
            page, next_url = self._request("GET", entity, next_url, read=page_of)
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
                note=call,
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
        messages = messages_of(summary["body"])
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
            status, messages, autotask_body=is_autotask_error(summary["body"])
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
            read=object_of,
        )

    def _summary(self, response: requests.Response) -> dict[str, object]:
        """error.response: status and parsed body (or its first 2,000 chars)."""
        body: object
        try:
            body = response.json()
        except ValueError:
            body = response.text[:BODY_KEEP_CHARS]
        return {"status": response.status_code, "body": redact(body, self._secrets)}


# -- helpers -----------------------------------------------------------------------------------


def _without_nulls(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset fields: explicit nulls on create fail with HTTP 500.

    Reference: autotask-api.md §3 (KelvinTegelaar/AutotaskAPI issue #26).
    """
    return {key: value for key, value in body.items() if value is not None}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
