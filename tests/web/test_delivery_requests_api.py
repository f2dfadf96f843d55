"""The integrations API: delivery requests (read, edit, generate) and previews."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.domain import AlertStatus, OutboundRequest, TargetResponse, TicketRef
from connector.errors import TargetUnavailable
from connector.integrations.settings import IntegrationSettings
from connector.payloads.requests import SLOTS, generate_requests
from connector.persistence.models import ApiCall, DeliveryRequest, Integration
from connector.ports import CallRecorder, TicketTarget
from tests.conftest import API_TOKEN, HOOK_TOKEN, error_of

PROFILES = {"rest": REST_PROFILE, "soap": SOAP_PROFILE}


#: Refusals decided before anything is stored: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH_APIS = pytest.mark.parametrize("api_flavour", ["rest", "soap"])

BAD_JSON_NOTE = """{
  "description": "##NOTETEXT##",
  "noteType": ##NOTETYPE##
  "publish": ##PUBLISH##,
  "ticketID": ##EXTERNALTICKETID##
}
"""

#: Valid for the three save-time samples; invalid JSON for an alert on host "boom".
BOOM_NOTE = """{
  "description": "##NOTETEXT##",
  "noteType": ##NOTETYPE##,
  "publish": ##PUBLISH##,
{% if alert.host == "boom" %}
  this is not JSON,
{% endif %}
  "ticketID": ##EXTERNALTICKETID##
}
"""


def auth(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: FlaskClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", auth())
    if body is not None:
        kwargs["json"] = body
    return client.open(f"/api/v1/{path}", method=method, **kwargs)


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def integration_id(app: Flask) -> int:
    with app.extensions["connector"].transaction() as session:
        found = session.scalar(select(Integration.id).order_by(Integration.id))
    assert found is not None
    return int(found)


def stored_rows(app: Flask) -> list[tuple[str, str, str, str]]:
    """Every stored request as (status, action, body, id_path), in a stable order."""
    with app.extensions["connector"].transaction() as session:
        rows = session.scalars(select(DeliveryRequest).order_by(DeliveryRequest.id))
        return sorted((r.status, r.action, r.body, r.id_path) for r in rows)


def stored_settings(app: Flask) -> dict[str, Any]:
    with app.extensions["connector"].transaction() as session:
        integration = session.get(Integration, integration_id(app))
        assert integration is not None
        return dict(integration.settings)


def request_of(state: dict[str, Any], status: str, action: str) -> dict[str, Any]:
    found = [r for r in state["requests"] if (r["status"], r["action"]) == (status, action)]
    assert len(found) == 1
    return dict(found[0])


def hook(client: FlaskClient, body: dict[str, Any]) -> int:
    """Post one generic alert; return its alert id (ingest commits before the 202)."""
    response = client.post("/hooks/generic", json=body, headers=auth(HOOK_TOKEN))
    assert response.status_code == 202, response.get_data(as_text=True)
    return int(response.get_json()["accepted"][0]["alert_id"])


class ZoneDownTarget:
    """A target whose zone lookup fails and that must never send anything."""

    def endpoint_url(self) -> str:
        raise TargetUnavailable("Autotask GET zoneInformation: request not sent (refused)")

    def send(self, request: OutboundRequest) -> TargetResponse:
        raise AssertionError("a preview sent a request")

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        raise AssertionError("a preview looked a ticket up")

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        raise AssertionError("a preview read a ticket")


def zone_down_factory(
    integration: Integration,
    settings: IntegrationSettings,
    recorder: CallRecorder,
    **_: Any,
) -> TicketTarget:
    return ZoneDownTarget()


# -- authentication and unknown integrations ----------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "integrations"),
        ("GET", "integrations/1"),
        ("GET", "integrations/1/requests"),
        ("PUT", "integrations/1/requests"),
        ("POST", "integrations/1/requests/generate"),
        ("POST", "integrations/1/preview"),
        ("POST", "test-delivery"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(auth("not-the-token"), id="wrong"),
        pytest.param(auth(HOOK_TOKEN), id="hook-token"),
    ],
)
def test_every_integration_route_needs_the_api_token(
    client: FlaskClient, connector_app: Flask, method: str, path: str, headers: dict[str, str]
) -> None:
    before = stored_rows(connector_app)

    error_of(call(client, method, path, {}, headers=headers), 401)

    assert stored_rows(connector_app) == before


@sqlite_only
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "integrations/999", None),
        ("GET", "integrations/999/requests", None),
        ("PUT", "integrations/999/requests", {"requests": []}),
        ("POST", "integrations/999/requests/generate", None),
        ("POST", "integrations/999/preview", {"status": "active"}),
        ("POST", "test-delivery", {"integration_id": 999}),
    ],
)
def test_an_unknown_integration_is_404(
    client: FlaskClient, method: str, path: str, body: Any
) -> None:
    error = error_of(call(client, method, path, body), 404)
    assert "no integration 999" in error["message"]


# -- integrations --------------------------------------------------------------------------------


@sqlite_only
def test_integrations_are_listed_without_their_secrets(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser
) -> None:
    listed = ok(call(client, "GET", "integrations"))
    one = ok(call(client, "GET", f"integrations/{integration_id(connector_app)}"))

    shown = listed["integrations"][0]
    assert listed["integrations"] == [
        {
            "id": integration_id(connector_app),
            "name": "default",
            "api_flavour": "rest",
            "zone_lookup_url": shown["zone_lookup_url"],
            "username": api_user.username,
            "secret_set": True,
            # Write-only: at most its last 4 characters.
            "integration_code": "••••" + api_user.integration_code[-4:],
            "active": True,
            "deactivated_at": None,
            "created_at": shown["created_at"],
            "updated_at": shown["updated_at"],
            "autotask_calls": {"state": "ok", "message": None, "until": None},
            # No call yet: the database is not known, the integration counts alone.
            "autotask_budget": {
                "database_id": None,
                "integrations": [integration_id(connector_app)],
                "calls_last_hour": 0,
                "ceiling": 10_000,
                "autotask_reported": None,
            },
        }
    ]
    assert listed["integrations"][0]["zone_lookup_url"].endswith("/atservicesrest/")
    assert {k: v for k, v in one.items() if k != "settings"} == listed["integrations"][0]
    assert one["settings"]["default_company_id"] == 29683414
    for text in (json.dumps(listed), json.dumps(one)):
        assert api_user.secret not in text
        assert api_user.integration_code not in text


# -- reading and editing requests ---------------------------------------------------------------


@BOTH_APIS
@sqlite_only
def test_get_requests_shows_every_slot_with_the_flavours_defaults(
    client: FlaskClient, connector_app: Flask, api_flavour: str
) -> None:
    state = ok(call(client, "GET", f"integrations/{integration_id(connector_app)}/requests"))

    assert state["same_for_every_status"] is False
    assert state["deliver"] == {s.value: True for s in AlertStatus}
    assert [(r["status"], r["action"]) for r in state["requests"]] == [
        (s.value, a.value) for s, a in SLOTS
    ]
    assert state["requests"] == [
        spec.to_json() for spec in generate_requests(PROFILES[api_flavour])
    ]
    create = request_of(state, "active", "create")
    if api_flavour == "rest":
        assert (create["method"], create["url"], create["format"]) == (
            "POST",
            "##ZONEURL##Tickets",
            "json",
        )
        assert create["id_path"] == "$.itemId"
    else:
        assert (create["method"], create["format"]) == ("POST", "xml")
        assert "ATWS:id" in create["id_path"]
    assert request_of(state, "cleared", "note")["id_path"] == ""


def test_put_replaces_the_given_requests_and_switches_only(
    client: FlaskClient, connector_app: Flask
) -> None:
    iid = integration_id(connector_app)
    before = ok(call(client, "GET", f"integrations/{iid}/requests"))
    note = request_of(before, "acknowledged", "note")
    note["body"] = note["body"].replace("##NOTETEXT##", "Ack: ##NOTETEXT## (##ADMIN##)")
    note["headers"] = {"X-Alert": "##ALERTID##"}

    after = ok(
        call(
            client,
            "PUT",
            f"integrations/{iid}/requests",
            {
                "same_for_every_status": True,
                "deliver": {"escalated": False},
                "requests": [note],
            },
        )
    )

    assert after["same_for_every_status"] is True
    assert after["deliver"] == {
        "active": True,
        "acknowledged": True,
        "escalated": False,
        "cleared": True,
    }
    assert request_of(after, "acknowledged", "note") == note
    unchanged = [r for r in before["requests"] if (r["status"], r["action"]) != note_slot(note)]
    assert [r for r in after["requests"] if (r["status"], r["action"]) != note_slot(note)] == (
        unchanged
    )
    assert ok(call(client, "GET", f"integrations/{iid}/requests")) == after
    settings = stored_settings(connector_app)
    assert settings["same_request_for_every_status"] is True
    assert settings["deliver"] == {"escalated": False}
    assert settings["default_company_id"] == 29683414  # the other settings are kept


def note_slot(request: dict[str, Any]) -> tuple[str, str]:
    return request["status"], request["action"]


@sqlite_only
def test_a_put_with_only_switches_keeps_every_request(
    client: FlaskClient, connector_app: Flask
) -> None:
    iid = integration_id(connector_app)
    before = stored_rows(connector_app)

    after = ok(call(client, "PUT", f"integrations/{iid}/requests", {"deliver": {"active": False}}))

    assert after["deliver"]["active"] is False
    assert stored_rows(connector_app) == before


@sqlite_only
def test_a_bad_json_template_is_refused_with_its_line_and_nothing_is_stored(
    client: FlaskClient, connector_app: Flask
) -> None:
    iid = integration_id(connector_app)
    state = ok(call(client, "GET", f"integrations/{iid}/requests"))
    good = request_of(state, "acknowledged", "note")
    good["body"] = good["body"].replace("##NOTETEXT##", "changed ##NOTETEXT##")
    bad = dict(request_of(state, "cleared", "note"), body=BAD_JSON_NOTE)
    rows, settings = stored_rows(connector_app), stored_settings(connector_app)

    error = error_of(
        call(
            client,
            "PUT",
            f"integrations/{iid}/requests",
            {"same_for_every_status": True, "requests": [good, bad]},
        ),
        400,
    )

    assert error["message"].startswith("cleared note request: ")
    assert "JSON" in error["message"]
    # The comma is missing after line 3; JSON finds out at line 4.
    assert error["details"]["line"] == 4
    assert error["details"]["line_text"] == '  "publish": ##PUBLISH##,'
    assert (error["details"]["status"], error["details"]["action"]) == ("cleared", "note")
    assert stored_rows(connector_app) == rows
    assert stored_settings(connector_app) == settings


@sqlite_only
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{{ ''.__class__.__mro__ }}", id="mro"),
        pytest.param('{"x": "{{ cycler.__init__.__globals__ }}"}', id="globals"),
    ],
)
def test_a_sandbox_escape_is_refused_at_save(
    client: FlaskClient, connector_app: Flask, body: str
) -> None:
    iid = integration_id(connector_app)
    note = dict(
        request_of(ok(call(client, "GET", f"integrations/{iid}/requests")), "active", "note")
    )
    note["body"] = body
    rows = stored_rows(connector_app)

    error = error_of(call(client, "PUT", f"integrations/{iid}/requests", {"requests": [note]}), 400)

    assert error["message"].startswith("active note request: ")
    assert stored_rows(connector_app) == rows


def valid_request(**changes: Any) -> dict[str, Any]:
    spec = next(s for s in generate_requests(REST_PROFILE) if s.slot == SLOTS[4])
    return {**spec.to_json(), **changes}


@sqlite_only
@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(
            {"requests": [valid_request(status="resolved")]}, "requests.0.status", id="status"
        ),
        pytest.param(
            {"requests": [valid_request(action="delete")]}, "requests.0.action", id="action"
        ),
        pytest.param({"requests": [valid_request(method="GET")]}, "requests.0.method", id="method"),
        pytest.param(
            {"requests": [valid_request(format="yaml")]}, "requests.0.format", id="format"
        ),
        pytest.param({"requests": [valid_request(colour="red")]}, "requests.0.colour", id="field"),
        pytest.param(
            {"requests": [valid_request(id_path="$.x")]}, "requests.0.id_path", id="idpath"
        ),
        pytest.param({"requests": [{"status": "active"}]}, "requests.0.body", id="missing"),
        pytest.param({"requests": [valid_request(), valid_request()]}, "requests.1", id="twice"),
        pytest.param(
            {"requests": [valid_request(headers={"X": 1})]}, "requests.0.headers", id="hdr"
        ),
        pytest.param({"deliver": {"resolved": True}}, "deliver.resolved", id="deliver-status"),
        pytest.param({"deliver": {"active": "yes"}}, "deliver.active", id="deliver-value"),
        pytest.param({"same_for_every_status": 1}, "same_for_every_status", id="switch"),
        pytest.param({"everything": True}, "everything", id="top-field"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_field(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], named: str
) -> None:
    rows, settings = stored_rows(connector_app), stored_settings(connector_app)

    error = error_of(
        call(client, "PUT", f"integrations/{integration_id(connector_app)}/requests", body), 400
    )

    assert f"{named}" in error["message"], error["message"]
    assert stored_rows(connector_app) == rows
    assert stored_settings(connector_app) == settings


@sqlite_only
@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        pytest.param(
            valid_request(status="acknowledged", action="create"),
            "there is no such request",
            id="create-not-active",
        ),
        pytest.param(
            valid_request(headers={"Secret": "x"}), "set by the connector", id="reserved-header"
        ),
        pytest.param(valid_request(body="##TITEL##"), "TITEL", id="unknown-token"),
    ],
)
def test_requests_that_cannot_work_are_refused(
    client: FlaskClient, connector_app: Flask, request_body: dict[str, Any], words: str
) -> None:
    rows = stored_rows(connector_app)

    error = error_of(
        call(
            client,
            "PUT",
            f"integrations/{integration_id(connector_app)}/requests",
            {"requests": [request_body]},
        ),
        400,
    )

    assert words in error["message"]
    assert stored_rows(connector_app) == rows


@sqlite_only
@pytest.mark.parametrize("raw", ["[]", "not json", '"text"'])
def test_a_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, connector_app: Flask, raw: str
) -> None:
    response = client.put(
        f"/api/v1/integrations/{integration_id(connector_app)}/requests",
        data=raw,
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert "JSON object" in error_of(response, 400)["message"]


@sqlite_only
def test_generate_restores_every_default(client: FlaskClient, connector_app: Flask) -> None:
    iid = integration_id(connector_app)
    defaults = ok(call(client, "GET", f"integrations/{iid}/requests"))
    note = request_of(defaults, "cleared", "note")
    ok(
        call(
            client,
            "PUT",
            f"integrations/{iid}/requests",
            {"requests": [dict(note, body=note["body"].replace("##NOTETEXT##", "edited"))]},
        )
    )

    edited = stored_rows(connector_app)

    refused = error_of(call(client, "POST", f"integrations/{iid}/requests/generate"), 409)

    assert "replace_customized" in refused["message"]
    (customized,) = refused["details"]["customized"]
    assert (customized["status"], customized["action"]) == ("cleared", "note")
    assert customized["diff"].startswith("--- your cleared note request\n")
    assert "\n-" in customized["diff"] and "edited" in customized["diff"]
    assert "\n+" in customized["diff"] and "##NOTETEXT##" in customized["diff"]
    assert stored_rows(connector_app) == edited

    regenerated = ok(
        call(
            client,
            "POST",
            f"integrations/{iid}/requests/generate",
            {"replace_customized": True},
        )
    )

    assert regenerated["requests"] == defaults["requests"]
    assert len(stored_rows(connector_app)) == len(SLOTS)
    assert all("edited" not in row[2] for row in stored_rows(connector_app))


@sqlite_only
def test_generate_over_requests_nobody_customized_needs_no_confirmation(
    client: FlaskClient, connector_app: Flask
) -> None:
    iid = integration_id(connector_app)
    defaults = ok(call(client, "GET", f"integrations/{iid}/requests"))

    regenerated = ok(call(client, "POST", f"integrations/{iid}/requests/generate", {}))

    assert regenerated["requests"] == defaults["requests"]
    error = error_of(
        call(
            client,
            "POST",
            f"integrations/{iid}/requests/generate",
            {"replace_customized": "yes"},
        ),
        400,
    )
    assert "replace_customized" in error["message"]


# -- preview -------------------------------------------------------------------------------------


def no_writes(sandbox: Sandbox) -> None:
    """Only zone lookups reached the sandbox, and it holds no ticket."""
    operations = [c.operation for c in sandbox.calls()]
    assert all("zone" in op.lower() for op in operations), operations
    assert sandbox.tickets_with_notes() == []


@BOTH_APIS
@sqlite_only
def test_preview_of_the_sample_renders_every_request_of_the_status_and_sends_nothing(
    client: FlaskClient,
    connector_app: Flask,
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    api_flavour: str,
    api_user: ApiUser,
) -> None:
    iid = integration_id(connector_app)

    active = ok(call(client, "POST", f"integrations/{iid}/preview", {"status": "active"}))
    acked = ok(
        call(
            client,
            "POST",
            f"integrations/{iid}/preview",
            {"status": "acknowledged", "ticket_id": 4242},
        )
    )

    assert [r["action"] for r in active["requests"]] == ["create", "update", "note"]
    assert [r["action"] for r in acked["requests"]] == ["update", "note"]
    assert acked["status"] == "acknowledged"
    assert acked["alert"] == "sample"
    if api_flavour == "soap":  # by default a SOAP acknowledgement only adds its note
        (warning,) = acked["warnings"]
        assert "status_on_acknowledge" in warning
    else:
        assert acked["warnings"] == []
    create = active["requests"][0]
    assert create["method"] == "POST"
    assert create["url"].startswith(sandbox_server.url)
    assert "CPU busy above 90 % on srv01" in create["body"]
    assert "4242" in acked["requests"][0]["body"]
    if api_flavour == "rest":
        assert create["url"].endswith("/Tickets")
        assert json.loads(create["body"])["companyID"] == 29683414
        assert json.loads(acked["requests"][0]["body"]) == {"id": 4242, "status": 8}
        assert acked["requests"][1]["url"].endswith("/Tickets/4242/Notes")
    else:
        # Left blank by the template: the SOAP client fills it when it sends.
        assert re.search(
            r"<IntegrationCode\s*/>|<IntegrationCode>\s*</IntegrationCode>", create["body"]
        )
    text = json.dumps([active, acked])
    assert api_user.integration_code not in text
    assert api_user.secret not in text
    no_writes(sandbox)


@sqlite_only
def test_the_preview_never_shows_the_tracking_identifier_wherever_a_request_puts_it(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser
) -> None:
    """The ##INTEGRATIONCODE## token renders blank: no template ever sees the code."""
    iid = integration_id(connector_app)
    state = ok(call(client, "GET", f"integrations/{iid}/requests"))
    note = dict(request_of(state, "cleared", "note"), headers={"X-Tracking": "##INTEGRATIONCODE##"})
    ok(call(client, "PUT", f"integrations/{iid}/requests", {"requests": [note]}))

    shown = ok(call(client, "POST", f"integrations/{iid}/preview", {"status": "cleared"}))

    assert shown["requests"][1]["headers"] == {"X-Tracking": ""}
    assert api_user.integration_code not in json.dumps(shown)
    assert any("sample ticket" in w for w in shown["warnings"])


