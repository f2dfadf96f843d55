"""Live configuration takes effect for the next delivery, without a restart; the configured
integration is a seed applied only when missing.

The worker is built once, before the edits, and keeps running: what it cached (targets and
delivery options, keyed by the integration's id and updated_at) must not outlive an edit.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, Sandbox
from connector import create_app
from connector.cli import prepare_database
from connector.errors import ConfigError
from connector.integrations.settings import IntegrationSettings
from connector.persistence.models import HookCredential, Integration, TenantMapping
from connector.pipeline.worker import Worker
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services
from connector.wiring import make_worker
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id
from tests.connector.test_worker import Clock, FakeTarget, drain, post

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

DEFAULT_COMPANY = 29683414
CONTOSO_COMPANY = 29683415
NEW_SECRET = canaries.ROTATED_AUTOTASK_SECRET


def api(client: FlaskClient, method: str, path: str, body: Any = None) -> Any:
    response = client.open(
        f"/api/v1/integrations/{path}",
        method=method,
        json=body,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)
    return response.get_json(silent=True)


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


def test_an_edit_reaches_the_next_delivery_of_a_running_worker(
    client: FlaskClient, connector_app: Flask, services: Services
) -> None:
    fake, clock = FakeTarget(), Clock()
    built_with: list[tuple[str, str]] = []
    box = services.secret_box()

    def factory(
        integration: Integration,
        settings: IntegrationSettings,
        recorder: CallRecorder,
        **_: Any,
    ) -> TicketTarget:
        built_with.append((integration.username, box.decrypt(integration.secret_encrypted)))
        return fake

    worker = Worker(services, factory, worker_id="w1", clock=clock, rng=random.Random(1))
    iid = default_integration_id(connector_app)
    post(client, "before", "active", tenant="contoso")
    drain(worker, clock)
    (first,) = fake.tickets.values()
    assert (first.body["companyID"], first.body["priority"]) == (DEFAULT_COMPANY, 1)

    api(client, "PUT", f"{iid}/tenants/contoso", {"company_id": CONTOSO_COMPANY})
    api(client, "PATCH", str(iid), {"settings": {"priority_map": {"error": 4}}})
    post(client, "after", "active", tenant="contoso")
    drain(worker, clock)

    second = fake.tickets[max(fake.tickets)]
    assert second.body["externalID"] != first.body["externalID"]
    assert (second.body["companyID"], second.body["priority"]) == (CONTOSO_COMPANY, 4)

    # New credentials: the worker builds the integration's target afresh with them.
    api(client, "PATCH", str(iid), {"username": "rotated@sandbox.test", "secret": NEW_SECRET})
    post(client, "rotated", "active")
    drain(worker, clock)

    assert built_with[-1] == ("rotated@sandbox.test", NEW_SECRET)
    assert len(fake.tickets) == 3


@sqlite_only
def test_a_mapped_tenant_and_a_new_priority_reach_the_sandbox_without_a_restart(
    client: FlaskClient, connector_app: Flask, services: Services, sandbox: Sandbox
) -> None:
    worker = make_worker(services)
    iid = default_integration_id(connector_app)

    def ticket_of(fingerprint: str, tenant: str) -> dict[str, Any]:
        """Post an alert, run the worker once; the ticket it made (the newest)."""
        count = len(sandbox.tickets_with_notes())
        post(client, fingerprint, "active", tenant=tenant)
        assert worker.run_once() == 1
        tickets = sandbox.tickets_with_notes()
        assert len(tickets) == count + 1
        return dict(max(tickets, key=lambda ticket: ticket["id"]))

    before = ticket_of("one", "Contoso / EU")
    assert (before["companyID"], before["priority"]) == (DEFAULT_COMPANY, 1)

    api(client, "PUT", f"{iid}/tenants/{quote('Contoso / EU', safe='')}", {"company_id": 29683416})
    after_map = ticket_of("two", "Contoso / EU")
    assert (after_map["companyID"], after_map["priority"]) == (29683416, 1)

    api(client, "PATCH", str(iid), {"settings": {"priority_map": {"error": 2}}})
    after_priority = ticket_of("three", "Contoso / EU")
    assert (after_priority["companyID"], after_priority["priority"]) == (29683416, 2)


# -- the configured integration is a seed -------------------------------------------------------


def restarted(settings: dict[str, Any], **changes: Any) -> Flask:
    """The app started again on the same database, with changed settings; prepared as at start."""
    app = create_app(dict(settings, **changes))
    try:
        prepare_database(app.extensions["connector"])
    except Exception:
        app.extensions["connector"].dispose()
        raise
    return app


def stored_integration(app: Flask) -> tuple[Any, ...]:
    with app.extensions["connector"].sessions() as session:
        (row,) = session.scalars(select(Integration)).all()
        rows = session.execute(select(TenantMapping.tenant, TenantMapping.company_id))
        tenants = {tenant: company for tenant, company in rows}
        return row.username, row.settings, tenants, row.updated_at


def test_a_restart_keeps_what_was_edited_live(
    client: FlaskClient, connector_app: Flask, connector_settings: dict[str, Any]
) -> None:
    iid = default_integration_id(connector_app)
    api(client, "PATCH", str(iid), {"settings": {"queue_id": 1234}})
    api(client, "PUT", f"{iid}/tenants/contoso", {"company_id": CONTOSO_COMPANY})
    api(client, "DELETE", f"{iid}/tenants/northwind")
    edited = stored_integration(connector_app)

    configured = dict(connector_settings["INTEGRATION"], username="changed@x.test", queue_id=5)
    app = restarted(connector_settings, INTEGRATION=configured)
    try:
        assert stored_integration(app) == edited
        assert edited[1]["queue_id"] == 1234
        assert edited[2]["contoso"] == CONTOSO_COMPANY
        assert "northwind" not in edited[2]
    finally:
        app.extensions["connector"].dispose()


def test_tokens_from_the_environment_keep_working_after_a_restart(
    connector_app: Flask, connector_settings: dict[str, Any]
) -> None:
    other_hook, other_api = canaries.RESTARTED_HOOK_TOKEN, canaries.RESTARTED_API_TOKEN
    app = restarted(connector_settings, HOOK_TOKEN=other_hook, API_TOKEN=other_api)
    try:
        client = app.test_client()
        for index, token in enumerate((HOOK_TOKEN, other_hook)):
            response = client.post(
                "/hooks/generic",
                json={"id": f"x-{index}", "status": "active", "severity": "info", "title": "t"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 202, response.get_data(as_text=True)
        for token in (API_TOKEN, other_api):
            listed = client.get(
                "/api/v1/integrations", headers={"Authorization": f"Bearer {token}"}
            )
            assert listed.status_code == 200
        with app.extensions["connector"].sessions() as session:
            presets = session.scalars(
                select(HookCredential).where(HookCredential.label == "preset")
            ).all()
        assert [row.source for row in presets] == [None, None]
    finally:
        app.extensions["connector"].dispose()


@sqlite_only
def test_refresh_connection_applies_the_configured_connection_only(
    client: FlaskClient,
    connector_app: Flask,
    connector_settings: dict[str, Any],
    api_user: ApiUser,
) -> None:
    iid = default_integration_id(connector_app)
    api(client, "PATCH", str(iid), {"settings": {"queue_id": 1234}})
    configured = dict(
        connector_settings["INTEGRATION"], username="new-user@sandbox.test", queue_id=5
    )
    app = create_app(dict(connector_settings, INTEGRATION=configured))
    services = app.extensions["connector"]
    try:
        prepare_database(services, refresh_connection=True)
        username, settings, _, _ = stored_integration(app)
        assert (username, settings["queue_id"]) == ("new-user@sandbox.test", 1234)
        # Nothing changed since: a second start leaves updated_at alone.
        before = stored_integration(app)
        prepare_database(services, refresh_connection=True)
        assert stored_integration(app) == before
    finally:
        services.dispose()


@sqlite_only
def test_refresh_connection_never_replaces_customized_requests(
    client: FlaskClient, connector_app: Flask, connector_settings: dict[str, Any]
) -> None:
    iid = default_integration_id(connector_app)
    requests = api(client, "GET", f"{iid}/requests")["requests"]
    create = dict(requests[0], body=requests[0]["body"].replace("##TITLE##", "[M] ##TITLE##"))
    api(client, "PUT", f"{iid}/requests", {"requests": [create]})
    soap = dict(connector_settings["INTEGRATION"], api_flavour="soap")
    app = create_app(dict(connector_settings, INTEGRATION=soap))
    try:
        with pytest.raises(ConfigError, match="1 of them are customized"):
            prepare_database(app.extensions["connector"], refresh_connection=True)
    finally:
        app.extensions["connector"].dispose()
    assert api(client, "GET", f"{iid}/requests")["requests"][0] == create


@sqlite_only
@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(
            {"zone_lookup_url": "https://evil.example.com/atservicesrest/"},
            "INTEGRATION is invalid: zone_lookup_url",
            id="url-not-allowed",
        ),
        pytest.param({"username": ""}, "INTEGRATION is missing username", id="no-user"),
        pytest.param({"api_flavour": "graphql"}, "api_flavour: must be one of", id="flavour"),
        pytest.param(
            {"priority_map": {"urgent": 1}}, "settings.priority_map.urgent", id="severity"
        ),
        pytest.param({"tenants": {"acme": "x"}}, "tenants", id="tenant-company"),
        pytest.param({"tenants": ["acme"]}, "tenants", id="tenants-not-a-map"),
    ],
)
def test_an_invalid_seed_stops_the_start_naming_the_field(
    connector_settings: dict[str, Any], change: dict[str, Any], words: str, api_user: ApiUser
) -> None:
    configured = dict(connector_settings["INTEGRATION"], **change)
    with pytest.raises(ConfigError, match=words) as refused:
        restarted(connector_settings, INTEGRATION=configured)
    assert api_user.secret not in str(refused.value)


@sqlite_only
def test_a_seed_without_a_flavour_takes_the_first_registered_one(
    connector_settings: dict[str, Any],
) -> None:
    configured = {k: v for k, v in connector_settings["INTEGRATION"].items() if k != "api_flavour"}
    app = restarted(connector_settings, INTEGRATION=configured)
    try:
        services = app.extensions["connector"]
        with services.sessions() as session:
            (row,) = session.scalars(select(Integration)).all()
        assert row.api_flavour == next(iter(services.profiles))
    finally:
        app.extensions["connector"].dispose()
