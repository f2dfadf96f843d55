"""The alert pages: the list with its filters, and one alert's events (with what became of each),
tickets, deliveries and calls to Autotask."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.persistence.models import Alert, AlertEvent, ApiCall, Delivery, TicketLink
from tests import canaries
from tests.conftest import API_TOKEN
from tests.web.admin.conftest import sign_in
from tests.web.admin.test_integration_log_page import add_integration

SECRET = canaries.AUTOTASK_SECRET


@pytest.fixture
def admin_settings(admin_settings: dict[str, object]) -> dict[str, object]:
    """The admin app's settings, with a JSON API token to compare the page with the API."""
    return {**admin_settings, "API_TOKEN": API_TOKEN}


def add_alert(
    app: Flask,
    integration_id: int,
    fingerprint: str,
    *,
    status: str = "active",
    source: str = "generic",
    tenant: str = "",
    host: str = "",
    minutes_ago: int = 0,
) -> int:
    with app.extensions["connector"].transaction() as session:
        alert = Alert(
            integration_id=integration_id,
            fingerprint=fingerprint,
            source=source,
            status=status,
            severity="critical",
            title=f"Title {fingerprint}",
            tenant=tenant,
            host=host,
            last_event_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        )
        session.add(alert)
        session.flush()
        return int(alert.id)


def listed(page: str) -> list[str]:
    """The titles of the alerts a list page shows, in order."""
    return re.findall(r">Title ([\w-]+)</a>", page)


@pytest.fixture
def alerts(admin_app: Flask) -> dict[str, int]:
    first = add_integration(admin_app, "Contoso PSA")
    second = add_integration(admin_app, "Fabrikam PSA")
    return {
        "first": first,
        "second": second,
        "disk": add_alert(admin_app, first, "disk", tenant="Contoso", host="srv01", minutes_ago=3),
        "cpu": add_alert(
            admin_app,
            first,
            "cpu",
            status="cleared",
            source="alertmanager",
            tenant="Contoso",
            host="web02",
            minutes_ago=2,
        ),
        "ram": add_alert(
            admin_app,
            second,
            "ram",
            status="acknowledged",
            tenant="Fabrikam",
            host="SRV01-b",
            minutes_ago=1,
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["ram", "cpu", "disk"]),
        ("status=cleared", ["cpu"]),
        ("source=alertmanager", ["cpu"]),
        ("integration_id={second}", ["ram"]),
        ("search=srv01", ["ram", "disk"]),  # host, any case
        ("search=fabri", ["ram"]),  # tenant
        ("search=contoso&status=active", ["disk"]),
        ("search=100%25", []),  # "%" is text, not a wildcard
    ],
)
def test_filters_narrow_the_alerts(
    browser: FlaskClient, alerts: dict[str, int], query: str, expected: list[str]
) -> None:
    sign_in(browser)
    page = browser.get("/admin/alerts?" + query.format(**alerts)).get_data(as_text=True)
    assert listed(page) == expected
    if not expected:
        assert "No alert matches these filters." in page


def test_the_list_pages_and_drops_blank_filters(
    browser: FlaskClient, alerts: dict[str, int]
) -> None:
    sign_in(browser)
    answer = browser.get("/admin/alerts?status=&source=&search=contoso")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/alerts?search=contoso"
    first = browser.get("/admin/alerts?limit=2").get_data(as_text=True)
    assert listed(first) == ["ram", "cpu"]
    older = re.search(r'href="([^"]+)">Older alerts', first)
    assert older
    second = browser.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert listed(second) == ["disk"]
    assert "Newer alerts" in second and "Older alerts" not in second


def test_an_empty_list_says_so(browser: FlaskClient) -> None:
    sign_in(browser)
    page = browser.get("/admin/alerts").get_data(as_text=True)
    assert "No alert yet" in page
    assert 'aria-current="page">Alerts<' in page


