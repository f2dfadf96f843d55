"""POST /api/v1/test-delivery: a test ticket in the real sandbox, and plain-word failures."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, LimitSettings, Sandbox
from adapters.targets.autotask.profile import REST_PROFILE
from connector.domain import OutboundRequest, RequestAction, TargetResponse, TicketRef
from connector.errors import (
    ConfigError,
    ExtractionError,
    RenderError,
    TargetAuthError,
    TargetRejected,
    TargetUnavailable,
    TooManyRequests,
)
from connector.integrations.settings import IntegrationSettings
from connector.persistence.models import ApiCall, ApiToken, Integration, utcnow
from connector.pipeline.governor import Throttled
from connector.pipeline.testdelivery import TEST_TITLE, admit_test_delivery, explain
from connector.ports import CallRecorder, TicketTarget
from connector.secrets import token_hash
from tests import canaries
from tests.conftest import API_TOKEN
from tests.e2e.harness import free_port

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH_APIS = pytest.mark.parametrize("api_flavour", ["rest", "soap"])

#: An id path that finds nothing in Autotask's answer, per flavour.
MISSING_ID_PATH = {"rest": "$.ticket.id", "soap": "//ATWS:EntityResults/ATWS:Entity/ATWS:nothing"}


def post_test_delivery(client: FlaskClient, body: dict[str, Any] | None = None) -> Any:
    return client.post(
        "/api/v1/test-delivery",
        json=body if body is not None else {},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


def answer(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return dict(response.get_json())


def sandbox_ticket(sandbox: Sandbox, ticket_id: int) -> dict[str, Any]:
    tickets = {t["id"]: t for t in sandbox.tickets_with_notes()}
    assert ticket_id in tickets, sorted(tickets)
    return dict(tickets[ticket_id])


def change_integration(app: Flask, **values: Any) -> None:
    """Set integration columns; `secret` and `integration_code` are encrypted first."""
    services = app.extensions["connector"]
    box = services.secret_box()
    with services.transaction() as session:
        integration = session.scalar(select(Integration).order_by(Integration.id))
        assert integration is not None
        for name, value in values.items():
            if name in ("secret", "integration_code"):
                setattr(integration, f"{name}_encrypted", box.encrypt(value))
            else:
                setattr(integration, name, value)


def api_calls(app: Flask) -> list[ApiCall]:
    with app.extensions["connector"].transaction() as session:
        return list(session.scalars(select(ApiCall).order_by(ApiCall.id)))


def no_secrets(body: dict[str, Any], user: ApiUser) -> None:
    text = json.dumps(body)
    assert user.secret not in text
    assert user.integration_code not in text


# -- against the sandbox ---------------------------------------------------------------------------


@BOTH_APIS
def test_a_test_ticket_is_created_in_autotask(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_user: ApiUser
) -> None:
    body = answer(post_test_delivery(client), 200)

    assert body["ok"] is True
    ticket = sandbox_ticket(sandbox, body["ticket_id"])
    assert ticket["title"] == TEST_TITLE
    assert "may be deleted" in ticket["description"]
    assert ticket["companyID"] == 29683414
    assert ticket["status"] == 1
    assert ticket["externalID"] == body["marker"]
    assert body["marker"].startswith("test-") and len(body["marker"]) == 25
    assert body["ticket_number"] == ticket["ticketNumber"]
    assert body["response"]["status"] == 200
    assert body["request"]["method"] == "POST"
    assert "completed" not in body
    assert [t["id"] for t in sandbox.tickets_with_notes()] == [body["ticket_id"]]
    no_secrets(body, api_user)
    calls = api_calls(connector_app)
    assert len(calls) >= 2  # the zone lookup and the create, at least
    assert all(c.delivery_id is None for c in calls)
    assert {c.api_user for c in calls} == {api_user.username}


@BOTH_APIS
@sqlite_only
def test_complete_leaves_the_test_ticket_completed_with_a_note(
    client: FlaskClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    body = answer(post_test_delivery(client, {"complete": True, "company_id": 29683415}), 200)

    ticket = sandbox_ticket(sandbox, body["ticket_id"])
    assert ticket["companyID"] == 29683415
    assert ticket["status"] == 5
    assert ticket["completedDate"]
    assert [n["title"] for n in ticket["notes"]] == [f"{TEST_TITLE} — cleared"]
    assert ticket["notes"][0]["description"].startswith("Alert cleared.")
    completed = body["completed"]
    assert completed["ticket_status"] == 5
    assert completed["done"] is True
    assert completed["note"]["response"]["status"] == 200
    assert completed["update"]["response"]["status"] == 200
    no_secrets(body, api_user)


@BOTH_APIS
@sqlite_only
def test_a_title_and_text_of_its_own_go_into_the_ticket(
    client: FlaskClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    title = 'Probe "quoted" <b>title</b> & more 🚀'
    text = "First line\nSecond line\twith a tab"

    body = answer(post_test_delivery(client, {"title": title, "text": text}), 200)

    ticket = sandbox_ticket(sandbox, body["ticket_id"])
    assert ticket["title"] == title
    assert "Second line\twith a tab" in ticket["description"]
    assert body["title"] == title
    assert body["ticket_number"] == ticket["ticketNumber"]
    no_secrets(body, api_user)


@BOTH_APIS
@sqlite_only
def test_a_wrong_secret_is_explained(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_user: ApiUser
) -> None:
    change_integration(connector_app, secret=canaries.WRONG_AUTOTASK_SECRET)

    body = answer(post_test_delivery(client), 502)

    assert body["ok"] is False
    assert body["error"] == (
        "Autotask refused the API user's credentials (HTTP 401): check the username and secret"
    )
    assert body["request"]["method"] == "POST"
    assert sandbox.tickets_with_notes() == []
    no_secrets(body, api_user)
    assert canaries.WRONG_AUTOTASK_SECRET not in json.dumps(body)
    assert any(c.http_status == 401 for c in api_calls(connector_app))


@BOTH_APIS
@sqlite_only
def test_a_wrong_tracking_identifier_is_explained(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_user: ApiUser
) -> None:
    change_integration(connector_app, integration_code=canaries.WRONG_INTEGRATION_CODE)

    body = answer(post_test_delivery(client), 502)

    assert body["error"] == "the API tracking identifier (integration code) is not valid"
    assert sandbox.tickets_with_notes() == []
    no_secrets(body, api_user)
    assert canaries.WRONG_INTEGRATION_CODE not in json.dumps(body)


@BOTH_APIS
@sqlite_only
def test_an_unknown_company_is_explained(
    client: FlaskClient, sandbox: Sandbox, api_flavour: str
) -> None:
    body = answer(post_test_delivery(client, {"company_id": 99999999}), 502)

    assert body["error"] == "Autotask has no active company 99999999"
    # REST answers 500; SOAP answers 200 with the error in its ATWSResponse.
    assert body["response"]["status"] == (500 if api_flavour == "rest" else 200)
    assert "companyID" in json.dumps(body["response"])
    assert sandbox.tickets_with_notes() == []


@BOTH_APIS
@sqlite_only
def test_an_inactive_company_is_explained(client: FlaskClient, sandbox: Sandbox) -> None:
    # The sandbox seeds 29683417 "Adventure Works (inactive)"; Autotask refuses new tickets for
    # it with its reference error (autotask-api.md §14).
    body = answer(post_test_delivery(client, {"company_id": 29683417}), 502)

    assert body["error"] == "Autotask has no active company 29683417"
    assert sandbox.tickets_with_notes() == []


@BOTH_APIS
@sqlite_only
def test_a_broken_id_path_is_explained_and_the_answer_shown(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_flavour: str
) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with connector_app.extensions["connector"].transaction() as session:
        iid = session.scalar(select(Integration.id))
    state = client.get(f"/api/v1/integrations/{iid}/requests", headers=headers).get_json()
    create = next(r for r in state["requests"] if r["action"] == "create")
    path = MISSING_ID_PATH[api_flavour]
    saved = client.put(
        f"/api/v1/integrations/{iid}/requests",
        json={"requests": [dict(create, id_path=path)]},
        headers=headers,
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)

    body = answer(post_test_delivery(client), 502)

    assert body["error"] == f"the ticket id was not found at {path} in Autotask's answer"
    assert body["response"]["status"] == 200
    # The create went through: Autotask has the ticket the connector could not read.
    assert len(sandbox.tickets_with_notes()) == 1


@sqlite_only
def test_no_company_anywhere_is_a_clear_400(client: FlaskClient, connector_app: Flask) -> None:
    with connector_app.extensions["connector"].transaction() as session:
        integration = session.scalar(select(Integration))
        assert integration is not None
        integration.settings = {
            k: v for k, v in integration.settings.items() if k != "default_company_id"
        }

    body = answer(post_test_delivery(client), 400)

    assert body["ok"] is False
    assert "no company" in body["error"]
    assert "company_id" in body["error"]
    assert api_calls(connector_app) == []


@sqlite_only
def test_an_unreachable_autotask_is_explained(client: FlaskClient, connector_app: Flask) -> None:
    change_integration(
        connector_app, zone_lookup_url=f"http://127.0.0.1:{free_port()}/atservicesrest/"
    )

    body = answer(post_test_delivery(client), 502)

    assert body["error"].startswith(
        "the zone lookup failed: Autotask could not be reached or gave no usable answer"
    )
    assert "request not sent" in body["error"]


@sqlite_only
@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"integration_id": "1"}, "integration_id", id="id-text"),
        # No database id column holds it: a 400, not the database's error.
        pytest.param({"integration_id": 2**63}, "integration_id", id="id-out-of-range"),
        pytest.param({"company_id": True}, "company_id", id="company-bool"),
        pytest.param({"complete": "yes"}, "complete", id="complete-text"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
        pytest.param({"title": ""}, "title", id="title-empty"),
        pytest.param({"title": "   "}, "title: must not be blank", id="title-blank"),
        pytest.param({"title": "x" * 256}, "title", id="title-too-long"),
        pytest.param({"title": "a\nb"}, "title: must not contain control", id="title-newline"),
        pytest.param({"text": 5}, "text", id="text-number"),
        pytest.param({"text": "x\x00"}, "text: must not contain control", id="text-nul"),
        pytest.param({"text": "x" * 8001}, "text", id="text-too-long"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], words: str
) -> None:
    response = post_test_delivery(client, body)
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]
    assert api_calls(connector_app) == []


# -- with a fake target ---------------------------------------------------------------------


class FakeTarget:
    """Answers every create with ticket 77 and records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[OutboundRequest] = []

    def endpoint_url(self) -> str:
        return "https://webservices2.autotask.net/ATServicesRest/V1.0/"

    def send(self, request: OutboundRequest) -> TargetResponse:
        self.sent.append(request)
        sent = {"method": request.method, "url": request.url, "headers": {}, "body": request.body}
        if request.action is RequestAction.CREATE:
            return TargetResponse(200, '{"itemId": 77}', sent)
        return TargetResponse(200, '{"itemId": 1}', sent)

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        return None

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        return TicketRef(ticket_id, "T20240101.0077", 5 if len(self.sent) > 1 else 1)


