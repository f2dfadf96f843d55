"""The integration log page: every call to Autotask, filtered, paged, opening to its request and
answer as the REST client recorded them (secrets redacted there, never shown here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from adapters.targets.autotask.rest import AutotaskRestClient
from connector.domain import ApiCallRecord
from connector.errors import TargetError
from connector.persistence.models import ApiCall, Delivery, Integration, TicketLink
from connector.pipeline.activity import store_api_calls
from tests.adapters.targets.autotask.rest import test_client as rest
from tests.connector.test_activity_report import add_call, add_delivery
from tests.web.admin.conftest import sign_in

SECRET, CODE = rest.SECRET, rest.CODE


def add_integration(app: Flask, name: str) -> int:
    with app.extensions["connector"].transaction() as session:
        integration = Integration(
            name=name,
            zone_lookup_url=rest.LOOKUP,
            username=rest.USER,
            secret_encrypted="-",
            integration_code_encrypted="-",
        )
        session.add(integration)
        session.flush()
        return int(integration.id)


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Autotask, faked at its edge."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def recorded_calls(http: responses.RequestsMock) -> list[ApiCallRecord]:
    """A zone lookup, a created ticket and a refused one, as the client records them."""
    records: list[ApiCallRecord] = []
    client = AutotaskRestClient(
        rest.LOOKUP,
        rest.USER,
        SECRET,
        CODE,
        allowed_zone_hosts=["*.autotask.net"],
        recorder=records.append,
    )
    rest.add_zone(http)
    http.post(rest.BASE + "Tickets", json={"itemId": 4711})
    http.post(
        rest.BASE + "Tickets",
        status=400,
        json={"errors": [f"Invalid secret {SECRET}"]},
    )
    client.create_ticket({"title": "Disk full on srv01", "description": f"key {SECRET}"})
    with pytest.raises(TargetError):
        client.create_ticket({"title": "Second try"})
    return records


def test_a_call_opens_to_its_request_and_answer_with_every_secret_redacted(
    admin_app: Flask, browser: FlaskClient, http: responses.RequestsMock
) -> None:
    integration_id = add_integration(admin_app, "Contoso PSA")
    with admin_app.extensions["connector"].transaction() as session:
        alert_id, delivery_id = add_delivery(session, integration_id, "disk-srv01", 4711)
        store_api_calls(session, recorded_calls(http), integration_id, delivery_id)
        session.get_one(Delivery, delivery_id).attempts = 2
    sign_in(browser)

    page = browser.get("/admin/log").get_data(as_text=True)
    assert "Integration log" in page
    assert page.count("<details>") == 3
    assert "Disk full on srv01" in page  # the request body
    assert "&#34;itemId&#34;: 4711" in page  # the answer, indented JSON
    assert "Invalid secret &lt;redacted&gt;" in page
    assert "Secret: &lt;redacted&gt;" in page and "ApiIntegrationCode: &lt;redacted&gt;" in page
    assert f'href="/admin/alerts/{alert_id}"' in page
    assert f"#{delivery_id} (2)" in page  # its delivery and how often it was tried
    for secret in (SECRET, CODE):
        assert secret not in page
    # Newest first: the refused create, then the create, then the zone lookup.
    entities = re.findall(r"<td>(Tickets|ZoneInformation)</td>", page)
    assert entities == ["Tickets", "Tickets", "ZoneInformation"]
    assert page.index("Second try") < page.index("Disk full on srv01")


def make_log(app: Flask) -> dict[str, int]:
    """Two integrations' calls, for two alerts with tickets, failed and not; their ids."""
    first = add_integration(app, "Contoso PSA")
    second = add_integration(app, "Fabrikam PSA")
    base = datetime.now(UTC) - timedelta(hours=1)
    with app.extensions["connector"].transaction() as session:
        alert_a, delivery_a = add_delivery(session, first, "alert-a", 111)
        alert_b, delivery_b = add_delivery(session, second, "alert-b", 222)
        session.query(TicketLink).filter_by(ticket_id=222).one().ticket_number = "T20261203.0042"
        ids = {
            "alert_a": alert_a,
            "alert_b": alert_b,
            "ok_a": add_call(session, first, base, delivery_id=delivery_a, entity="EntityOkA"),
            "refused_a": add_call(
                session,
                first,
                base + timedelta(seconds=1),
                status=500,
                delivery_id=delivery_a,
                entity="EntityRefusedA",
                error="Autotask POST Tickets: HTTP 500",
            ),
            "timeout_b": add_call(
                session,
                second,
                base + timedelta(seconds=2),
                status=None,
                delivery_id=delivery_b,
                entity="EntityTimeoutB",
                error="no answer, outcome unknown",
            ),
            "lookup": add_call(session, second, base + timedelta(seconds=3), entity="EntityLookup"),
        }
        ids["first"], ids["second"] = first, second
        return ids