@BOTH_APIS
def test_preview_of_a_stored_alert_uses_its_latest_event_and_the_integrations_routing(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_flavour: str
) -> None:
    iid = integration_id(connector_app)
    alert = {
        "id": "disk-srv07",
        "status": "active",
        "severity": "critical",
        "title": "Disk full on srv07",
        "host": "srv07",
        "tenant": "fabrikam",
    }
    alert_id = hook(client, alert)
    hook(client, dict(alert, status="acknowledged", acknowledged_by="jane", note="on it"))

    shown = ok(
        call(
            client,
            "POST",
            f"integrations/{iid}/preview",
            {"status": "active", "alert_id": alert_id},
        )
    )
    acked = ok(call(client, "POST", f"integrations/{iid}/preview", {"alert_id": alert_id}))

    assert shown["alert"] == {"id": alert_id, "fingerprint": "disk-srv07"}
    create = shown["requests"][0]["body"]
    assert "Disk full on srv07" in create
    if api_flavour == "rest":
        assert json.loads(create)["companyID"] == 29683415  # fabrikam's company
        assert json.loads(create)["priority"] == 4  # critical
        assert json.loads(create)["externalID"] == "preview-marker"
    else:
        assert "<AccountID>29683415</AccountID>" in create
    assert acked["status"] == "acknowledged"  # the latest event's status
    assert "By: jane" in acked["requests"][1]["body"]
    assert "Note: on it" in acked["requests"][1]["body"]
    no_writes(sandbox)


