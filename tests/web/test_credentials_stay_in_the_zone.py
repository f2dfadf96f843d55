"""Issue 15's first reproduction: a delivery request pointed anywhere but the integration's zone
(another port of an allowed host, the sandbox's own controls) never gets the credentials.

A listener on 127.0.0.1 (an allowed host in these tests, as under `make run`) records whatever
reaches it; the test delivery, which shows Autotask's answer, must refuse and show nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from connector.persistence.models import Integration
from tests.conftest import API_TOKEN
from tests.local_http import serving

HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def listener() -> Iterator[tuple[list[dict[str, Any]], int]]:
    """A local HTTP listener that records every request (headers and body) it gets."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        seen.append({"headers": dict(request.headers), "body": request.get_data(as_text=True)})
        reply = Response('{"itemId": 1, "stolen": true}', mimetype="application/json")
        return reply(environ, start_response)

    with serving(app) as url:
        yield seen, int(url.rsplit(":", 1)[1])


def point_create_at(client: FlaskClient, app: Flask, url: str) -> None:
    """Save the integration's create request with `url` (as an API token holder can)."""
    with app.extensions["connector"].transaction() as session:
        iid = session.scalar(select(Integration.id))
    state = client.get(f"/api/v1/integrations/{iid}/requests", headers=HEADERS).get_json()
    create = next(r for r in state["requests"] if r["action"] == "create")
    saved = client.put(
        f"/api/v1/integrations/{iid}/requests",
        json={"requests": [dict(create, url=url)]},
        headers=HEADERS,
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)


@pytest.mark.parametrize("api_flavour", ["rest", "soap"], indirect=False)
@pytest.mark.parametrize("where", ["another port", "the sandbox's controls"])
def test_no_credentials_reach_a_listener_other_than_the_zone(
    client: FlaskClient,
    connector_app: Flask,
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    listener: tuple[list[dict[str, Any]], int],
    where: str,
) -> None:
    seen, port = listener
    made = client.post("/api/v1/test-delivery", json={}, headers=HEADERS)
    assert made.status_code == 200, made.get_data(as_text=True)
    assert len(sandbox.tickets_with_notes()) == 1
    url = {
        "another port": f"http://127.0.0.1:{port}/atservicesrest/v1.0/Tickets",
        "the sandbox's controls": f"{sandbox_server.url}_sandbox/reset",
    }[where]
    point_create_at(client, connector_app, url)

    answer = client.post("/api/v1/test-delivery", json={}, headers=HEADERS)

    text = answer.get_data(as_text=True)
    assert 400 <= answer.status_code < 500 or answer.status_code == 502, text
    assert "not under the integration's zone" in text
    assert "stolen" not in text
    assert seen == []
    assert api_user.secret not in text and api_user.integration_code not in text
    # The sandbox was not reset (its controls were not reached): its ticket is still there.
    assert len(sandbox.tickets_with_notes()) == 1


def forms_of(secret: str) -> list[str]:
    """The shapes a template filter could give a secret."""
    return [secret, secret[::-1], secret.lower(), secret.upper(), " ".join(secret)]


@pytest.mark.parametrize(
    "expression",
    [
        "{{ autotask.integration_code|reverse }}",
        "{{ autotask.integration_code|lower }}",
        "{% for c in autotask.integration_code %}{{ c }} {% endfor %}",
        "{{ tokens.INTEGRATIONCODE|reverse }}",
    ],
)
def test_no_template_can_show_the_tracking_identifier(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser, expression: str
) -> None:
    """Issue 15's second reproduction: saving refuses a template that reads it by name, and
    the preview of an unsaved one shows no form of it (the context holds it blank)."""
    with connector_app.extensions["connector"].transaction() as session:
        iid = session.scalar(select(Integration.id))
    state = client.get(f"/api/v1/integrations/{iid}/requests", headers=HEADERS).get_json()
    note = next(r for r in state["requests"] if (r["status"], r["action"]) == ("active", "note"))
    body = '{"title": "t", "description": "' + expression + '", "noteType": 1, "publish": 1}'
    sneaky = dict(note, body=body)

    saved = client.put(
        f"/api/v1/integrations/{iid}/requests", json={"requests": [sneaky]}, headers=HEADERS
    )
    shown = client.post(
        f"/api/v1/integrations/{iid}/preview",
        json={"status": "active", "requests": [sneaky]},
        headers=HEADERS,
    )

    for answer in (saved, shown):
        text = answer.get_data(as_text=True)
        assert answer.status_code < 500, text
        assert not any(form in text for form in forms_of(api_user.integration_code)), text
    if "integration_code" in expression:
        assert saved.status_code == 400
        assert "cannot read the API tracking identifier" in saved.get_data(as_text=True)