def shown(page: str) -> list[str]:
    """The entities of the calls a log page lists, in order."""
    return re.findall(r"<td>(Entity\w+)</td>", page)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["EntityLookup", "EntityTimeoutB", "EntityRefusedA", "EntityOkA"]),
        ("status=ok", ["EntityLookup", "EntityOkA"]),
        ("status=failed", ["EntityTimeoutB", "EntityRefusedA"]),
        ("status=error", ["EntityTimeoutB"]),
        ("status=500", ["EntityRefusedA"]),
        ("alert_id={alert_a}", ["EntityRefusedA", "EntityOkA"]),
        ("ticket_id=222", ["EntityTimeoutB"]),
        ("ticket_number=T20261203.0042", ["EntityTimeoutB"]),
        ("integration_id={second}", ["EntityLookup", "EntityTimeoutB"]),
        ("integration_id={first}&status=failed", ["EntityRefusedA"]),
        ("ticket_id=999", []),
    ],
)
def test_filters_narrow_the_log(
    admin_app: Flask, browser: FlaskClient, query: str, expected: list[str]
) -> None:
    ids = make_log(admin_app)
    sign_in(browser)
    page = browser.get("/admin/log?" + query.format(**ids)).get_data(as_text=True)
    assert shown(page) == expected
    if not expected:
        assert "No call matches these filters." in page


def test_blank_fields_of_the_form_are_dropped_and_a_bad_value_is_a_400_page(
    admin_app: Flask, browser: FlaskClient
) -> None:
    ids = make_log(admin_app)
    sign_in(browser)
    answer = browser.get(f"/admin/log?integration_id=&status=failed&alert_id={ids['alert_a']}")
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/admin/log?status=failed&alert_id={ids['alert_a']}"
    refused = browser.get("/admin/log?status=sometimes")
    assert refused.status_code == 400
    assert "status must be an HTTP status" in refused.get_data(as_text=True)


def test_the_log_pages_by_id_with_older_and_newest_links(
    admin_app: Flask, browser: FlaskClient
) -> None:
    make_log(admin_app)
    sign_in(browser)
    first = browser.get("/admin/log?limit=3").get_data(as_text=True)
    assert shown(first) == ["EntityLookup", "EntityTimeoutB", "EntityRefusedA"]
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older calls', first)
    assert older, first
    second = browser.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert shown(second) == ["EntityOkA"]
    assert "Older calls" not in second
    assert "Newest calls" in second


def test_an_empty_log_says_so(browser: FlaskClient) -> None:
    sign_in(browser)
    page = browser.get("/admin/log").get_data(as_text=True)
    assert "No call to Autotask yet" in page
    assert 'href="/admin/log"' in page  # the navigation's "Integration log"


def test_a_call_stored_before_requests_were_kept_says_so(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = add_integration(admin_app, "Contoso PSA")
    with admin_app.extensions["connector"].transaction() as session:
        call_id = add_call(session, integration_id, datetime.now(UTC))
        assert session.get_one(ApiCall, call_id).request is None
    sign_in(browser)
    page = browser.get("/admin/log").get_data(as_text=True)
    assert "Not kept (a call from before requests were kept)." in page


def test_signed_out_the_log_sends_to_the_sign_in(browser: FlaskClient) -> None:
    answer = browser.get("/admin/log?status=ok")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login")