@sqlite_only
def test_preview_of_an_alert_the_template_cannot_carry_is_422_with_the_line(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox
) -> None:
    iid = integration_id(connector_app)
    state = ok(call(client, "GET", f"integrations/{iid}/requests"))
    ok(
        call(
            client,
            "PUT",
            f"integrations/{iid}/requests",
            {"requests": [dict(request_of(state, "acknowledged", "note"), body=BOOM_NOTE)]},
        )
    )
    alert_id = hook(
        client,
        {"id": "boom-1", "status": "active", "severity": "error", "title": "x", "host": "boom"},
    )

    error = error_of(
        call(
            client,
            "POST",
            f"integrations/{iid}/preview",
            {"status": "acknowledged", "alert_id": alert_id},
        ),
        422,
    )

    assert error["message"].startswith("acknowledged note request: ")
    assert error["details"]["line"] == 6
    assert (error["details"]["status"], error["details"]["action"]) == ("acknowledged", "note")
    no_writes(sandbox)


@sqlite_only
def test_preview_renders_unsaved_requests_and_stores_nothing(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox
) -> None:
    iid = integration_id(connector_app)
    state = ok(call(client, "GET", f"integrations/{iid}/requests"))
    note = request_of(state, "cleared", "note")
    unsaved = dict(note, body=note["body"].replace("##NOTETEXT##", "Unsaved: ##NOTETEXT##"))
    rows = stored_rows(connector_app)

    shown = ok(
        call(
            client,
            "POST",
            f"integrations/{iid}/preview",
            {"status": "cleared", "requests": [unsaved]},
        )
    )
    broken = error_of(
        call(
            client,
            "POST",
            f"integrations/{iid}/preview",
            {"status": "cleared", "requests": [dict(note, body=BAD_JSON_NOTE)]},
        ),
        422,
    )

    assert json.loads(shown["requests"][1]["body"])["description"].startswith("Unsaved: ")
    assert broken["details"]["line"] == 4
    assert broken["details"]["line_text"] == '  "publish": ##PUBLISH##,'
    assert stored_rows(connector_app) == rows
    no_writes(sandbox)