def story(app: Flask, integration_id: int) -> tuple[int, int]:
    """An alert with a queued, a duplicate and a stale event, a ticket, a delivery and its call."""
    alert_id = add_alert(app, integration_id, "disk", tenant="Contoso", host="srv01")
    with app.extensions["connector"].transaction() as session:
        alert = session.get_one(Alert, alert_id)
        alert.message = "/var is 99% full"
        alert.properties = {"datasource": "Disk", "autotask.accountid": "abc"}
        events = [
            AlertEvent(alert_id=alert_id, status="active", severity="critical", dedupe_key="1"),
            AlertEvent(
                alert_id=alert_id,
                status="active",
                severity="critical",
                dedupe_key="1",
                disposition="duplicate",
            ),
            AlertEvent(
                alert_id=alert_id,
                status="cleared",
                severity="critical",
                dedupe_key="2",
                disposition="stale: sent at 09:00, before the event applied at 09:05",
                warnings=["autotask.accountid 'abc' is not a company id; the tenant map decided"],
            ),
        ]
        session.add_all(events)
        session.flush()
        session.add(
            TicketLink(
                alert_id=alert_id,
                state="open",
                marker="m-disk",
                ticket_id=4711,
                ticket_number="T20261203.0001",
            )
        )
        delivery = Delivery(
            alert_id=alert_id,
            event_id=events[0].id,
            integration_id=integration_id,
            dedupe_key="1",
            state="done",
            attempts=2,
            outcome="created",
            plan={"outcome": "created", "steps": ["create"]},
            last_request={
                "step": "create",
                "method": "POST",
                "url": "https://webservices3.autotask.net/atservicesrest/v1.0/Tickets",
                "headers": {"Secret": "<redacted>", "Content-Type": "application/json"},
                "body": '{"title": "Disk full on srv01"}',
            },
            last_response={"status": 200, "body": '{"itemId": 4711}'},
        )
        session.add(delivery)
        session.add(
            Delivery(
                alert_id=alert_id,
                event_id=events[0].id,
                integration_id=integration_id,
                dedupe_key="1-again",
                state="discarded",
                outcome="failed",
                last_error="Autotask POST Tickets: HTTP 500",
                discarded_at=datetime.now(UTC),
                discard_reason="sent by hand in Autotask",
            )
        )
        session.flush()
        session.add(
            ApiCall(
                integration_id=integration_id,
                delivery_id=delivery.id,
                at=datetime.now(UTC),
                method="POST",
                entity="Tickets",
                http_status=200,
                execution_ms=48.2,
                request={
                    "url": "https://webservices3.autotask.net/atservicesrest/v1.0/Tickets",
                    "headers": {"Secret": "<redacted>"},
                    "body": '{"title": "Disk full on srv01", "companyID": 7}',
                },
                response={"status": 200, "headers": {}, "body": '{"itemId": 4711}'},
            )
        )
        return alert_id, int(delivery.id)


def test_an_alert_shows_its_events_with_the_reasons_its_ticket_deliveries_and_calls(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = add_integration(admin_app, "Contoso PSA")
    alert_id, delivery_id = story(admin_app, integration_id)
    sign_in(browser)
    page = browser.get(f"/admin/alerts/{alert_id}").get_data(as_text=True)

    assert "Title disk" in page and "/var is 99% full" in page
    assert "autotask.accountid" in page and "Contoso PSA" in page
    # Events in order, with what became of each.
    queued = page.index("queued for delivery")
    duplicate = page.index("ignored: a repeat of an event already received")
    stale = page.index("stale: sent at 09:00, before the event applied at 09:05")
    assert queued < duplicate < stale
    assert "is not a company id; the tenant map decided" in page  # the newest event's warning
    # The ticket, the delivery with its plan and last exchange, the calls with the request.
    assert "T20261203.0001" in page and "4711" in page
    assert f"#{delivery_id}" in page and "created" in page
    assert "&#34;steps&#34;" in page  # the plan
    assert "Disk full on srv01" in page
    assert (
        'discarded <small class="disposition-other">(sent by hand in Autotask)' in page
    )  # a dead letter's discard, and why
    assert "Autotask POST Tickets: HTTP 500" in page
    assert "&#34;companyID&#34;: 7" in page  # the call's request body, indented JSON
    assert "Secret: &lt;redacted&gt;" in page
    assert f'href="/admin/log?alert_id={alert_id}"' in page
    assert 'href="/admin/log?ticket_id=4711"' in page
    assert SECRET not in page


def test_the_json_api_and_the_page_tell_the_same_story(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = add_integration(admin_app, "Contoso PSA")
    alert_id, _ = story(admin_app, integration_id)
    body = browser.get(
        f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).get_json()
    assert [event["disposition"] for event in body["events"]] == [
        "queued",
        "duplicate",
        "stale: sent at 09:00, before the event applied at 09:05",
    ]
    assert body["ticket"]["ticket_number"] == "T20261203.0001"


def test_an_alert_without_ticket_or_calls_says_so(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = add_integration(admin_app, "Contoso PSA")
    alert_id = add_alert(admin_app, integration_id, "quiet")
    sign_in(browser)
    page = browser.get(f"/admin/alerts/{alert_id}").get_data(as_text=True)
    assert "No ticket: see the events and deliveries below for why." in page
    assert "No call to Autotask for this alert." in page


@pytest.mark.parametrize("alert_id", ["999", str(2**63 - 1), str(2**63), "9" * 40])
def test_an_unknown_alert_is_the_404_page(browser: FlaskClient, alert_id: str) -> None:
    sign_in(browser)
    answer = browser.get(f"/admin/alerts/{alert_id}")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "Error 404" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/alerts", "/admin/alerts/1", "/admin/alerts/999"])
def test_signed_out_the_alert_pages_send_to_the_sign_in(browser: FlaskClient, path: str) -> None:
    answer = browser.get(path)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login")


def test_a_ticket_closed_in_autotask_says_so_on_the_alert_page(
    browser: FlaskClient, admin_app: Flask, alerts: dict[str, int]
) -> None:
    with admin_app.extensions["connector"].transaction() as session:
        session.add(
            TicketLink(
                alert_id=alerts["disk"],
                state="closed_remotely",
                marker="m-closed",
                ticket_id=4712,
                ticket_status=5,
                closed_remotely_as="completed",
                closed_remotely_at=datetime.now(UTC),
                closed_remotely_by="29682887",
            )
        )
    sign_in(browser)
    page = browser.get(f"/admin/alerts/{alerts['disk']}").get_data(as_text=True)
    assert "completed in Autotask" in page
    assert "by person 29682887; the connector writes nothing more to it" in page
