"""AutotaskRestClient against faked answers (`responses`): zone, headers, errors, paging."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from adapters.targets.autotask.profile import GENERIC_REFUSAL_ATTEMPTS
from adapters.targets.autotask.rest import AutotaskRestClient, AutotaskUnavailable
from adapters.targets.autotask.rest.answers import Refusal, classify_failure
from connector.domain import REDACTED, ApiCallRecord, OutboundRequest, RequestAction, ZoneAnswer
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)
from tests import canaries

LOOKUP = "https://webservices.autotask.net/atservicesrest/"
ZONE_INFO = LOOKUP + "v1.0/zoneInformation"
ZONE = "https://webservices3.autotask.net/atservicesrest/"
BASE = ZONE + "v1.0/"
USER = "alerts-api@example.test"
SECRET = canaries.AUTOTASK_SECRET
CODE = canaries.AUTOTASK_INTEGRATION_CODE
AUTH_HEADERS = {"UserName": USER, "Secret": SECRET, "ApiIntegrationCode": CODE}
REFERENCE_ERROR = (
    "Reference value on field: contactID of type: Contact does not exist or is invalid."
    " ; on record number [1]."
)


def zone_body(url: str = ZONE) -> dict[str, Any]:
    """ZoneInformationResultModel as autotask-api.md §1 suggests it."""
    return {"zoneName": "America East", "url": url, "webUrl": "https://ww3.autotask.net/", "ci": 1}


def search(filters: list[dict[str, Any]], include: list[str] | None = None, page: int = 500) -> str:
    """The ?search= value the client sends (compact QueryModel JSON)."""
    model: dict[str, Any] = {"filter": filters, "maxRecords": page}
    if include is not None:
        model["includeFields"] = include
    return json.dumps(model, separators=(",", ":"))


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP call is faked; a registered answer that is never asked for fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def client(records: list[ApiCallRecord]) -> AutotaskRestClient:
    return AutotaskRestClient(
        LOOKUP,
        USER,
        SECRET,
        CODE,
        allowed_zone_hosts=["*.autotask.net"],
        recorder=records.append,
    )


def add_zone(http: responses.RequestsMock, url: str = ZONE) -> responses.BaseResponse:
    return http.get(
        ZONE_INFO,
        json=zone_body(url),
        match=[matchers.query_param_matcher({"user": USER})],
    )


def add_failure(
    http: responses.RequestsMock, status: int, body: Any = None, **kwargs: Any
) -> responses.BaseResponse:
    """GET Tickets/7 answers `status` with `body` (JSON unless a str)."""
    if isinstance(body, str):
        return http.get(BASE + "Tickets/7", status=status, body=body, **kwargs)
    return http.get(BASE + "Tickets/7", status=status, json=body, **kwargs)


# -- zone lookup -----------------------------------------------------------------------------


def test_zone_is_looked_up_once_for_many_requests(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    zone = add_zone(http)
    ticket = http.get(BASE + "Tickets/7", json={"item": {"id": 7}})
    for _ in range(3):
        assert client.get_ticket(7) == {"id": 7}
    assert zone.call_count == 1
    assert ticket.call_count == 3
    assert client.base_url() == BASE


def test_zone_is_looked_up_again_once_its_ttl_has_passed(http: responses.RequestsMock) -> None:
    now = [0.0]
    client = AutotaskRestClient(LOOKUP, USER, SECRET, CODE, zone_ttl=60, clock=lambda: now[0])
    zone = add_zone(http)
    http.get(BASE + "Tickets/7", json={"item": None})
    client.get_ticket(7)
    now[0] = 59
    client.get_ticket(7)
    assert zone.call_count == 1
    now[0] = 121
    client.get_ticket(7)
    assert zone.call_count == 2


OLD_ZONE = "https://webservices14.autotask.net/atservicesrest/v1.0/"


def kept_zone_client(looked_up: list[str], zone: str = OLD_ZONE) -> AutotaskRestClient:
    """A client that starts from a zone an earlier lookup gave; new zones go to `looked_up`."""
    return AutotaskRestClient(
        LOOKUP,
        USER,
        SECRET,
        CODE,
        known_zone=zone,
        on_zone=lambda answer: looked_up.append(answer.url),
    )


def test_a_kept_zone_saves_the_lookup(http: responses.RequestsMock) -> None:
    looked_up: list[str] = []
    client = kept_zone_client(looked_up, zone=BASE)
    http.get(BASE + "Tickets/7", json={"item": {"id": 7}})
    assert client.get_ticket(7) == {"id": 7}
    assert client.base_url() == BASE
    assert looked_up == []  # no lookup was made


def test_a_lookup_tells_its_answer(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    told: list[ZoneAnswer] = []
    client.on_zone = told.append
    add_zone(http)
    client.base_url()
    client.base_url()
    assert told == [ZoneAnswer(BASE, "1")]  # the database: zoneInformation's "ci"


@pytest.mark.parametrize(
    ("ci", "database_id"),
    [(29683000, "29683000"), (0, None), (None, None), ("not a number", None)],
)
def test_a_lookup_names_the_database_by_its_ci(
    http: responses.RequestsMock, client: AutotaskRestClient, ci: Any, database_id: str | None
) -> None:
    told: list[ZoneAnswer] = []
    client.on_zone = told.append
    http.get(ZONE_INFO, json=zone_body() | {"ci": ci})
    client.base_url()
    assert told == [ZoneAnswer(BASE, database_id)]


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 404, "json": {"Message": "No HTTP resource was found"}},
        {"status": 301, "headers": {"Location": "https://webservices3.autotask.net/"}},
        {"status": 401, "json": {"errors": ["Something went wrong"]}},
        {"body": requests.ConnectionError(MaxRetryError(None, "/", "refused"))},
    ],
    ids=["404", "redirect", "401", "unreachable"],
)
def test_a_kept_zone_that_fails_so_is_looked_up_again_and_the_call_repeated_there(
    http: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    looked_up: list[str] = []
    client = kept_zone_client(looked_up)
    old = http.get(OLD_ZONE + "Tickets/7", **failure)
    add_zone(http)
    new = http.get(BASE + "Tickets/7", json={"item": {"id": 7}})
    assert client.get_ticket(7) == {"id": 7}
    assert (old.call_count, new.call_count) == (1, 1)
    assert looked_up == [BASE]
    assert client.base_url() == BASE


def test_a_404_under_a_zone_already_proven_right_is_not_a_zone_question(
    http: responses.RequestsMock,
) -> None:
    looked_up: list[str] = []
    client = kept_zone_client(looked_up)
    http.get(OLD_ZONE + "Tickets/7", json={"item": {"id": 7}})
    http.get(OLD_ZONE + "Tickets/8", status=404, json={"Message": "No HTTP resource"})
    client.get_ticket(7)  # the kept zone answered: it is the right one
    with pytest.raises(TargetRejected):
        client.get_ticket(8)
    assert looked_up == []


def test_a_kept_zone_on_a_host_no_longer_allowed_is_not_used(http: responses.RequestsMock) -> None:
    looked_up: list[str] = []
    client = kept_zone_client(looked_up, zone="https://evil.example.com/atservicesrest/v1.0/")
    add_zone(http)
    assert client.base_url() == BASE
    assert looked_up == [BASE]


def test_zone_lookup_carries_no_credentials(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    client.base_url()
    sent = http.calls[0].request.headers
    assert not {"Secret", "ApiIntegrationCode", "UserName"} & set(sent)


def test_zone_url_that_already_names_the_version_is_not_extended(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # A third-party mock answers ".../atservicesrest/v1.0/" (autotask-api.md §1).
    add_zone(http, url=ZONE + "v1.0/")
    assert client.base_url() == BASE


def test_unknown_user_in_zone_lookup_is_an_auth_error_with_the_message(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    message = "Zone information could not be determined for user 'alerts-api@example.test'."
    http.get(ZONE_INFO, status=500, json={"errors": [message]})
    with pytest.raises(TargetAuthError) as caught:
        client.get_ticket(7)
    assert message in str(caught.value)
    assert caught.value.retryable is False
    assert caught.value.response == {"status": 500, "body": {"errors": [message]}}


@pytest.mark.parametrize(
    "zone_url",
    [
        "https://evil.example.com/atservicesrest/",
        "https://autotask.net.evil.example.com/atservicesrest/",
        "http://webservices3.autotask.net/atservicesrest/",
        "https://user:pw@webservices3.autotask.net/atservicesrest/",
        "ftp://webservices3.autotask.net/atservicesrest/",
        "https://169.254.169.254/latest/",
    ],
    ids=[
        "other host",
        "autotask lookalike suffix",
        "plain http off loopback",
        "user info in url",
        "ftp scheme",
        "cloud metadata address",
    ],
)
def test_zone_url_outside_the_allowlist_is_refused_and_gets_no_credentials(
    http: responses.RequestsMock, client: AutotaskRestClient, zone_url: str
) -> None:
    add_zone(http, url=zone_url)
    with pytest.raises(TargetRejected, match="refusing to call it"):
        client.create_ticket({"title": "x"})
    # The zone lookup is the only request made: nothing, least of all the secret, went out.
    assert [call.request.url.split("?")[0] for call in http.calls] == [ZONE_INFO]


def test_http_zone_is_allowed_only_on_an_allowed_loopback_host(
    http: responses.RequestsMock,
) -> None:
    lookup = "http://127.0.0.1:8081/atservicesrest/"
    http.get(lookup + "v1.0/zoneInformation", json=zone_body(lookup))
    http.get(lookup + "v1.0/Tickets/7", json={"item": None})
    local = AutotaskRestClient(lookup, USER, SECRET, CODE, allowed_zone_hosts=["127.0.0.1"])
    assert local.get_ticket(7) is None
    default = AutotaskRestClient(lookup, USER, SECRET, CODE)
    with pytest.raises(TargetRejected, match="not in the allowed zone hosts"):
        default.get_ticket(7)


# -- headers and bodies ----------------------------------------------------------------------


def test_auth_headers_and_json_content_type_go_with_every_call(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(
        BASE + "Tickets",
        json={"itemId": 128926},
        match=[
            matchers.header_matcher({**AUTH_HEADERS, "Content-Type": "application/json"}),
            matchers.json_params_matcher(
                {"companyID": 0, "title": "t", "status": 1, "priority": 2}
            ),
        ],
    )
    body = {"companyID": 0, "title": "t", "status": 1, "priority": 2}
    assert client.create_ticket(body) == 128926


def test_unset_fields_are_omitted_not_sent_as_null(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # Explicit nulls on create fail with HTTP 500 (autotask-api.md §3, AutotaskAPI issue #26).
    add_zone(http)
    http.post(
        BASE + "Tickets",
        json={"itemId": 5},
        match=[matchers.json_params_matcher({"companyID": 0, "title": "t"}, strict_match=True)],
    )
    client.create_ticket({"companyID": 0, "title": "t", "queueID": None, "dueDateTime": None})
    sent = json.loads(http.calls[1].request.body or b"")
    assert "queueID" not in sent
    assert "dueDateTime" not in sent


def test_patch_sends_only_the_given_fields_and_needs_an_id(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.patch(
        BASE + "Tickets",
        json={"itemId": 7},
        match=[matchers.json_params_matcher({"id": 7, "status": 5})],
    )
    assert client.patch_ticket({"id": 7, "status": 5, "resolution": None}) == 7
    with pytest.raises(TargetRejected, match="needs the ticket's id"):
        client.patch_ticket({"status": 5})


def test_create_note_posts_to_the_tickets_notes_child_url(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # POST /TicketNotes does not exist; notes are created under their ticket (§4, §5).
    add_zone(http)
    note = {"description": "acknowledged", "noteType": 1, "publish": 1, "title": "Ack"}
    http.post(
        BASE + "Tickets/7/Notes",
        json={"itemId": 30777658},
        match=[matchers.json_params_matcher(note)],
    )
    assert client.create_note(7, note) == 30777658


def test_missing_ticket_reads_as_none(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.get(BASE + "Tickets/404", json={"item": None})
    assert client.get_ticket(404) is None


def test_threshold_information_is_returned_as_sent(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    body = {
        "externalRequestThreshold": 10000,
        "requestThresholdTimeframe": 60,
        "currentTimeframeRequestCount": 42,
    }
    http.get(
        BASE + "ThresholdInformation", json=body, match=[matchers.header_matcher(AUTH_HEADERS)]
    )
    assert client.threshold_information() == body


# -- pagination ------------------------------------------------------------------------------

MARKER_FILTER = [{"op": "eq", "field": "externalID", "value": "m-1"}]
NEXT = "https://webservices3.autotask.net/ATServicesRest/V1.0/Tickets/query/next"


def next_page_url(after: int) -> str:
    paging = f'{{"pageSize":2,"previousIds":[-1],"nextIds":[{after}]}}'
    return f"{NEXT}?paging={requests.utils.quote(paging)}&search=x"


def page(ids: list[int], next_url: str | None) -> dict[str, Any]:
    return {
        "items": [{"id": i} for i in ids],
        "pageDetails": {
            "count": len(ids),
            "requestCount": 2,
            "prevPageUrl": None,
            "nextPageUrl": next_url,
        },
    }


def test_query_follows_next_page_urls_verbatim_across_three_pages(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.get(
        BASE + "Tickets/query",
        json=page([1, 2], next_page_url(2)),
        match=[matchers.query_param_matcher({"search": search(MARKER_FILTER, page=2)})],
    )
    http.get(
        NEXT,
        json=page([3, 4], next_page_url(4)),
        match=[
            matchers.query_param_matcher(
                {"paging": '{"pageSize":2,"previousIds":[-1],"nextIds":[2]}', "search": "x"}
            )
        ],
    )
    http.get(
        NEXT,
        json=page([5], None),
        match=[
            matchers.query_param_matcher(
                {"paging": '{"pageSize":2,"previousIds":[-1],"nextIds":[4]}', "search": "x"}
            )
        ],
    )
    items = client.query_tickets(MARKER_FILTER, max_records=2)
    assert [item["id"] for item in items] == [1, 2, 3, 4, 5]
    assert [(r.entity, r.records) for r in records[1:]] == [
        ("Tickets", 2),
        ("Tickets", 2),
        ("Tickets", 1),
    ]


def test_query_includes_id_when_fields_are_restricted(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # "you must include Id as a field" for results over 500 (autotask-api.md §4).
    add_zone(http)
    http.get(
        BASE + "Tickets/query",
        json=page([], None),
        match=[
            matchers.query_param_matcher(
                {"search": search(MARKER_FILTER, include=["id", "ticketNumber"])}
            )
        ],
    )
    assert client.query_tickets(MARKER_FILTER, include_fields=["ticketNumber"]) == []


def test_next_page_url_on_another_host_is_not_followed(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.get(BASE + "Tickets/query", json=page([1], "https://evil.example.com/steal?x=1"))
    with pytest.raises(TargetRejected, match="refusing to follow it"):
        client.query_tickets(MARKER_FILTER)
    assert len(http.calls) == 2


@pytest.mark.parametrize("page_size", [0, 501], ids=["zero", "over 500"])
def test_page_size_outside_autotask_range_is_refused(
    client: AutotaskRestClient, page_size: int
) -> None:
    with pytest.raises(TargetRejected, match="between 1 and 500"):
        client.query_tickets(MARKER_FILTER, max_records=page_size)


# -- error mapping: one test per answer (autotask-api.md §7) ---------------------------------


def test_401_looks_the_zone_up_again_once_then_is_an_auth_error(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    zone = add_zone(http)
    ticket = add_failure(http, 401, {"Message": "Authorization has been denied for this request."})
    with pytest.raises(TargetAuthError) as caught:
        client.get_ticket(7)
    assert zone.call_count == 2  # django-autotask's one re-lookup (autotask-api.md §2)
    assert ticket.call_count == 1  # same zone: repeating the call cannot help
    assert caught.value.retryable is False
    assert caught.value.response is not None
    assert caught.value.response["status"] == 401


def test_401_after_the_database_moved_zone_retries_there(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    moved = "https://webservices14.autotask.net/atservicesrest/"
    http.get(ZONE_INFO, json=zone_body(ZONE))
    http.get(ZONE_INFO, json=zone_body(moved))
    add_failure(http, 401, {"errors": ["Unauthorized"]})
    http.get(moved + "v1.0/Tickets/7", json={"item": {"id": 7}})
    assert client.get_ticket(7) == {"id": 7}
    assert client.base_url() == moved + "v1.0/"


def test_403_is_an_auth_error_without_a_zone_relookup(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    zone = add_zone(http)
    add_failure(http, 403, {"errors": ["Forbidden"]})
    with pytest.raises(TargetAuthError) as caught:
        client.get_ticket(7)
    assert caught.value.retryable is False
    assert zone.call_count == 1


def test_429_is_rate_limited_and_honours_retry_after(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    message = "thread threshold of 3 threads has been exceeded"
    add_failure(http, 429, {"errors": [message]}, headers={"Retry-After": "17"})
    with pytest.raises(TargetRateLimited) as caught:
        client.get_ticket(7)
    assert caught.value.retryable is True
    assert caught.value.retry_after == 17.0
    assert message in str(caught.value)


@pytest.mark.parametrize("status", [500, 503, 400], ids=["500", "503", "400"])
def test_thread_threshold_message_on_any_status_is_rate_limited(
    http: responses.RequestsMock, client: AutotaskRestClient, status: int
) -> None:
    # n8n-nodes-autotask: thread rejections "may arrive with a non-429 HTTP status" (§7).
    add_zone(http)
    add_failure(http, status, {"errors": ["Itgenatr005: thread threshold of 3 threads exceeded"]})
    with pytest.raises(TargetRateLimited):
        client.get_ticket(7)


# Real Autotask answers only (autotask-api.md §7 and §14), never the sandbox's own words.
@pytest.mark.parametrize(
    ("message", "explained"),
    [
        (REFERENCE_ERROR, ""),  # §14, n8n-nodes-autotask
        ("Value does not reference an existing entity for taskType . ", ""),  # §7, autotask-mcp #46
        ("dueDateTime is required.; on record number [0].", "due_days"),  # §14, autotask-mcp #288
        ("queueID is required.; on record number [1].", "queue_id"),  # same form, category rule
        ("String value exceeds maximum length (field:description).", ""),  # §14, n8n #48
        (
            "A ContactGroup already exists with Name [x]. ContactGroup names must be unique.",
            "",
        ),  # §7, OFFICIAL REST_Creating_Resources_POST.htm
        (
            "The logged in Resource does not have the adequate permissions to create this entity.",
            "",
        ),  # §7, django-autotask
        ("Unable to find projectID in the TimeEntry Entity", ""),  # §14, autotask-mcp PR #282
    ],
    ids=[
        "reference",
        "missing reference",
        "due date required",
        "queue required",
        "too long",
        "must be unique",
        "permissions",
        "unknown field",
    ],
)
def test_500_with_autotasks_validation_words_is_rejected_not_retried(
    http: responses.RequestsMock, client: AutotaskRestClient, message: str, explained: str
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", status=500, json={"errors": [message]})
    with pytest.raises(TargetRejected) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is False
    assert caught.value.response == {"status": 500, "body": {"errors": [message]}}
    assert message.strip() in str(caught.value)
    if explained:
        assert "for tickets of this category" in str(caught.value)
        assert explained in str(caught.value)
    else:
        assert "requires" not in str(caught.value)


@pytest.mark.parametrize(
    "probe_status", [500, 401], ids=["check refused with 500", "check refused with 401"]
)
def test_a_bare_500_whose_credential_check_fails_too_is_an_auth_error(
    http: responses.RequestsMock, client: AutotaskRestClient, probe_status: int
) -> None:
    # apigrate/autotask-restapi #19: an unknown user or integration code answers a bare 500
    # ("Something went wrong", §2), like other refusals; ThresholdInformation tells them apart.
    add_zone(http)
    add_failure(http, 500, {"errors": ["Something went wrong"]})
    http.get(
        BASE + "ThresholdInformation",
        status=probe_status,
        json={"errors": ["Something went wrong"]},
    )
    with pytest.raises(TargetAuthError) as caught:
        client.get_ticket(7)
    assert caught.value.retryable is False
    assert "does not accept this API user" in str(caught.value)


def test_a_bare_500_whose_credential_check_passes_is_tried_a_few_times(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", status=500, json={"errors": ["Something went wrong"]})
    http.get(
        BASE + "ThresholdInformation",
        json={
            "externalRequestThreshold": 10000,
            "requestThresholdTimeframe": 60,
            "currentTimeframeRequestCount": 3,
        },
    )
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True  # Autotask may have acted: look the marker up first
    assert caught.value.max_attempts == GENERIC_REFUSAL_ATTEMPTS


def test_500_that_is_not_autotasks_answer_is_retryable_and_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", status=500, body="<html>Runtime Error</html>")
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True
    assert caught.value.max_attempts is None


def test_503_is_retryable_and_not_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(
        BASE + "Tickets", status=503, body="Service Unavailable", headers={"Retry-After": "5"}
    )
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert isinstance(caught.value, TargetUnavailable)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.retry_after == 5.0
    assert caught.value.response == {"status": 503, "body": "Service Unavailable"}


@pytest.mark.parametrize("status", [502, 504], ids=["502 bad gateway", "504 gateway timeout"])
def test_gateway_errors_are_retryable_and_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient, status: int
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", status=status, body="<html>" + "x" * 5000 + "</html>")
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.ambiguous is True
    assert caught.value.response is not None
    assert len(str(caught.value.response["body"])) == 2000  # first 2,000 chars kept


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"errors": ["The request is invalid."]}),
        (404, {"Message": "No HTTP resource was found that matches the request URI."}),
        (405, {"Message": "The requested resource does not support http method 'GET'."}),
        (409, {"errors": ["Conflict"]}),
        (422, {"errors": ["Unprocessable"]}),
    ],
    ids=["400", "404 unknown route", "405 wrong method", "409", "422"],
)
def test_other_4xx_are_rejected_with_autotasks_answer(
    http: responses.RequestsMock, client: AutotaskRestClient, status: int, body: Any
) -> None:
    add_zone(http)
    add_failure(http, status, body)
    with pytest.raises(TargetRejected) as caught:
        client.get_ticket(7)
    assert caught.value.retryable is False
    assert caught.value.response == {"status": status, "body": body}


def test_read_timeout_is_retryable_and_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True
    assert isinstance(caught.value.__cause__, requests.exceptions.ReadTimeout)


def test_connection_dropped_after_sending_is_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # What requests raises when the server closes the socket without answering.
    dropped = requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
    )
    add_zone(http)
    http.post(BASE + "Tickets", body=dropped)
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True


def test_connection_refused_is_retryable_and_certainly_not_applied(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    # What requests raises when nothing listens: urllib3's MaxRetryError(NewConnectionError).
    refused = requests.exceptions.ConnectionError(
        MaxRetryError(None, BASE + "Tickets", NewConnectionError(None, "Connection refused"))
    )
    add_zone(http)
    http.post(BASE + "Tickets", body=refused)
    with pytest.raises(AutotaskUnavailable, match="request not sent") as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False


def test_connect_timeout_is_retryable_and_not_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.ambiguous is False


def test_redirect_is_not_followed(http: responses.RequestsMock, client: AutotaskRestClient) -> None:
    add_zone(http)
    add_failure(http, 302, "", headers={"Location": "https://evil.example.com/collect"})
    with pytest.raises(TargetRejected, match="not followed") as caught:
        client.get_ticket(7)
    assert caught.value.retryable is False
    # Only the zone lookup and the redirected call: the Location was never requested.
    assert len(http.calls) == 2


def test_non_json_answer_to_a_read_is_unavailable(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.get(BASE + "Tickets/7", body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(AutotaskUnavailable) as caught:
        client.get_ticket(7)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.response == {"status": 200, "body": "<html>maintenance</html>"}


def test_unreadable_answer_to_a_create_leaves_its_outcome_unknown(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", json={"id": 12})  # 200, but no itemId
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create_ticket({"title": "t"})
    assert caught.value.ambiguous is True


@pytest.mark.parametrize(
    ("status", "messages", "autotask_body", "expected"),
    [
        (429, [], False, Refusal.RATE_LIMITED),
        # autotask-api.md §14: the thread limit arrives "not always" with a 429.
        (500, ["API thread threshold of 3 threads has been exceeded"], True, Refusal.RATE_LIMITED),
        (500, [REFERENCE_ERROR], True, Refusal.REJECTED),  # §14, n8n-nodes-autotask
        (500, ["dueDateTime is required.; on record number [0]."], True, Refusal.REJECTED),
        (500, ["String value exceeds maximum length (field:title)."], True, Refusal.REJECTED),
        (500, ["Something went wrong"], True, Refusal.GENERIC),  # §2, apigrate #19
        (500, ["an invented sandbox text"], True, Refusal.GENERIC),
        (500, ["<html>Server Error</html>"], False, Refusal.UNAVAILABLE),
        (502, [REFERENCE_ERROR], True, Refusal.UNAVAILABLE),
        (503, [], False, Refusal.UNAVAILABLE),
        (401, [], False, Refusal.AUTH),
        (403, ["Something went wrong"], True, Refusal.AUTH),
        (404, [], False, Refusal.REJECTED),
        (
            405,
            ["The requested resource does not support http method 'GET'."],
            False,
            Refusal.REJECTED,
        ),
        (301, [], False, Refusal.REJECTED),
        (408, [], False, Refusal.UNAVAILABLE),
    ],
    ids=[
        "429",
        "thread threshold on a 500",
        "500 reference",
        "500 required",
        "500 length",
        "500 something went wrong",
        "500 unknown words",
        "500 not autotask's body",
        "502 never permanent",
        "503",
        "401",
        "403",
        "404",
        "405",
        "301",
        "408",
    ],
)
def test_classification_table(
    status: int, messages: list[str], autotask_body: bool, expected: Refusal
) -> None:
    assert classify_failure(status, messages, autotask_body=autotask_body) is expected


# -- secrets and the activity record ---------------------------------------------------------


def scenario_401(http: responses.RequestsMock) -> None:
    add_zone(http)
    add_failure(http, 401, {"Message": "Authorization has been denied for this request."})


def scenario_echoing_500(http: responses.RequestsMock) -> None:
    # A server that repeats our headers back must not leak them through us.
    add_zone(http)
    add_failure(http, 500, {"errors": [f"Bad secret {SECRET} for code {CODE}"]})


def scenario_text_502(http: responses.RequestsMock) -> None:
    add_zone(http)
    add_failure(http, 502, f"upstream said Secret: {SECRET}")


def scenario_timeout(http: responses.RequestsMock) -> None:
    add_zone(http)
    http.get(BASE + "Tickets/7", body=requests.exceptions.ReadTimeout(f"timeout {SECRET}"))


@pytest.mark.parametrize(
    "scenario",
    [scenario_401, scenario_echoing_500, scenario_text_502, scenario_timeout],
    ids=["401", "500 echoing the secret", "502 text echoing the secret", "read timeout"],
)
def test_secret_and_code_never_appear_in_errors_or_records(
    http: responses.RequestsMock,
    client: AutotaskRestClient,
    records: list[ApiCallRecord],
    scenario: Any,
) -> None:
    scenario(http)
    with pytest.raises(TargetError) as caught:
        client.get_ticket(7)
    seen = " ".join(
        [str(caught.value), repr(caught.value.response), repr(client), *map(repr, records)]
    )
    assert records
    assert SECRET not in seen
    assert CODE not in seen


def test_recorder_gets_one_record_per_call_with_status_and_entity(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", json={"itemId": 9})
    http.get(BASE + "Tickets/query", json=page([9], None))
    http.post(
        BASE + "Tickets/9/Notes",
        status=500,
        json={"errors": ["title is required.; on record number [1]."]},
    )
    client.create_ticket({"title": "t"})
    client.query_tickets(MARKER_FILTER)
    with pytest.raises(TargetRejected):
        client.create_note(9, {"description": ""})
    summary = [(r.method, r.entity, r.http_status, r.records) for r in records]
    assert summary == [
        ("GET", "ZoneInformation", 200, None),
        ("POST", "Tickets", 200, None),
        ("GET", "Tickets", 200, 1),
        ("POST", "TicketNotes", 500, None),
    ]
    assert [r.error is None for r in records] == [True, True, True, False]
    assert "title is required" in (records[-1].error or "")
    assert all(r.execution_ms >= 0 and r.at.tzinfo is not None for r in records)


def test_recorder_gets_a_record_without_status_for_a_transport_failure(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body=requests.exceptions.ReadTimeout())
    with pytest.raises(AutotaskUnavailable):
        client.create_ticket({"title": "t"})
    assert len(records) == 2
    assert records[-1].http_status is None
    assert records[-1].entity == "Tickets"
    assert "outcome unknown" in (records[-1].error or "")


# -- send: a rendered delivery request ---------------------------------------------------------

CREATE_BODY = '{"companyID": 29683414, "title": "Disk <full> \\u00e9", "status": 1, "priority": 2}'


def rendered(
    url: str = BASE + "Tickets",
    method: str = "POST",
    body: str = CREATE_BODY,
    headers: dict[str, str] | None = None,
) -> OutboundRequest:
    return OutboundRequest(
        action=RequestAction.CREATE,
        method=method,
        url=url,
        body=body,
        body_format="json",
        headers=headers or {},
    )


def test_send_sends_the_body_as_rendered_with_the_auth_headers(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.post(
        BASE + "Tickets",
        json={"itemId": 128926},
        match=[
            matchers.header_matcher(
                {**AUTH_HEADERS, "Content-Type": "application/json", "X-Trace": "abc"}
            )
        ],
    )
    client.base_url()
    response = client.send(rendered(headers={"X-Trace": "abc"}))
    assert http.calls[1].request.body == CREATE_BODY.encode("utf-8")  # not re-serialized
    assert (response.status, json.loads(response.body)) == (200, {"itemId": 128926})
    assert response.ticket is None
    assert response.sent == {
        "method": "POST",
        "url": BASE + "Tickets",
        "headers": {
            "X-Trace": "abc",
            "Accept": "application/json",
            "ApiIntegrationCode": REDACTED,
            "UserName": USER,
            "Secret": REDACTED,
            "Content-Type": "application/json",
        },
        "body": CREATE_BODY,
    }
    assert [(r.method, r.entity, r.http_status) for r in records][-1] == ("POST", "Tickets", 200)


def test_admin_headers_cannot_override_credentials_or_content_type(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.patch(
        BASE + "Tickets",
        json={"itemId": 7},
        match=[matchers.header_matcher({**AUTH_HEADERS, "Content-Type": "application/json"})],
    )
    client.base_url()
    admin = {
        "SECRET": "attacker",
        "username": "other@example.com",
        "apiintegrationcode": "OTHER",
        "content-type": "text/plain",
        "Content-Length": "1",
        "Transfer-Encoding": "chunked",
    }
    response = client.send(rendered(method="PATCH", body='{"id": 7, "status": 5}', headers=admin))
    sent_headers = http.calls[1].request.headers
    assert "chunked" not in sent_headers.get("Transfer-Encoding", "")
    assert sent_headers["Content-Length"] == str(len(b'{"id": 7, "status": 5}'))
    headers = response.sent["headers"]
    assert isinstance(headers, dict)
    assert {name.lower() for name in headers} == {
        "accept",
        "apiintegrationcode",
        "username",
        "secret",
        "content-type",
    }


def test_send_returns_a_non_json_answer_as_text(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body="created 42", content_type="text/plain")
    client.base_url()
    response = client.send(rendered())
    assert (response.status, response.body) == (200, "created 42")
    assert records[-1].error is None


def test_send_keeps_the_first_64_kib_of_an_answer(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body="x" * 100_000, content_type="text/plain")
    client.base_url()
    assert len(client.send(rendered()).body) == 64 * 1024


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/atservicesrest/v1.0/Tickets",
        "http://webservices3.autotask.net/atservicesrest/v1.0/Tickets",
        "https://webservices3.autotask.net/atservicesrest/v1.0/Tickets?x=1",
        "https://u:p@webservices3.autotask.net/atservicesrest/v1.0/Tickets",
        "file:///etc/passwd",
    ],
    ids=["other host", "plain http", "query", "user info", "file"],
)
def test_send_to_a_url_outside_the_allowed_hosts_makes_no_call(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord], url: str
) -> None:
    with pytest.raises(TargetRejected, match="request URL") as caught:
        client.send(rendered(url=url))
    assert caught.value.retryable is False
    assert len(http.calls) == 0 and records == []


def test_send_does_not_follow_a_redirect(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", status=307, headers={"Location": "https://evil.example.com/x"})
    client.base_url()
    with pytest.raises(TargetRejected, match="not followed") as caught:
        client.send(rendered())
    assert caught.value.retryable is False
    assert len(http.calls) == 2  # the Location was never requested


def test_send_429_is_rate_limited_with_retry_after(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(
        BASE + "Tickets",
        status=429,
        json={"errors": ["Request threshold of 10000 exceeded"]},
        headers={"Retry-After": "30"},
    )
    client.base_url()
    with pytest.raises(TargetRateLimited) as caught:
        client.send(rendered())
    assert caught.value.retryable is True
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("status", "ambiguous"),
    [(500, True), (502, True), (504, True), (503, False)],
    ids=["500", "502", "504", "503"],
)
def test_send_server_errors_on_a_create_are_retryable(
    http: responses.RequestsMock, client: AutotaskRestClient, status: int, ambiguous: bool
) -> None:
    # A 500/502/504 may hide a create that was applied; a 503 was refused before processing.
    add_zone(http)
    http.post(BASE + "Tickets", status=status, json={"errors": ["Something broke."]})
    client.base_url()
    with pytest.raises(AutotaskUnavailable) as caught:
        client.send(rendered())
    assert caught.value.retryable is True
    assert caught.value.ambiguous is ambiguous


def test_send_with_a_validation_message_is_rejected(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    message = "title is required.; on record number [1]."
    http.post(BASE + "Tickets", status=500, json={"errors": [message]})
    client.base_url()
    with pytest.raises(TargetRejected, match=re.escape(message)) as caught:
        client.send(rendered())
    assert caught.value.response == {"status": 500, "body": {"errors": [message]}}


def test_send_read_timeout_is_ambiguous(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    http.post(BASE + "Tickets", body=requests.exceptions.ReadTimeout("read timed out"))
    client.base_url()
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        client.send(rendered())
    assert caught.value.ambiguous is True
    assert (records[-1].entity, records[-1].http_status) == ("Tickets", None)


def test_send_after_the_database_moved_zone_goes_to_the_new_zone(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    moved = "https://webservices14.autotask.net/atservicesrest/"
    http.get(ZONE_INFO, json=zone_body(ZONE))
    http.get(ZONE_INFO, json=zone_body(moved))
    http.post(BASE + "Tickets/7/Notes", status=401, json={"Message": "Authorization denied."})
    http.post(moved + "v1.0/Tickets/7/Notes", json={"itemId": 99})
    client.base_url()
    response = client.send(rendered(url=BASE + "Tickets/7/Notes"))
    assert json.loads(response.body) == {"itemId": 99}
    assert response.sent["url"] == moved + "v1.0/Tickets/7/Notes"
    assert client.base_url() == moved + "v1.0/"


def test_send_401_in_the_same_zone_is_an_auth_error_after_one_relookup(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    zone = add_zone(http)
    tickets = http.post(BASE + "Tickets", status=401, json={"Message": "Authorization denied."})
    client.base_url()
    with pytest.raises(TargetAuthError) as caught:
        client.send(rendered())
    assert caught.value.retryable is False
    assert (zone.call_count, tickets.call_count) == (2, 1)


@pytest.mark.parametrize(
    "url",
    [
        "https://webservices9.autotask.net/atservicesrest/v1.0/Tickets",  # another zone
        "https://webservices3.autotask.net:8443/atservicesrest/v1.0/Tickets",  # another port
        "http://webservices3.autotask.net/atservicesrest/v1.0/Tickets",  # another scheme
        "https://webservices3.autotask.net/other/v1.0/Tickets",  # another path
        "https://webservices3.autotask.net/atservicesrest/v1.0/../../x",  # out by dot segments
        "https://webservices3.autotask.net/atservicesrest/v1.0/%2e%2e/%2e%2e/x",
        "https://webservices3.autotask.net/atservicesrest/v1.0x/Tickets",
    ],
)
def test_send_outside_the_integrations_zone_is_refused_before_any_call(
    http: responses.RequestsMock, records: list[ApiCallRecord], url: str
) -> None:
    """Every request carries the credentials: only the zone's own API path gets one."""
    client = AutotaskRestClient(LOOKUP, USER, SECRET, CODE, recorder=records.append)
    add_zone(http)
    client.base_url()
    with pytest.raises(TargetRejected, match="refusing to call it"):
        client.send(rendered(url=url))
    assert [r.entity for r in records] == ["ZoneInformation"]
    assert len(http.calls) == 1


def test_send_under_the_zone_in_another_letter_case_goes(
    http: responses.RequestsMock, client: AutotaskRestClient
) -> None:
    add_zone(http)
    http.post(BASE.replace("v1.0", "V1.0") + "Tickets", json={"itemId": 5})
    client.base_url()
    assert client.send(rendered(url=BASE.replace("v1.0", "V1.0") + "Tickets")).status == 200


def test_send_never_shows_the_secret_or_the_code(
    http: responses.RequestsMock, client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    echo = {"itemId": 5, "echo": f"{SECRET} {CODE}"}
    http.post(BASE + "Tickets", json=echo)
    http.post(BASE + "Tickets", status=500, json={"errors": [f"bad secret {SECRET}"]})
    client.base_url()
    body = CREATE_BODY.replace("Disk", CODE)  # the code may be rendered into a body
    response = client.send(rendered(body=body, headers={"X-Code": CODE}))
    with pytest.raises(TargetError) as caught:
        client.send(rendered(body=body))
    seen = " ".join(
        [repr(response), str(caught.value), repr(caught.value.response), *map(repr, records)]
    )
    assert SECRET not in seen
    assert CODE not in seen
    assert json.loads(response.body)["echo"] == f"{REDACTED} {REDACTED}"
