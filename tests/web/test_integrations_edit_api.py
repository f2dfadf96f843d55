"""Live configuration through the JSON API: POST and PATCH /api/v1/integrations.

The same checks as the start-up seed and `connector config import` (integrations/editing.py):
each refusal is a 4xx naming the field by its path, and leaves nothing stored; no answer and no
log line ever carries the secret or the whole tracking identifier.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.integrations import editing
from connector.payloads.requests import generate_requests
from connector.persistence.models import DeliveryRequest, Integration
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id, error_of

PROFILES = {"rest": REST_PROFILE, "soap": SOAP_PROFILE}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Secrets given to PATCH; they must never come back either.
OTHER_SECRET = canaries.OTHER_AUTOTASK_SECRET
OTHER_CODE = canaries.OTHER_INTEGRATION_CODE


def api(client: FlaskClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", {"Authorization": f"Bearer {API_TOKEN}"})
    if body is not None:
        kwargs["json"] = body
    return client.open(f"/api/v1/{path}", method=method, **kwargs)


def answer(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return dict(response.get_json())


def zone_lookup_url(server: SandboxServer, flavour: str) -> str:
    return {"rest": server.rest_url, "soap": server.soap_url}[flavour]


def new_integration(server: SandboxServer, user: ApiUser, **fields: Any) -> dict[str, Any]:
    """A POST body for a second integration on the sandbox (its real API user)."""
    body: dict[str, Any] = {
        "name": "second",
        "api_flavour": "rest",
        "zone_lookup_url": server.rest_url,
        "username": user.username,
        "secret": user.secret,
        "integration_code": user.integration_code,
        "settings": {"allowed_zone_hosts": ["127.0.0.1"], "default_company_id": 29683414},
    }
    body.update(fields)
    return body


def stored(app: Flask) -> list[tuple[Any, ...]]:
    """Every integration as stored (name, flavour, URL, user, settings, updated_at) and requests."""
    with app.extensions["connector"].sessions() as session:
        rows = session.scalars(select(Integration).order_by(Integration.id))
        integrations = [
            (r.name, r.api_flavour, r.zone_lookup_url, r.username, r.settings, r.updated_at)
            for r in rows
        ]
        requests = session.scalar(select(func.count()).select_from(DeliveryRequest))
    return [*integrations, ("requests", requests)]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# -- create ----------------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("flavour", ["rest", "soap"])
def test_post_creates_an_integration_with_its_flavours_default_requests(
    client: FlaskClient,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    sandbox: Sandbox,
    flavour: str,
) -> None:
    body = new_integration(
        sandbox_server,
        api_user,
        api_flavour=flavour,
        zone_lookup_url=zone_lookup_url(sandbox_server, flavour),
    )
    created = api(client, "POST", "integrations", body)

    shown = answer(created, 201)
    assert created.headers["Location"] == f"/api/v1/integrations/{shown['id']}"
    assert shown["name"] == "second"
    assert shown["api_flavour"] == flavour
    assert shown["secret_set"] is True
    assert shown["integration_code"] == "••••" + api_user.integration_code[-4:]
    assert shown["settings"] == body["settings"]
    fetched = answer(api(client, "GET", created.headers["Location"].removeprefix("/api/v1/")))
    assert fetched["id"] == shown["id"]
    requests = answer(api(client, "GET", f"integrations/{shown['id']}/requests"))["requests"]
    assert requests == [spec.to_json() for spec in generate_requests(PROFILES[flavour])]

    # The stored credentials work: a test ticket through the new integration reaches Autotask.
    sent = answer(api(client, "POST", "test-delivery", {"integration_id": shown["id"]}))
    assert sent["ok"] is True
    assert len(sandbox.tickets_with_notes()) == 1

    listed = api(client, "GET", "integrations").get_data(as_text=True)
    texts = [created.get_data(as_text=True), json.dumps(fetched), listed, json.dumps(sent)]
    assert_no_secret("".join(texts), api_user.secret, api_user.integration_code)


#: (what is wrong, the change to a valid body, words the 400 must contain)
INVALID_NEW = [
    pytest.param({"name": None}, "name", id="name-null"),
    pytest.param({"name": "  "}, "name: must not be blank", id="name-blank"),
    pytest.param({"name": "a\nb"}, "name: must not contain control", id="name-newline"),
    pytest.param({"name": "n" * 101}, "name", id="name-too-long"),
    pytest.param(
        {"api_flavour": "graphql"}, "api_flavour: must be one of rest, soap", id="flavour"
    ),
    pytest.param({"zone_lookup_url": "ftp://127.0.0.1/x"}, "zone_lookup_url", id="url-scheme"),
    pytest.param({"zone_lookup_url": "webservices/"}, "zone_lookup_url", id="url-relative"),
    pytest.param(
        {"zone_lookup_url": "https://evil.example.com/atservicesrest/"},
        "not in the allowed zone hosts",
        id="url-host-not-allowed",
    ),
    pytest.param(
        {"zone_lookup_url": "http://user:pw-canary@127.0.0.1:9/atservicesrest/"},
        "zone_lookup_url: must not carry user information",
        id="url-userinfo",
    ),
    pytest.param({"username": ""}, "username", id="username-empty"),
    pytest.param({"secret": ""}, "secret", id="secret-empty"),
    pytest.param({"secret": 12345}, "secret: Not a valid string", id="secret-number"),
    pytest.param({"integration_code": None}, "integration_code", id="code-null"),
    pytest.param({"tenants": {"acme": 1}}, "tenants: Unknown field", id="tenants-not-here"),
    pytest.param({"regenerate_requests": True}, "regenerate_requests", id="patch-only-field"),
    pytest.param({"settings": []}, "settings: Not a valid mapping", id="settings-list"),
    pytest.param(
        {"settings": {"colour": "red"}}, "settings.colour: Unknown field", id="settings-unknown"
    ),
    pytest.param(
        {"settings": {"priority_map": {"urgent": 1}}},
        "settings.priority_map.urgent: Must be one of: critical, error, warning, info",
        id="unknown-severity",
    ),
    pytest.param(
        {"settings": {"priority_map": {"critical": "high"}}},
        "settings.priority_map.critical: Not a valid integer",
        id="priority-not-an-id",
    ),
    pytest.param(
        {"settings": {"priority_map": {"critical": 4.5}}},
        "settings.priority_map.critical: Not a valid integer",
        id="priority-fraction",
    ),
    pytest.param(
        {"settings": {"status_map": {"snoozed": 1}}},
        "settings.status_map.snoozed",
        id="unknown-status",
    ),
    pytest.param(
        {"settings": {"status_map": {"cleared": True}}},
        "settings.status_map.cleared: Not a valid integer",
        id="status-bool",
    ),
    pytest.param(
        {"settings": {"monitor_overrides": {"disk": {"queue_id": "q1"}}}},
        "settings.monitor_overrides.disk.queue_id: Not a valid integer",
        id="override-not-an-id",
    ),
    pytest.param(
        {"settings": {"monitor_overrides": {"disk": {"queue": 1}}}},
        "settings.monitor_overrides.disk.queue: Unknown field",
        id="override-unknown-key",
    ),
    pytest.param(
        {"settings": {"default_company_id": "acme"}},
        "settings.default_company_id: Not a valid integer",
        id="company-not-an-id",
    ),
    pytest.param(
        {"settings": {"source_options": {"nagios": {"x": 1}}}},
        "settings.source_options: source_options names unknown sources 'nagios'",
        id="unknown-source",
    ),
    pytest.param(
        {"settings": {"source_options": {"alertmanager": {"severity_lable": "x"}}}},
        "severity_lable",
        id="source-option-misspelt",
    ),
]


@sqlite_only
@pytest.mark.parametrize(("change", "words"), INVALID_NEW)
def test_a_refused_new_integration_is_a_400_naming_the_field_and_stores_nothing(
    client: FlaskClient,
    connector_app: Flask,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    change: dict[str, Any],
    words: str,
) -> None:
    before = stored(connector_app)

    error = error_of(
        api(client, "POST", "integrations", new_integration(sandbox_server, api_user, **change)),
        400,
    )

    assert words in error["message"]
    assert "fields" in error["details"]
    assert stored(connector_app) == before
    assert_no_secret(json.dumps(error), api_user.secret, api_user.integration_code, "pw-canary")


@sqlite_only
@pytest.mark.parametrize(
    "body", [pytest.param([], id="a-list"), pytest.param("text", id="a-string")]
)
def test_a_body_that_is_no_object_is_a_400(client: FlaskClient, body: Any) -> None:
    error = error_of(api(client, "POST", "integrations", body), 400)
    assert "JSON object" in error["message"]


@sqlite_only
def test_a_name_in_use_is_a_409(
    client: FlaskClient, connector_app: Flask, sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    before = stored(connector_app)
    body = new_integration(sandbox_server, api_user, name="default")

    error = error_of(api(client, "POST", "integrations", body), 409)

    assert "'default' exists already" in error["message"]
    assert stored(connector_app) == before


def test_a_name_taken_by_a_concurrent_request_is_a_409_not_a_500(
    client: FlaskClient,
    connector_app: Flask,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if another request inserted "default" after this one checked the name.
    monkeypatch.setattr(editing, "_name_free", lambda *args, **kwargs: None)
    before = stored(connector_app)
    body = new_integration(sandbox_server, api_user, name="default")

    error = error_of(api(client, "POST", "integrations", body), 409)

    assert "'default' exists already" in error["message"]
    assert stored(connector_app) == before


@sqlite_only
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "integrations"), ("PATCH", "integrations/1")],
)
def test_creating_and_editing_need_the_api_token(
    client: FlaskClient, connector_app: Flask, method: str, path: str
) -> None:
    before = stored(connector_app)
    headers = {"Authorization": f"Bearer {HOOK_TOKEN}"}

    error_of(api(client, method, path, {"name": "x"}, headers=headers), 401)

    assert stored(connector_app) == before


# -- edit ------------------------------------------------------------------------------------------


def patch(client: FlaskClient, app: Flask, body: Any, status: int = 200) -> dict[str, Any]:
    return answer(api(client, "PATCH", f"integrations/{default_integration_id(app)}", body), status)


@sqlite_only
def test_patch_changes_only_what_it_names_and_moves_updated_at(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser
) -> None:
    before = patch(client, connector_app, {})
    assert before["changed"] == []

    after = patch(client, connector_app, {"username": "someone-else@sandbox.test"})

    assert after["changed"] == ["username"]
    assert after["username"] == "someone-else@sandbox.test"
    assert after["updated_at"] > before["updated_at"]
    unchanged = ("name", "api_flavour", "zone_lookup_url", "settings", "integration_code")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["requests_regenerated"] is False


@sqlite_only
def test_patch_of_settings_replaces_the_keys_given_and_keeps_the_rest(
    client: FlaskClient, connector_app: Flask
) -> None:
    original = patch(client, connector_app, {})["settings"]
    priority_map = {"critical": 1, "warning": 3}
    overrides = {"disk": {"queue_id": 29682834, "priority": 4}}

    after = patch(
        client,
        connector_app,
        {"settings": {"priority_map": priority_map, "monitor_overrides": overrides}},
    )

    assert after["changed"] == ["settings"]
    assert after["settings"] == original | {
        "priority_map": priority_map,
        "monitor_overrides": overrides,
    }
    # A map given again replaces the whole map (keys left out go back to their defaults).
    again = patch(client, connector_app, {"settings": {"priority_map": {"info": 2}}})
    assert again["settings"]["priority_map"] == {"info": 2}
    assert again["settings"]["monitor_overrides"] == overrides


@sqlite_only
def test_patch_sets_status_on_acknowledge_and_null_gives_the_default_back(
    client: FlaskClient, connector_app: Flask
) -> None:
    assert "status_on_acknowledge" not in patch(client, connector_app, {})["settings"]

    on = patch(client, connector_app, {"settings": {"status_on_acknowledge": True}})
    assert on["changed"] == ["settings"]
    assert on["settings"]["status_on_acknowledge"] is True

    default = patch(client, connector_app, {"settings": {"status_on_acknowledge": None}})
    assert default["settings"]["status_on_acknowledge"] is None


@sqlite_only
@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(
            {"settings": {"priority_map": {"urgent": 1}}}, "settings.priority_map.urgent", id="sev"
        ),
        pytest.param(
            {"settings": {"status_map": {"acknowledged": "in progress"}}},
            "settings.status_map.acknowledged: Not a valid integer",
            id="status-id",
        ),
        pytest.param(
            {"settings": {"monitor_overrides": {"cpu": {"priority": 1.5}}}},
            "settings.monitor_overrides.cpu.priority: Not a valid integer",
            id="override-id",
        ),
        pytest.param({"settings": {"due_days": -1}}, "settings.due_days", id="due-days"),
        pytest.param(
            {"settings": {"status_on_acknowledge": "sometimes"}},
            "settings.status_on_acknowledge: Not a valid boolean",
            id="status-on-acknowledge",
        ),
        pytest.param({"api_flavour": "graphql"}, "api_flavour", id="flavour"),
        pytest.param(
            {"zone_lookup_url": "https://evil.example.com/atservicesrest/"},
            "zone_lookup_url",
            id="url-host",
        ),
        # The stored URL is on 127.0.0.1: without it allowed, the URL is refused.
        pytest.param(
            {"settings": {"allowed_zone_hosts": []}},
            "zone_lookup_url",
            id="hosts-no-longer-allow-the-url",
        ),
        pytest.param({"secret": ""}, "secret", id="secret-empty"),
        pytest.param({"regenerate_requests": "yes"}, "regenerate_requests", id="regenerate"),
        pytest.param({"id": 7}, "id: Unknown field", id="id"),
    ],
)
def test_a_refused_edit_is_a_400_naming_the_field_and_changes_nothing(
    client: FlaskClient, connector_app: Flask, change: dict[str, Any], words: str
) -> None:
    before = stored(connector_app)

    error = error_of(
        api(client, "PATCH", f"integrations/{default_integration_id(connector_app)}", change), 400
    )

    assert words in error["message"]
    assert stored(connector_app) == before


@sqlite_only
def test_secrets_are_write_only(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = []
    first = api(
        client,
        "PATCH",
        f"integrations/{default_integration_id(connector_app)}",
        {"secret": OTHER_SECRET, "integration_code": OTHER_CODE},
    )
    answers.append(first.get_data(as_text=True))
    assert first.get_json()["changed"] == ["secret", "integration_code"]
    assert first.get_json()["integration_code"] == "••••0042"
    # The same values again change nothing.
    again = patch(client, connector_app, {"secret": OTHER_SECRET, "integration_code": OTHER_CODE})
    assert again["changed"] == []
    answers.append(json.dumps(again))
    for path in ("integrations", f"integrations/{default_integration_id(connector_app)}"):
        answers.append(api(client, "GET", path).get_data(as_text=True))

    text = "".join(answers) + caplog.text
    assert_no_secret(text, OTHER_SECRET, OTHER_CODE, api_user.secret, api_user.integration_code)
    box = connector_app.extensions["connector"].secret_box()
    with connector_app.extensions["connector"].sessions() as session:
        row = session.get(Integration, default_integration_id(connector_app))
        assert row is not None
        assert OTHER_SECRET not in row.secret_encrypted
        assert box.decrypt(row.secret_encrypted) == OTHER_SECRET
        assert box.decrypt(row.integration_code_encrypted) == OTHER_CODE


@sqlite_only
def test_renaming_onto_another_integrations_name_is_a_409(
    client: FlaskClient, connector_app: Flask, sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    answer(api(client, "POST", "integrations", new_integration(sandbox_server, api_user)), 201)
    before = stored(connector_app)

    error = error_of(
        api(
            client,
            "PATCH",
            f"integrations/{default_integration_id(connector_app)}",
            {"name": "second"},
        ),
        409,
    )

    assert "'second' exists already" in error["message"]
    assert stored(connector_app) == before
    # Its own name is no conflict.
    assert patch(client, connector_app, {"name": "default"})["changed"] == []


@sqlite_only
def test_an_unknown_integration_is_a_404(client: FlaskClient) -> None:
    error = error_of(api(client, "PATCH", "integrations/999", {"username": "x"}), 404)
    assert "no integration 999" in error["message"]


# -- the API flavour and the delivery requests --------------------------------------------------


def soap_change(server: SandboxServer) -> dict[str, Any]:
    return {"api_flavour": "soap", "zone_lookup_url": server.soap_url}


def requests_of(client: FlaskClient, app: Flask) -> list[dict[str, Any]]:
    path = f"integrations/{default_integration_id(app)}/requests"
    found: list[dict[str, Any]] = answer(api(client, "GET", path))["requests"]
    return found


@sqlite_only
def test_a_new_flavour_regenerates_requests_nobody_customized(
    client: FlaskClient, connector_app: Flask, sandbox_server: SandboxServer
) -> None:
    after = patch(client, connector_app, soap_change(sandbox_server))

    assert after["api_flavour"] == "soap"
    assert after["requests_regenerated"] is True
    assert requests_of(client, connector_app) == [
        spec.to_json() for spec in generate_requests(SOAP_PROFILE)
    ]


@sqlite_only
def test_a_new_flavour_never_silently_replaces_customized_requests(
    client: FlaskClient, connector_app: Flask, sandbox_server: SandboxServer
) -> None:
    requests = requests_of(client, connector_app)
    note = next(r for r in requests if (r["status"], r["action"]) == ("acknowledged", "note"))
    edited = dict(note, body=note["body"].replace("##NOTETEXT##", "Ack: ##NOTETEXT##"))
    path = f"integrations/{default_integration_id(connector_app)}/requests"
    answer(api(client, "PUT", path, {"requests": [edited]}))
    customized = requests_of(client, connector_app)
    before = stored(connector_app)

    error = error_of(
        api(
            client,
            "PATCH",
            f"integrations/{default_integration_id(connector_app)}",
            soap_change(sandbox_server),
        ),
        409,
    )

    assert "1 of them are customized (acknowledged note)" in error["message"]
    assert '"regenerate_requests": true' in error["message"]
    assert error["details"]["customized"] == [{"status": "acknowledged", "action": "note"}]
    assert stored(connector_app) == before
    assert requests_of(client, connector_app) == customized

    confirmed = patch(
        client, connector_app, soap_change(sandbox_server) | {"regenerate_requests": True}
    )

    assert confirmed["requests_regenerated"] is True
    assert requests_of(client, connector_app) == [
        spec.to_json() for spec in generate_requests(SOAP_PROFILE)
    ]