@sqlite_only
def test_preview_when_the_zone_lookup_fails_shows_the_token_and_warns(
    client: FlaskClient, connector_app: Flask
) -> None:
    connector_app.extensions["connector"].target_factory = zone_down_factory

    shown = ok(
        call(
            client,
            "POST",
            f"integrations/{integration_id(connector_app)}/preview",
            {"ticket_id": 7},
        )
    )

    assert shown["status"] == "active"
    assert shown["requests"][0]["url"] == "##ZONEURL##Tickets"
    assert shown["requests"][2]["url"] == "##ZONEURL##Tickets/7/Notes"
    assert len(shown["warnings"]) == 1
    assert "zone lookup failed" in shown["warnings"][0]
    assert "refused" in shown["warnings"][0]


@sqlite_only
def test_preview_records_its_zone_lookup_as_api_activity(
    client: FlaskClient, connector_app: Flask
) -> None:
    ok(call(client, "POST", f"integrations/{integration_id(connector_app)}/preview", {}))

    with connector_app.extensions["connector"].transaction() as session:
        calls = list(session.scalars(select(ApiCall)))
    assert calls
    assert all(c.delivery_id is None for c in calls)


@sqlite_only
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        pytest.param({"alert_id": 999}, 404, "has no alert 999", id="unknown-alert"),
        pytest.param({"status": "gone"}, 400, "status", id="status"),
        pytest.param({"alert_id": "12"}, 400, "alert_id", id="alert-id-text"),
        pytest.param({"ticket_id": 0}, 400, "ticket_id", id="ticket-id-zero"),
        # No database id column holds it: a 400, not the database's error.
        pytest.param({"alert_id": 2**63}, 400, "alert_id", id="alert-id-out-of-range"),
        pytest.param({"ticket_id": 2**63}, 400, "ticket_id", id="ticket-id-out-of-range"),
        pytest.param({"colour": "red"}, 400, "colour", id="unknown-field"),
    ],
)
def test_preview_refusals(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], status: int, words: str
) -> None:
    connector_app.extensions["connector"].target_factory = zone_down_factory
    error = error_of(
        call(client, "POST", f"integrations/{integration_id(connector_app)}/preview", body), status
    )
    assert words in error["message"]
