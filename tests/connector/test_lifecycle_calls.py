"""How many Autotask calls an alert's lifecycle costs, and where the zone comes from.

Fire → acknowledge → clear through the webhook, the real worker and the sandbox over HTTP, with
the default delivery requests, per API flavour; the sandbox's own call log is the count. Then
the zone: a second process (a new app, its own clients) starts from the zone the first one
kept on the integration's row, and a kept zone that is wrong is looked up again.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import Sandbox, SandboxServer
from adapters.targets.autotask.profile import REST_PROFILE
from connector import create_app
from connector.domain import AlertStatus, RequestAction
from connector.integrations.catalog import check_unsaved
from connector.integrations.store import load_options, replace_requests
from connector.integrations.zones import ZONE_KEPT_FOR
from connector.persistence.models import Integration, TicketLink, utcnow
from connector.services import Services
from connector.wiring import make_worker
from tests.conftest import HOOK_TOKEN

NEW, COMPLETE, IN_PROGRESS = 1, 5, 8

#: Per flavour, the calls of one fire → acknowledge → clear with the default requests and
#: settings, in order, as the sandbox logs them (REST: method and path under v1.0/; SOAP:
#: entity.operation). The zone lookup is not part of a lifecycle: one per process at most (and
#: none with a kept zone, below).
LIFECYCLE_CALLS: dict[str, list[str]] = {
    "rest": [
        "POST Tickets",  # fire: the create; its id is in the answer, nothing is read back
        "PATCH Tickets",  # acknowledge: the status …
        "POST Tickets/{id}/Notes",  # … and the note saying who and why
        "PATCH Tickets",  # clear: status Complete with the clear's text as the resolution
    ],
    "soap": [
        "Ticket.create",  # fire: the answer is the whole ticket, number included
        # acknowledge: only the note; the status stays (status_on_acknowledge defaults to off
        # where an update costs a read first) …
        "TicketNote.create",
        # clear: SOAP update replaces the whole ticket (autotask-api.md §10), so it is read at
        # once before it is written back complete with the resolution: an engineer's changes
        # survive.
        "Ticket.query",
        "Ticket.update",
    ],
}

#: The same with `status_on_acknowledge` set against the flavour's default.
OTHER_ACKNOWLEDGEMENT_CALLS: dict[str, list[str]] = {
    "rest": ["POST Tickets", "POST Tickets/{id}/Notes", "PATCH Tickets"],
    "soap": [
        "Ticket.create",
        "Ticket.query",  # acknowledge: the status, read at once before it is written …
        "Ticket.update",
        "TicketNote.create",  # … and the note
        "Ticket.query",
        "Ticket.update",
    ],
}

#: Whether an acknowledgement sets the status by default, per flavour.
ACKNOWLEDGEMENT_SETS_STATUS = {"rest": True, "soap": False}


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(client: FlaskClient, status: str, **fields: Any) -> None:
    body = {
        "id": "disk-srv01",
        "status": status,
        "severity": "error",
        "title": "Disk full on srv01",
        "message": "C: has 1 % free.",
        "host": "srv01",
        **fields,
    }
    response = client.post(
        "/hooks/generic", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def work(app: Flask) -> None:
    """Let one worker of `app` process every due delivery."""
    worker = make_worker(app.extensions["connector"])
    for _ in range(100):
        if not worker.run_once():
            return
    raise AssertionError("the worker still had deliveries after 100 rounds")


def described(flavour: str, call: Any) -> str:
    """A sandbox call as LIFECYCLE_CALLS writes it (REST paths in any case, as Autotask's)."""
    if flavour == "soap":
        return f"{call.endpoint.removeprefix('soap:')}.{call.operation}"
    path = call.path.split("?")[0].lower().split("/v1.0/", 1)[1]
    path = "/".join("{id}" if part.isdigit() else part for part in path.split("/"))
    return f"{call.method} {path}"


def lifecycle_calls(sandbox: Sandbox, flavour: str) -> list[str]:
    """The calls the sandbox logged, zone lookups left out, as LIFECYCLE_CALLS writes them."""
    return [
        described(flavour, call) if flavour == "soap" else described(flavour, call).lower()
        for call in sandbox.calls()
        if call.endpoint != "ZoneInformation" and "getZoneInfo" not in call.operation
    ]


def expected_calls(flavour: str, table: dict[str, list[str]] = LIFECYCLE_CALLS) -> list[str]:
    calls = table[flavour]
    return calls if flavour == "soap" else [call.lower() for call in calls]


def zone_lookups(sandbox: Sandbox) -> int:
    return sum(
        call.endpoint == "ZoneInformation" or "getZoneInfo" in call.operation
        for call in sandbox.calls()
    )


def the_ticket(sandbox: Sandbox) -> dict[str, Any]:
    (ticket,) = sandbox.tickets_with_notes()
    return ticket


def set_status_on_acknowledge(services: Services, value: bool) -> None:
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.settings = {**integration.settings, "status_on_acknowledge": value}


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
@pytest.mark.parametrize("setting", ["default", "the other way"])
def test_fire_acknowledge_clear_costs_the_calls_of_the_table(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_flavour: str, setting: str
) -> None:
    sets_status = ACKNOWLEDGEMENT_SETS_STATUS[api_flavour]
    table = LIFECYCLE_CALLS
    if setting != "default":
        sets_status = not sets_status
        table = OTHER_ACKNOWLEDGEMENT_CALLS
        set_status_on_acknowledge(connector_app.extensions["connector"], sets_status)
    post(client, "active")
    work(connector_app)
    status_when_fired = the_ticket(sandbox)["status"]
    assert status_when_fired == NEW
    post(client, "acknowledged", acknowledged_by="jane", note="on it")
    work(connector_app)
    assert the_ticket(sandbox)["status"] == (IN_PROGRESS if sets_status else NEW)
    post(client, "cleared", message="C: has 40 % free.")
    work(connector_app)

    expected = expected_calls(api_flavour, table)
    assert lifecycle_calls(sandbox, api_flavour) == expected
    if setting == "default":
        assert len(expected) <= 4  # issue 13: at most 4 calls per lifecycle, REST and SOAP
    assert all(call.status == 200 for call in sandbox.calls())
    assert zone_lookups(sandbox) == 1  # one per process, kept for the next (below)
    ticket = the_ticket(sandbox)
    assert ticket["status"] == COMPLETE and ticket["completedDate"]
    assert ticket["resolution"].splitlines() == ["Alert cleared.", "C: has 40 % free."]
    (ack,) = ticket["notes"]  # the clear's text is the resolution, not a second note
    assert ack["description"].splitlines() == ["Alert was acknowledged.", "By: jane", "Note: on it"]
    assert ack["title"] == "Disk full on srv01 — acknowledged"
    with connector_app.extensions["connector"].transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        # SOAP's create answers with the ticket's number; REST's only with its id, and no
        # default request needs the number, so it is not read back (it stays unknown).
        known = ticket["ticketNumber"] if api_flavour == "soap" else None
        assert (link.ticket_id, link.ticket_number) == (ticket["id"], known)


@pytest.mark.parametrize("api_flavour", ["soap"])
def test_active_again_after_an_acknowledgement_that_kept_the_status(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_flavour: str
) -> None:
    start = utcnow() - timedelta(minutes=3)
    moments = [(start + timedelta(minutes=n)).isoformat() for n in range(3)]
    post(client, "active", occurred_at=moments[0])
    post(client, "acknowledged", acknowledged_by="jane", occurred_at=moments[1])
    post(client, "active", occurred_at=moments[2])  # not a repeat: a new firing
    work(connector_app)

    # The acknowledgement kept the status but is recorded as applied: firing again is news.

    ticket = the_ticket(sandbox)
    assert ticket["status"] == NEW
    assert [note["description"].splitlines()[0] for note in ticket["notes"]] == [
        "Alert was acknowledged.",
        "Alert is active again.",
    ]


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_an_acknowledgement_at_a_new_severity_sets_status_and_priority_in_one_update(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox, api_flavour: str
) -> None:
    set_status_on_acknowledge(connector_app.extensions["connector"], True)
    post(client, "active")
    post(client, "acknowledged", acknowledged_by="jane", severity="critical")
    work(connector_app)

    ticket = the_ticket(sandbox)
    assert (ticket["status"], ticket["priority"]) == (IN_PROGRESS, 4)  # Critical
    one_update = {
        "rest": ["post tickets", "patch tickets", "post tickets/{id}/notes"],
        "soap": ["Ticket.create", "Ticket.query", "Ticket.update", "TicketNote.create"],
    }
    assert lifecycle_calls(sandbox, api_flavour) == one_update[api_flavour]


def kept_zone(services: Services) -> tuple[str | None, Any]:
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        return integration.zone_url, integration.zone_checked_at


def second_process(connector_settings: dict[str, object]) -> Flask:
    """Another connector process on the same database: its own Services, clients and caches."""
    return create_app(connector_settings)


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_a_second_process_starts_from_the_kept_zone(
    client: FlaskClient,
    connector_app: Flask,
    connector_settings: dict[str, object],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    api_flavour: str,
) -> None:
    post(client, "active")
    work(connector_app)
    assert zone_lookups(sandbox) == 1
    zone_url, checked_at = kept_zone(connector_app.extensions["connector"])
    expected = {"rest": f"{sandbox_server.rest_url}v1.0/", "soap": sandbox_server.soap_url}
    assert zone_url == expected[api_flavour] and checked_at is not None

    restarted = second_process(connector_settings)
    try:
        post(client, "acknowledged", acknowledged_by="jane")
        post(client, "cleared")
        work(restarted)
        assert zone_lookups(sandbox) == 1  # none more: the kept zone served
        assert the_ticket(sandbox)["status"] == COMPLETE
    finally:
        restarted.extensions["connector"].dispose()


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
@pytest.mark.parametrize(
    "wrong_zone",
    ["moved", "unreachable"],
    ids=["kept zone answers 404", "kept zone host unreachable"],
)
def test_a_wrong_kept_zone_is_looked_up_again_and_replaced(
    client: FlaskClient,
    connector_app: Flask,
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    api_flavour: str,
    wrong_zone: str,
) -> None:
    services: Services = connector_app.extensions["connector"]
    right = {"rest": f"{sandbox_server.rest_url}v1.0/", "soap": sandbox_server.soap_url}
    host = sandbox_server.url if wrong_zone == "moved" else f"http://127.0.0.1:{free_port()}/"
    wrong = {"rest": f"{host}old-zone/atservicesrest/v1.0/", "soap": f"{host}old-zone/atws.asmx"}
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.zone_url = wrong[api_flavour]
        integration.zone_checked_at = utcnow() + timedelta(seconds=1)  # after its last save

    post(client, "active")
    post(client, "acknowledged", acknowledged_by="jane")
    post(client, "cleared")
    work(connector_app)

    assert zone_lookups(sandbox) == 1
    assert lifecycle_calls(sandbox, api_flavour) == expected_calls(api_flavour)
    assert the_ticket(sandbox)["status"] == COMPLETE
    zone_url, _ = kept_zone(services)
    assert zone_url == right[api_flavour]


def test_a_kept_zone_older_than_a_day_or_than_the_last_save_is_looked_up(
    client: FlaskClient,
    connector_app: Flask,
    connector_settings: dict[str, object],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
) -> None:
    services: Services = connector_app.extensions["connector"]
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.zone_url = f"{sandbox_server.rest_url}v1.0/"
        integration.zone_checked_at = utcnow() - ZONE_KEPT_FOR - timedelta(minutes=1)
    post(client, "active")
    work(connector_app)
    assert zone_lookups(sandbox) == 1  # a day old: asked again
    _, checked_at = kept_zone(services)
    assert utcnow() - checked_at < timedelta(minutes=5)  # and the new answer is kept

    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        # A save may change the username or the lookup address: the kept zone is not trusted.
        integration.settings = {**integration.settings, "repeat_note_minutes": 30}
    restarted = second_process(connector_settings)
    try:
        post(client, "acknowledged", acknowledged_by="jane")
        work(restarted)
        assert zone_lookups(sandbox) == 2
    finally:
        restarted.extensions["connector"].dispose()


def test_a_request_that_uses_the_ticket_number_has_it_read_back_once(
    client: FlaskClient, connector_app: Flask, sandbox: Sandbox
) -> None:
    services: Services = connector_app.extensions["connector"]
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        options = load_options(session, integration, REST_PROFILE)
        note = options.requests[(AlertStatus.ACKNOWLEDGED, RequestAction.NOTE)]
        body = note.body.replace('"##NOTETEXT##"', '"##TICKETNUMBER##: ##NOTETEXT##"')
        replace_requests(session, integration, [replace(note, body=body)], REST_PROFILE)
    post(client, "active")
    post(client, "acknowledged", acknowledged_by="jane")
    work(connector_app)

    calls = lifecycle_calls(sandbox, "rest")
    assert calls == ["post tickets", "get tickets/{id}", "patch tickets", "post tickets/{id}/notes"]
    ticket = the_ticket(sandbox)
    (ack,) = ticket["notes"]
    assert ack["description"].startswith(f"{ticket['ticketNumber']}: Alert was acknowledged.")


def test_checking_unsaved_values_keeps_no_zone_and_uses_none(
    connector_app: Flask, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    services: Services = connector_app.extensions["connector"]
    with services.transaction() as session:
        saved = session.scalars(select(Integration)).one()
        saved.zone_url = f"{sandbox_server.rest_url}v1.0/"
        saved.zone_checked_at = utcnow() + timedelta(seconds=1)
        # The form's values, not saved: another lookup address (the same sandbox, another case).
        unsaved = Integration(
            id=saved.id,
            name=saved.name,
            api_flavour=saved.api_flavour,
            zone_lookup_url=sandbox_server.rest_url.replace("atservicesrest", "ATServicesRest"),
            username=saved.username,
            secret_encrypted=saved.secret_encrypted,
            integration_code_encrypted=saved.integration_code_encrypted,
            settings=dict(saved.settings),
            updated_at=saved.updated_at,
        )
        kept_before = (saved.zone_url, saved.zone_checked_at)
    report = check_unsaved(services, unsaved)
    assert report.checks[0].ok, report
    assert zone_lookups(sandbox) == 1  # the unsaved values are looked up, not given the kept zone
    assert kept_zone(services) == kept_before  # and their zone is not kept as the saved one's
