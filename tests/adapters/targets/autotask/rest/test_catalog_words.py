"""AutotaskRestCatalog's words for answers the sandbox cannot give (faked with `responses`).

TLS failures, timeouts, a 403, a zone outside the allowed hosts, a rate limit, a gateway's page:
each check says what went wrong in words, and no secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from adapters.targets.autotask.rest import AutotaskRestCatalog, AutotaskRestClient
from connector.domain import CheckName, ConnectionReport
from tests import canaries

LOOKUP = "https://webservices.autotask.net/atservicesrest/"
ZONE_INFO = LOOKUP + "v1.0/zoneInformation"
ZONE = "https://webservices3.autotask.net/atservicesrest/"
BASE = ZONE + "v1.0/"
USER = "alerts-api@example.test"
SECRET = canaries.AUTOTASK_SECRET
CODE = canaries.AUTOTASK_INTEGRATION_CODE
PERMISSIONS = (
    "The logged in Resource does not have the adequate permissions to create this entity type."
)


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def catalog() -> AutotaskRestCatalog:
    client = AutotaskRestClient(
        LOOKUP, USER, SECRET, CODE, allowed_zone_hosts=["*.autotask.net"], read_timeout=7.0
    )
    return AutotaskRestCatalog(client)


def zone(http: responses.RequestsMock, url: str = ZONE) -> None:
    http.get(ZONE_INFO, json={"zoneName": "America East", "url": url, "webUrl": "", "ci": 1})


def passing(http: responses.RequestsMock, *, skip: str = "") -> None:
    """Autotask's answers to every check, but the one named `skip`."""
    page = {"items": [], "pageDetails": {"count": 0, "requestCount": 1, "nextPageUrl": None}}
    info = {
        "info": {
            "canCreate": True,
            "canUpdate": True,
            "userAccessForCreate": "All",
            "userAccessForUpdate": "All",
        }
    }
    answers: dict[str, Any] = {
        "ThresholdInformation": {"externalRequestThreshold": 10000},
        "Tickets/query": page,
        "Companies/query": page,
        "Tickets/entityInformation": info,
        "TicketNotes/entityInformation": info,
    }
    for path, body in answers.items():
        if path != skip:
            http.get(BASE + path, json=body)


def check(report: ConnectionReport, name: CheckName) -> tuple[bool, str]:
    found = next(c for c in report.checks if c.name is name)
    assert not found.skipped
    return found.ok, found.message


def test_a_tls_failure_at_the_zone_lookup(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    http.get(ZONE_INFO, body=requests.exceptions.SSLError("certificate verify failed"))
    ok, message = check(catalog.check_connection(), CheckName.ZONE_LOOKUP)
    assert not ok
    assert message.startswith("The secure (TLS) connection to webservices.autotask.net failed")
    assert "certificate is not trusted" in message


def test_a_connect_timeout_names_the_zone_host(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    http.get(BASE + "ThresholdInformation", body=requests.ConnectTimeout("timed out"))
    ok, message = check(catalog.check_connection(), CheckName.CREDENTIALS)
    assert not ok
    assert "webservices3.autotask.net did not accept a connection within 5 s" in message


def test_a_read_timeout_says_how_long_was_waited(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    passing(http, skip="Companies/query")
    http.get(BASE + "Companies/query", body=requests.ReadTimeout("read timed out"))
    report = catalog.check_connection()
    ok, message = check(report, CheckName.READ_COMPANIES)
    assert not ok
    assert "did not answer within 7 s" in message
    assert check(report, CheckName.READ_TICKETS)[0]  # the other checks still ran


def test_a_403_on_a_read_is_a_missing_permission(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    passing(http, skip="Tickets/query")
    # The Swagger documents 403 Forbidden for every operation (autotask-api.md §7).
    http.get(BASE + "Tickets/query", status=403, json={"errors": ["Forbidden"]})
    ok, message = check(catalog.check_connection(), CheckName.READ_TICKETS)
    assert not ok
    assert "security level does not allow it to read tickets" in message


def test_a_create_refused_for_permission_in_autotasks_words(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    passing(http, skip="TicketNotes/entityInformation")
    http.get(BASE + "TicketNotes/entityInformation", status=500, json={"errors": [PERMISSIONS]})
    ok, message = check(catalog.check_connection(), CheckName.CREATE_NOTES)
    assert not ok
    assert "security level does not allow it to add notes to tickets" in message
    assert PERMISSIONS in message


def test_entity_information_user_access_none_is_a_missing_permission(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    passing(http, skip="Tickets/entityInformation")
    denied = {"canCreate": True, "canUpdate": True, "userAccessForCreate": "None"}
    http.get(BASE + "Tickets/entityInformation", json={"info": denied})
    report = catalog.check_connection()
    ok, message = check(report, CheckName.CREATE_TICKETS)
    assert not ok and "security level does not allow it to create tickets" in message
    # No userAccessForUpdate in the answer: the API allows it, the user's access is unknown.
    ok, message = check(report, CheckName.UPDATE_TICKETS)
    assert ok and "does not say whether this API user's security level does" in message


def test_a_zone_outside_the_allowed_hosts_is_not_called(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http, "https://zone.example.net/atservicesrest/")
    report = catalog.check_connection()
    ok, message = check(report, CheckName.ZONE_LOOKUP)
    assert not ok
    assert "zone.example.net" in message and "allowed zone hosts" in message
    assert [call.request.url.split("?")[0] for call in http.calls] == [ZONE_INFO]


def test_a_rate_limit_says_to_slow_down(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    http.get(
        BASE + "ThresholdInformation",
        status=429,
        json={"errors": ["API thread threshold of 3 threads has been exceeded"]},
    )
    ok, message = check(catalog.check_connection(), CheckName.CREDENTIALS)
    assert not ok and "asked the connector to slow down" in message


def test_a_gateways_page_is_no_usable_answer(
    http: responses.RequestsMock, catalog: AutotaskRestCatalog
) -> None:
    zone(http)
    http.get(BASE + "ThresholdInformation", status=502, body="<html>Bad Gateway</html>")
    ok, message = check(catalog.check_connection(), CheckName.CREDENTIALS)
    assert not ok and "Autotask gave no usable answer; it may be down" in message


def test_no_secret_in_any_word(http: responses.RequestsMock, catalog: AutotaskRestCatalog) -> None:
    zone(http)
    # An answer that echoes the credentials back must not carry them into a message.
    http.get(BASE + "ThresholdInformation", status=500, json={"errors": [f"bad {SECRET} {CODE}"]})
    http.get(BASE + "ThresholdInformation", status=500, json={"errors": [f"bad {SECRET} {CODE}"]})
    text = str(catalog.check_connection().to_json())
    assert SECRET not in text and CODE not in text