@sqlite_only
def test_the_target_gets_the_rendered_requests_in_order(
    client: FlaskClient, connector_app: Flask
) -> None:
    fake = FakeTarget()

    def factory(
        integration: Integration,
        settings: IntegrationSettings,
        recorder: CallRecorder,
        **_: Any,
    ) -> TicketTarget:
        return fake

    connector_app.extensions["connector"].target_factory = factory

    body = answer(post_test_delivery(client, {"complete": True}), 200)

    assert (body["ticket_id"], body["ticket_number"]) == (77, "T20240101.0077")
    assert [(r.action, r.method, r.url) for r in fake.sent] == [
        (
            RequestAction.CREATE,
            "POST",
            "https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets",
        ),
        (
            RequestAction.NOTE,
            "POST",
            "https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets/77/Notes",
        ),
        (
            RequestAction.UPDATE,
            "PATCH",
            "https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets",
        ),
    ]
    created = json.loads(fake.sent[0].body)
    assert created["title"] == TEST_TITLE
    assert created["priority"] == 3  # info → Low
    completed = json.loads(fake.sent[2].body)
    assert (completed["id"], completed["status"]) == (77, 5)
    assert completed["resolution"].startswith("Alert cleared.")
    assert body["completed"]["ticket_status"] == 5


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (TargetAuthError("x", response={"status": 401, "body": ""}), "HTTP 401"),
        (TargetAuthError("HTTP 500: IntegrationCode is invalid."), "integration code"),
        (  # autotask-api.md §14, KelvinTegelaar/AutotaskAPI #17
            TargetAuthError(
                "Autotask GET ZoneInformation: HTTP 500: Zone information could not be determined"
            ),
            "does not know the API user 'me@x'",
        ),
        (
            TargetAuthError(
                "Autotask POST Tickets: HTTP 500: Something went wrong; Autotask refused a check"
                " of the credentials too (…): it does not accept this API user's username,"
                " secret or tracking identifier"
            ),
            "tracking identifier (integration code) is not valid",
        ),
        (
            TargetRejected("Value does not reference an existing entity for companyID . "),
            "no company 5",
        ),
        (
            TargetRejected(
                "Reference value on field: companyID of type: Account does not exist or is"
                " invalid. ; on record number [1]."
            ),
            "no active company 5",
        ),
        (ExtractionError("nothing there"), "not found at $.itemId"),
        (RenderError("line 3: boom", line=3), "cannot be rendered: line 3: boom"),
        (TargetUnavailable("request not sent (ConnectionError)"), "could not be reached"),
        (
            TargetUnavailable("HTTP 500: Something went wrong", max_attempts=3),
            "refused the request without saying why: HTTP 500: Something went wrong",
        ),
        (
            TargetRejected("Autotask zone URL 'x' is on host 'evil'; refusing to call it."),
            "not allowed",
        ),
        (ConfigError("SECRET_KEYS is empty"), "not configured correctly"),
        (
            Throttled("the integration's calls are paused", retry_after=5),
            "holds this integration's calls to Autotask back now, nothing was sent: the"
            " integration's calls are paused",
        ),
        (TargetRejected("Some other refusal."), "Autotask refused the request: Some other"),
    ],
)
def test_explain_puts_failures_in_plain_words(error: Exception, words: str) -> None:
    assert words in explain(
        error, company_id=5, id_path="$.itemId", username="me@x", profile=REST_PROFILE
    )


