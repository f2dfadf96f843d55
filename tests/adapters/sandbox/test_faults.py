"""Fault injection and the /_sandbox/ control endpoints."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from adapters.sandbox import (
    ApiUser,
    Sandbox,
    SandboxConfig,
    SandboxServer,
    create_sandbox_app,
)
from adapters.sandbox.faults import load_plan
from tests.conftest import RestClient

TICKET = {"companyID": 29683414, "title": "Disk full on srv01", "status": 1, "priority": 2}
NOTE = {"description": "Acknowledged.", "noteType": 1, "publish": 1}


def set_faults(server: SandboxServer, plan: Any) -> requests.Response:
    return requests.post(f"{server.url}_sandbox/faults", json=plan, timeout=10)


def get_faults(server: SandboxServer) -> dict[str, Any]:
    plan: dict[str, Any] = requests.get(f"{server.url}_sandbox/faults", timeout=10).json()
    return plan


def by_external_id(rest: RestClient, external_id: str) -> list[dict[str, Any]]:
    query = {"filter": [{"op": "eq", "field": "externalID", "value": external_id}]}
    response = rest.post("Tickets/query", json=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# -- the plan ------------------------------------------------------------------------------------


def test_default_plan(sandbox_server: SandboxServer) -> None:
    assert get_faults(sandbox_server) == {
        "latency_ms": 0.0,
        "error_rate": 0.0,
        "error_status": 500,
        "error_count": None,
        "outage": False,
        "ambiguous_create": None,
        "seed": None,
    }


INVALID_PLANS = [
    ("latency-negative", {"latency_ms": -1}, "latency_ms"),
    ("latency-text", {"latency_ms": "slow"}, "latency_ms"),
    ("error-rate-above-1", {"error_rate": 1.5}, "error_rate"),
    ("error-status-not-an-error", {"error_status": 200}, "error_status"),
    ("error-status-fraction", {"error_status": 503.5}, "error_status"),
    ("error-count-zero", {"error_count": 0}, "error_count"),
    ("outage-not-bool", {"outage": "maybe"}, "outage"),
    ("seed-text", {"seed": "abc"}, "seed"),
    ("unknown-field", {"latency": 5}, "latency"),
    ("ambiguous-mode", {"ambiguous_create": {"mode": "explode"}}, "ambiguous_create"),
    ("ambiguous-entity", {"ambiguous_create": {"entities": ["Companies"]}}, "ambiguous_create"),
    ("ambiguous-rate", {"ambiguous_create": {"rate": 2}}, "ambiguous_create"),
    ("ambiguous-count", {"ambiguous_create": {"count": 0}}, "ambiguous_create"),
    ("not-an-object", [1, 2], "_schema"),
]


@pytest.mark.parametrize(
    ("plan", "field"), [row[1:] for row in INVALID_PLANS], ids=[row[0] for row in INVALID_PLANS]
)
def test_invalid_plans_are_refused_naming_the_field(
    sandbox_server: SandboxServer, plan: Any, field: str
) -> None:
    set_faults(sandbox_server, {"latency_ms": 5}).raise_for_status()
    response = set_faults(sandbox_server, plan)
    assert response.status_code == 400, response.text
    assert field in response.json()["fields"], response.json()
    # A refused plan leaves the current one in place.
    assert get_faults(sandbox_server)["latency_ms"] == 5


def test_a_plan_is_echoed_with_defaults(sandbox_server: SandboxServer) -> None:
    response = set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop"}, "seed": 7})
    assert response.status_code == 200, response.text
    assert response.json()["ambiguous_create"] == {
        "mode": "drop",
        "rate": 1.0,
        "hang_seconds": 30.0,
        "entities": ["Tickets"],
        "count": None,
    }
    assert get_faults(sandbox_server) == response.json()


# -- latency and errors ----------------------------------------------------------------------


def test_latency(rest: RestClient, sandbox_server: SandboxServer, sandbox: Sandbox) -> None:
    set_faults(sandbox_server, {"latency_ms": 120}).raise_for_status()
    started = time.monotonic()
    assert rest.get("Companies/0").status_code == 200
    assert time.monotonic() - started >= 0.12
    assert [call.added_latency_ms for call in sandbox.calls()] == [120]


def test_error_count_fails_the_next_calls_then_recovers(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    plan = {"error_rate": 1.0, "error_status": 503, "error_count": 2}
    set_faults(sandbox_server, plan).raise_for_status()
    for _ in range(2):
        response = rest.get("Companies/0")
        assert response.status_code == 503
        assert response.json()["errors"]
    assert rest.get("Companies/0").status_code == 200
    assert rest.get("Companies/0").status_code == 200
    assert get_faults(sandbox_server)["error_rate"] == 0.0
    calls = requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json()
    assert [(c["status"], c["fault"]) for c in calls] == [
        (503, "error"),
        (503, "error"),
        (200, ""),
        (200, ""),
    ]


def test_injected_errors_refuse_writes_without_applying_them(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    set_faults(sandbox_server, {"error_rate": 1.0, "error_count": 1}).raise_for_status()
    assert rest.post("Tickets", json=TICKET | {"externalID": "e1"}).status_code == 500
    assert by_external_id(rest, "e1") == []


def test_outage_fails_everything(
    rest: RestClient, sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    set_faults(sandbox_server, {"outage": True}).raise_for_status()
    zone = requests.get(
        f"{rest.base}zoneInformation", params={"user": api_user.username}, timeout=10
    )
    assert zone.status_code == 503
    assert rest.get("Companies/0").status_code == 503
    assert rest.post("Tickets", json=TICKET).status_code == 503
    assert rest.get("Companies/0", headers={"Secret": "wrong"}).status_code == 503
    # The control endpoints keep working, and clearing the plan ends the outage.
    assert requests.get(f"{sandbox_server.url}_sandbox/tickets", timeout=10).json() == []
    set_faults(sandbox_server, {}).raise_for_status()
    assert rest.get("Companies/0").status_code == 200


def _pattern(rest: RestClient, server: SandboxServer, seed: int) -> list[int]:
    set_faults(server, {"error_rate": 0.5, "seed": seed}).raise_for_status()
    return [rest.get("Companies/0").status_code for _ in range(24)]


def test_a_seeded_error_rate_is_deterministic(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    first = _pattern(rest, sandbox_server, seed=42)
    assert set(first) == {200, 500}
    assert _pattern(rest, sandbox_server, seed=42) == first
    assert _pattern(rest, sandbox_server, seed=43) != first


# -- ambiguous creates -----------------------------------------------------------------------


def test_hang_times_the_client_out_but_the_ticket_exists(
    rest: RestClient, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    plan = {"ambiguous_create": {"mode": "hang", "hang_seconds": 1.0, "count": 1}}
    set_faults(sandbox_server, plan).raise_for_status()
    with pytest.raises(requests.exceptions.ReadTimeout):
        rest.post("Tickets", json=TICKET | {"externalID": "alert-hang"}, timeout=0.3)
    found = by_external_id(rest, "alert-hang")
    assert len(found) == 1
    # count 1: the fault is used up and the next create answers normally.
    assert get_faults(sandbox_server)["ambiguous_create"] is None
    assert rest.create_ticket(externalID="alert-after") == found[0]["id"] + 1


def test_drop_closes_the_connection_but_the_ticket_exists(
    rest: RestClient, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop"}}).raise_for_status()
    for n in range(2):
        with pytest.raises(requests.exceptions.ConnectionError):
            rest.post("Tickets", json=TICKET | {"externalID": f"alert-drop-{n}"})
        # The dropped call is in the log as soon as the client sees the connection end.
        last = sandbox.calls()[-1]
        assert (last.fault, last.status, last.endpoint) == ("drop", 0, "Tickets")
        assert len(by_external_id(rest, f"alert-drop-{n}")) == 1
    drops = [call for call in sandbox.calls() if call.fault == "drop"]
    assert len(drops) == 2


def test_drop_needs_a_real_server(api_user: ApiUser) -> None:
    sandbox = Sandbox(SandboxConfig(user=api_user))
    sandbox.faults.set(load_plan({"ambiguous_create": {"mode": "drop"}}))
    client = create_sandbox_app(sandbox).test_client()
    headers = {
        "UserName": api_user.username,
        "Secret": api_user.secret,
        "ApiIntegrationCode": api_user.integration_code,
    }
    response = client.post("/atservicesrest/v1.0/Tickets", json=TICKET, headers=headers)
    assert response.status_code == 502
    assert [call.status for call in sandbox.calls()] == [502]


def test_ambiguous_creates_only_hit_the_entities_named(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    plan = {"ambiguous_create": {"mode": "drop", "entities": ["TicketNotes"], "count": 1}}
    set_faults(sandbox_server, plan).raise_for_status()
    ticket_id = rest.create_ticket()
    with pytest.raises(requests.exceptions.ConnectionError):
        rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE)
    notes = rest.get(f"Tickets/{ticket_id}/Notes").json()["items"]
    assert len(notes) == 1
    assert rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE).status_code == 200


def test_ambiguous_creates_spare_updates_and_refused_creates(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    ticket_id = rest.create_ticket()
    set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop", "count": 1}})
    assert rest.patch("Tickets", json={"id": ticket_id, "priority": 1}).status_code == 200
    assert rest.post("Tickets", json={"title": "no company"}).status_code == 500
    # The fault is still armed for the first create that succeeds.
    assert get_faults(sandbox_server)["ambiguous_create"] is not None
    with pytest.raises(requests.exceptions.ConnectionError):
        rest.post("Tickets", json=TICKET)


def test_ambiguous_rate_zero_never_fires(rest: RestClient, sandbox_server: SandboxServer) -> None:
    set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop", "rate": 0}})
    for _ in range(3):
        rest.create_ticket()


# -- control endpoints -----------------------------------------------------------------------


def test_reset_clears_tickets_calls_and_faults(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    first = rest.create_ticket()
    set_faults(sandbox_server, {"latency_ms": 10}).raise_for_status()
    assert requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json()
    response = requests.post(f"{sandbox_server.url}_sandbox/reset", timeout=10)
    assert response.status_code == 200
    assert requests.get(f"{sandbox_server.url}_sandbox/tickets", timeout=10).json() == []
    assert requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json() == []
    assert get_faults(sandbox_server)["latency_ms"] == 0.0
    assert rest.get("ThresholdInformation").json()["currentTimeframeRequestCount"] == 1
    # Ids start over and the seeded companies are back.
    assert rest.create_ticket() == first
    assert rest.get("Companies/29683414").json()["item"]["companyName"] == "Contoso Ltd"


def test_sandbox_tickets_lists_notes_in_order(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    ticket_id = rest.create_ticket(externalID="alert-1")
    other_id = rest.create_ticket()
    for text in ("first", "second", "third"):
        body = NOTE | {"description": text}
        rest.post(f"Tickets/{ticket_id}/Notes", json=body).raise_for_status()
    tickets = requests.get(f"{sandbox_server.url}_sandbox/tickets", timeout=10).json()
    assert [t["id"] for t in tickets] == [ticket_id, other_id]
    assert [n["description"] for n in tickets[0]["notes"]] == ["first", "second", "third"]
    assert tickets[0]["externalID"] == "alert-1"
    assert tickets[1]["notes"] == []


def test_sandbox_calls_describe_each_call(
    rest: RestClient, sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    rest.create_ticket()
    rest.get("Companies/0", headers={"Secret": "wrong"})
    calls = requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json()
    assert [(c["method"], c["endpoint"], c["operation"], c["status"]) for c in calls] == [
        ("POST", "Tickets", "write.post", 200),
        ("GET", "Companies", "item.get", 401),
    ]
    assert all(c["api"] == "rest" for c in calls)
    # The call log never carries credentials.
    text = requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).text
    assert api_user.secret not in text and api_user.integration_code not in text


def test_sandbox_index(sandbox_server: SandboxServer, api_user: ApiUser) -> None:
    index = requests.get(f"{sandbox_server.url}_sandbox/", timeout=10).json()
    assert index["rest_base"] == f"{sandbox_server.url}atservicesrest/v1.0/"
    assert index["username"] == api_user.username
    assert api_user.secret not in str(index)