# -- how often and how long ---------------------------------------------------------------------


def add_api_token(app: Flask, token: str) -> None:
    """A second live API token (another caller)."""
    with app.extensions["connector"].transaction() as session:
        session.add(ApiToken(token_sha256=token_hash(token), label="second caller"))


@sqlite_only
@pytest.mark.parametrize(
    "connector_settings",
    [{"TEST_DELIVERIES_PER_MINUTE": 2}],
    indirect=True,
)
def test_more_test_deliveries_a_minute_than_allowed_are_429_per_caller(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox
) -> None:
    first, second = (answer(post_test_delivery(client), 200) for _ in range(2))

    refused = post_test_delivery(client)

    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert "at most 2 test deliveries a minute" in error["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(refused.headers["Retry-After"])
    # Nothing was sent for the refused one: two tickets, and no call after the second.
    assert {t["id"] for t in sandbox.tickets_with_notes()} == {
        first["ticket_id"],
        second["ticket_id"],
    }
    other = "another-callers-api-token-0123456789"
    add_api_token(connector_app, other)
    answer(
        client.post("/api/v1/test-delivery", json={}, headers={"Authorization": f"Bearer {other}"}),
        200,
    )


@sqlite_only
def test_a_sender_may_send_again_once_its_oldest_leaves_the_minute(connector_app: Flask) -> None:
    services = connector_app.extensions["connector"]
    start = utcnow()
    for second in range(10):
        admit_test_delivery(services, "admin:7", start + timedelta(seconds=second))

    with pytest.raises(TooManyRequests) as refused:
        admit_test_delivery(services, "admin:7", start + timedelta(seconds=30))
    assert refused.value.retry_after == 30  # the first leaves the window at start + 60 s

    admit_test_delivery(services, "admin:8", start + timedelta(seconds=30))
    admit_test_delivery(services, "admin:7", start + timedelta(seconds=60))
    with pytest.raises(TooManyRequests):
        admit_test_delivery(services, "admin:7", start + timedelta(seconds=60.5))


@sqlite_only
@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(latency_tiers=[], latency_seconds=5.0)], indirect=False
)
@pytest.mark.parametrize(
    "connector_settings", [{"TEST_DELIVERY_TIMEOUT_SECONDS": 0.3}], indirect=True
)
def test_a_test_delivery_waits_its_own_short_time_for_autotask(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox
) -> None:
    """Autotask answering in 5 s: the test delivery gives up after its 0.3 s, not the
    worker's AUTOTASK_READ_TIMEOUT (5 s in these tests), and says Autotask did not answer."""
    started = time.monotonic()
    body = answer(post_test_delivery(client), 502)
    waited = time.monotonic() - started

    assert body["ok"] is False
    assert "ReadTimeout" in body["detail"], body
    assert waited < 4.5, waited  # the answer would have taken 5 s
