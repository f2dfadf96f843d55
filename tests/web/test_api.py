"""The JSON API (/api/v1): authentication, alert and delivery listings, and dead-letter replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from connector.persistence.models import ApiToken, Delivery, TicketLink, utcnow
from tests.conftest import API_TOKEN, HOOK_TOKEN, error_of

ALERT: dict[str, Any] = {
    "id": "disk-srv01",
    "status": "active",
    "severity": "error",
    "title": "Disk full on srv01",
    "message": "/var is 99% full",
    "host": "srv01",
    "tenant": "fabrikam",
    "monitor": "disk",
    "properties": {"site": "Berlin"},
    "started_at": "2026-11-22T10:00:00Z",
    "occurred_at": "2026-11-22T10:00:05Z",
}

#: Refusals decided before any query: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def auth(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(client: FlaskClient, path: str, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", auth())
    return client.get(f"/api/v1/{path}", **kwargs)


def hook(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    """Post one alert through the webhook; return its accepted entry."""
    response = client.post("/hooks/generic", json=body, headers=auth(HOOK_TOKEN))
    assert response.status_code == 202, response.get_data(as_text=True)
    return dict(response.get_json()["accepted"][0])


def set_delivery(app: Flask, delivery_id: int, **values: Any) -> None:
    with app.extensions["connector"].transaction() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def load_delivery(app: Flask, delivery_id: int) -> Delivery:
    with app.extensions["connector"].sessions() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery


# -- authentication -------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("path", ["alerts", "alerts/1", "deliveries"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(auth("not-the-token"), id="wrong"),
        pytest.param(auth(HOOK_TOKEN), id="hook-token"),
        pytest.param({"Authorization": f"Basic {API_TOKEN}"}, id="basic-scheme"),
    ],
)
def test_api_refuses_bad_credentials_with_401(
    client: FlaskClient, headers: dict[str, str], path: str
) -> None:
    error_of(get(client, path, headers=headers), 401)


@sqlite_only
def test_api_token_in_the_query_string_is_401(client: FlaskClient) -> None:
    error_of(get(client, "alerts", headers={}, query_string={"token": API_TOKEN}), 401)


@sqlite_only
def test_replay_needs_the_api_token(client: FlaskClient, connector_app: Flask) -> None:
    delivery_id = only_delivery_id(client, hook(client, ALERT)["alert_id"])
    set_delivery(connector_app, delivery_id, state="dead")

    error_of(replay(client, delivery_id, token=HOOK_TOKEN), 401)
    assert load_delivery(connector_app, delivery_id).state == "dead"


@sqlite_only
def test_revoked_api_token_is_401(client: FlaskClient, connector_app: Flask) -> None:
    assert get(client, "alerts").status_code == 200
    with connector_app.extensions["connector"].transaction() as session:
        session.execute(update(ApiToken).values(revoked_at=utcnow()))

    error_of(get(client, "alerts"), 401)


# -- alerts ---------------------------------------------------------------------------------------


def test_alert_list_is_newest_first_with_no_ticket_before_any_worker(
    client: FlaskClient,
) -> None:
    first = hook(client, ALERT)
    second = hook(client, dict(ALERT, id="cpu-srv02", title="CPU high", host="srv02"))

    response = get(client, "alerts")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["limit"], body["offset"]) == (100, 0)
    assert [a["id"] for a in body["alerts"]] == [second["alert_id"], first["alert_id"]]
    alert = body["alerts"][1]
    assert alert == {
        "id": first["alert_id"],
        "integration_id": alert["integration_id"],
        "fingerprint": "disk-srv01",
        "source": "generic",
        "status": "active",
        "severity": "error",
        "title": "Disk full on srv01",
        "host": "srv01",
        "tenant": "fabrikam",
        "monitor": "disk",
        "started_at": "2026-11-22T10:00:00+00:00",
        "last_event_at": alert["last_event_at"],
        "ticket": None,
    }
    assert isinstance(alert["integration_id"], int)


def test_alert_list_pages_and_filters_by_status(client: FlaskClient) -> None:
    ids = [hook(client, dict(ALERT, id=f"a{n}"))["alert_id"] for n in range(3)]
    cleared = hook(client, dict(ALERT, id="a1", status="cleared", occurred_at=None))

    first_page = get(client, "alerts", query_string={"limit": 2}).get_json()["alerts"]
    second_page = get(client, "alerts", query_string={"limit": 2, "offset": 2}).get_json()
    only_cleared = get(client, "alerts", query_string={"status": "cleared"}).get_json()

    # a1 was the last to hear anything, so it leads.
    assert [a["id"] for a in first_page] == [ids[1], ids[2]]
    assert [a["id"] for a in second_page["alerts"]] == [ids[0]]
    assert second_page["offset"] == 2
    assert [a["id"] for a in only_cleared["alerts"]] == [cleared["alert_id"]]


def alertmanager_alert(client: FlaskClient, fingerprint: str) -> dict[str, Any]:
    """Post one firing alert through the Alertmanager source; return its accepted entry."""
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "autotask",
        "groupKey": '{}:{alertname="MemoryHigh"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "MemoryHigh", "instance": "srv03:9100"},
                "annotations": {"summary": "Memory high on srv03"},
                "startsAt": "2026-11-22T10:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }
    response = client.post("/hooks/alertmanager", json=body, headers=auth(HOOK_TOKEN))
    assert response.status_code == 202, response.get_data(as_text=True)
    return dict(response.get_json()["accepted"][0])


def link_ticket(app: Flask, alert_id: int, episode: int, ticket_id: int, number: str) -> None:
    """Record that the alert's ticket episode `episode` is Autotask ticket `ticket_id`."""
    with app.extensions["connector"].transaction() as session:
        session.add(
            TicketLink(
                alert_id=alert_id,
                episode=episode,
                state="open",
                marker=f"test-{alert_id}-{episode}",
                ticket_id=ticket_id,
                ticket_number=number,
            )
        )


def test_alerts_are_found_by_source_fingerprint_ticket_and_integration(
    client: FlaskClient, connector_app: Flask
) -> None:
    disk = hook(client, ALERT)["alert_id"]
    cpu = hook(client, dict(ALERT, id="cpu-srv02", title="CPU high"))["alert_id"]
    memory = alertmanager_alert(client, "mem-srv03")["alert_id"]
    hook(client, dict(ALERT, id="cpu-srv02", status="cleared", occurred_at=None))
    # The disk alert had a ticket, was cleared, fired again: a second ticket episode.
    link_ticket(connector_app, disk, 1, 5001, "T20261122.0001")
    link_ticket(connector_app, disk, 2, 5002, "T20261122.0002")
    link_ticket(connector_app, cpu, 1, 5003, "T20261122.0003")
    [integration] = {a["integration_id"] for a in get(client, "alerts").get_json()["alerts"]}
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({}, [cpu, memory, disk]),
        ({"fingerprint": "disk-srv01"}, [disk]),
        ({"fingerprint": "DISK-srv01"}, []),  # exact: no case folding
        ({"fingerprint": "disk"}, []),  # exact: no prefix
        ({"source": "alertmanager"}, [memory]),
        ({"source": "generic"}, [cpu, disk]),
        ({"source": "logicmonitor"}, []),
        ({"source": "alertmanager", "fingerprint": "mem-srv03"}, [memory]),
        ({"source": "generic", "fingerprint": "mem-srv03"}, []),
        ({"ticket_id": 5001}, [disk]),  # an earlier episode's ticket finds the alert too
        ({"ticket_id": 5002}, [disk]),
        ({"ticket_id": 5003}, [cpu]),
        ({"ticket_id": 5004}, []),
        ({"ticket_number": "T20261122.0001"}, [disk]),
        ({"ticket_number": "T20261122.0003"}, [cpu]),
        ({"ticket_number": "T20261122"}, []),
        ({"ticket_id": 5001, "ticket_number": "T20261122.0001"}, [disk]),
        # Both filters hold for one and the same ticket, not each for some ticket of the alert.
        ({"ticket_id": 5001, "ticket_number": "T20261122.0002"}, []),
        ({"ticket_number": "T20261122.0003", "status": "cleared"}, [cpu]),
        ({"ticket_number": "T20261122.0003", "status": "active"}, []),
        ({"status": "active", "source": "generic"}, [disk]),
        ({"integration_id": integration}, [cpu, memory, disk]),
        ({"integration_id": integration + 1}, []),
        ({"integration_id": integration, "limit": 2}, [cpu, memory]),
        ({"integration_id": integration, "limit": 2, "offset": 2}, [disk]),
        ({"source": "generic", "offset": 1}, [disk]),
    ]

    for query, expected in cases:
        response = get(client, "alerts", query_string=query)
        assert response.status_code == 200, (query, response.get_data(as_text=True))
        found = [alert["id"] for alert in response.get_json()["alerts"]]
        assert found == expected, query
    [found] = get(client, "alerts", query_string={"ticket_id": 5001}).get_json()["alerts"]
    # Found by its first ticket, it still shows its current one.
    assert (found["ticket"]["ticket_id"], found["ticket"]["episode"]) == (5002, 2)


def test_alert_detail_has_events_with_dispositions_and_pending_deliveries(
    client: FlaskClient,
) -> None:
    queued = hook(client, ALERT)
    duplicate = hook(client, ALERT)
    ack = hook(client, dict(ALERT, status="ack", note="on it", acknowledged_by="jane"))

    response = get(client, f"alerts/{queued['alert_id']}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "acknowledged"
    assert body["message"] == "/var is 99% full"
    assert body["properties"] == {"site": "Berlin"}
    assert body["ticket"] is None
    assert body["tickets"] == []
    assert [(e["id"], e["status"], e["disposition"]) for e in body["events"]] == [
        (queued["event_id"], "active", "queued"),
        (duplicate["event_id"], "active", "duplicate"),
        (ack["event_id"], "acknowledged", "queued"),
    ]
    assert body["events"][0]["occurred_at"] == "2026-11-22T10:00:05+00:00"
    assert body["events"][0]["severity"] == "error"
    assert body["events"][0]["received_at"]
    assert [d["event_id"] for d in body["deliveries"]] == [queued["event_id"], ack["event_id"]]
    delivery = body["deliveries"][0]
    assert delivery["alert_id"] == queued["alert_id"]
    assert delivery["state"] == "pending"
    assert delivery["attempts"] == 0
    assert delivery["last_error"] is None
    assert delivery["outcome"] is None
    assert delivery["planned"] is None
    assert delivery["last_request"] is None
    assert delivery["last_response"] is None
    assert delivery["finished_at"] is None
    assert delivery["next_attempt_at"]


def test_alert_detail_shows_why_an_event_was_dropped(client: FlaskClient) -> None:
    dropped = hook(client, dict(ALERT, tenant="switched-off"))

    body = get(client, f"alerts/{dropped['alert_id']}").get_json()

    [event] = body["events"]
    assert event == {
        "id": dropped["event_id"],
        "status": "active",
        "severity": "error",
        "occurred_at": "2026-11-22T10:00:05+00:00",
        "received_at": event["received_at"],
        "disposition": "dropped: tenant 'switched-off' is switched off",
        "warnings": [],
    }
    assert event["received_at"].endswith("+00:00")
    assert body["deliveries"] == []


@sqlite_only
@pytest.mark.parametrize("path", ["alerts/999999", "alerts/0"])
def test_missing_alert_is_404(client: FlaskClient, path: str) -> None:
    error = error_of(get(client, path), 404)

    assert path.split("/")[1] in error["message"]


# -- deliveries -----------------------------------------------------------------------------------


def test_deliveries_filter_by_state_newest_first(client: FlaskClient, connector_app: Flask) -> None:
    first = hook(client, ALERT)
    second = hook(client, dict(ALERT, id="cpu-srv02"))
    [first_delivery] = get(client, f"alerts/{first['alert_id']}").get_json()["deliveries"]
    set_delivery(connector_app, first_delivery["id"], state="dead", last_error="HTTP 500")

    pending = get(client, "deliveries", query_string={"state": "pending"}).get_json()
    dead = get(client, "deliveries", query_string={"state": "dead"}).get_json()
    everything = get(client, "deliveries").get_json()

    assert [d["event_id"] for d in pending["deliveries"]] == [second["event_id"]]
    assert [d["event_id"] for d in dead["deliveries"]] == [first["event_id"]]
    assert dead["deliveries"][0]["last_error"] == "HTTP 500"
    assert [d["event_id"] for d in everything["deliveries"]] == [
        second["event_id"],
        first["event_id"],
    ]


def plan(outcome: str) -> dict[str, Any]:
    """A stored plan as the worker writes it at a delivery's first attempt."""
    return {"outcome": outcome, "reason": "", "episode": 1, "steps": []}


def test_a_delivery_shows_its_stored_outcome_and_its_planned_one(
    client: FlaskClient, connector_app: Flask
) -> None:
    disk = hook(client, ALERT)["alert_id"]
    cpu = hook(client, dict(ALERT, id="cpu-srv02"))["alert_id"]
    memory = hook(client, dict(ALERT, id="mem-srv03"))["alert_id"]
    created, failed, waiting = (only_delivery_id(client, a) for a in (disk, cpu, memory))
    set_delivery(connector_app, created, state="done", plan=plan("created"), outcome="created")
    # Dead-lettered: planned as a create, it created nothing.
    set_delivery(connector_app, failed, state="dead", plan=plan("created"), outcome="failed")
    # Planned, not done yet: no outcome so far.
    set_delivery(connector_app, waiting, state="in_progress", plan=plan("noted"), outcome=None)

    shown = {d["id"]: d for d in get(client, "deliveries").get_json()["deliveries"]}

    assert (shown[created]["planned"], shown[created]["outcome"]) == ("created", "created")
    assert (shown[failed]["planned"], shown[failed]["outcome"]) == ("created", "failed")
    assert (shown[waiting]["planned"], shown[waiting]["outcome"]) == ("noted", None)
    [in_detail] = get(client, f"alerts/{cpu}").get_json()["deliveries"]
    assert in_detail == shown[failed]


def test_deliveries_filter_by_alert_and_outcome(client: FlaskClient, connector_app: Flask) -> None:
    disk = hook(client, ALERT)["alert_id"]
    hook(client, dict(ALERT, status="cleared", occurred_at=None))
    cpu = hook(client, dict(ALERT, id="cpu-srv02"))["alert_id"]
    active, cleared = (d["id"] for d in get(client, f"alerts/{disk}").get_json()["deliveries"])
    cpu_delivery = only_delivery_id(client, cpu)
    set_delivery(connector_app, active, state="done", plan=plan("created"), outcome="created")
    set_delivery(connector_app, cleared, state="dead", plan=plan("completed"), outcome="failed")
    set_delivery(connector_app, cpu_delivery, state="dead", plan=plan("created"), outcome="failed")
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"alert_id": disk}, [cleared, active]),
        ({"alert_id": cpu}, [cpu_delivery]),
        ({"alert_id": cpu + 1000}, []),
        ({"outcome": "failed"}, [cpu_delivery, cleared]),
        ({"outcome": "created"}, [active]),
        ({"outcome": "completed"}, []),  # planned, never done: the stored outcome counts
        ({"alert_id": disk, "outcome": "failed"}, [cleared]),
        ({"alert_id": disk, "state": "done"}, [active]),
        ({"state": "dead", "outcome": "failed", "limit": 1}, [cpu_delivery]),
        ({"state": "dead", "outcome": "failed", "limit": 1, "offset": 1}, [cleared]),
    ]

    for query, expected in cases:
        response = get(client, "deliveries", query_string=query)
        assert response.status_code == 200, (query, response.get_data(as_text=True))
        assert [d["id"] for d in response.get_json()["deliveries"]] == expected, query


@sqlite_only
@pytest.mark.parametrize("state", ["bad", "PENDING", "failed"])
def test_unknown_delivery_state_is_400(client: FlaskClient, state: str) -> None:
    error = error_of(get(client, "deliveries", query_string={"state": state}), 400)

    assert "pending" in error["message"]


@sqlite_only
@pytest.mark.parametrize("path", ["alerts", "deliveries"])
@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"offset": "-1"},
        {"offset": "x"},
    ],
    ids=lambda q: "-".join(f"{k}={v}" for k, v in q.items()),
)
def test_bad_limit_or_offset_is_400(client: FlaskClient, path: str, query: dict[str, str]) -> None:
    error = error_of(get(client, path, query_string=query), 400)

    assert next(iter(query)) in error["message"]


@sqlite_only
@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_accepted(client: FlaskClient, limit: int) -> None:
    hook(client, ALERT)
    hook(client, dict(ALERT, id="cpu-srv02"))

    body = get(client, "deliveries", query_string={"limit": limit}).get_json()

    assert body["limit"] == limit
    assert len(body["deliveries"]) == min(limit, 2)


# -- replay ---------------------------------------------------------------------------------------


def replay(client: FlaskClient, delivery_id: int, token: str = API_TOKEN) -> Any:
    return client.post(f"/api/v1/deliveries/{delivery_id}/replay", headers=auth(token))


def only_delivery_id(client: FlaskClient, alert_id: int) -> int:
    [delivery] = get(client, f"alerts/{alert_id}").get_json()["deliveries"]
    return int(delivery["id"])


@pytest.mark.parametrize("state", ["pending", "in_progress", "done"])
def test_replay_of_a_delivery_that_is_not_dead_is_409_and_changes_nothing(
    client: FlaskClient, connector_app: Flask, state: str
) -> None:
    delivery_id = only_delivery_id(client, hook(client, ALERT)["alert_id"])
    set_delivery(connector_app, delivery_id, state=state)
    before = load_delivery(connector_app, delivery_id)

    error = error_of(replay(client, delivery_id), 409)

    assert state in error["message"]
    after = load_delivery(connector_app, delivery_id)
    assert (after.state, after.next_attempt_at, after.deadline_at) == (
        before.state,
        before.next_attempt_at,
        before.deadline_at,
    )


@sqlite_only
def test_replay_of_a_missing_delivery_is_404(client: FlaskClient) -> None:
    error_of(replay(client, 424242), 404)


def test_replay_of_a_dead_delivery_queues_it_again_with_a_fresh_deadline(
    client: FlaskClient, connector_app: Flask
) -> None:
    delivery_id = only_delivery_id(client, hook(client, ALERT)["alert_id"])
    long_ago = utcnow() - timedelta(days=10)
    set_delivery(
        connector_app,
        delivery_id,
        state="dead",
        attempts=6,
        last_error="HTTP 500 from Autotask",
        next_attempt_at=long_ago,
        deadline_at=long_ago,
        finished_at=long_ago,
    )
    before = utcnow()

    response = replay(client, delivery_id)

    after = utcnow()
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == delivery_id
    assert body["state"] == "pending"
    assert body["finished_at"] is None
    # The history stays visible: attempts and the last error are kept.
    assert body["attempts"] == 6
    assert body["last_error"] == "HTTP 500 from Autotask"
    delivery = load_delivery(connector_app, delivery_id)
    assert delivery.state == "pending"
    assert delivery.finished_at is None
    assert before <= delivery.next_attempt_at <= after
    max_age = connector_app.extensions["connector"].max_delivery_age
    assert before + max_age <= delivery.deadline_at <= after + max_age
    # Replayed once, it is no longer dead: a second replay is a conflict.
    error_of(replay(client, delivery_id), 409)
    pending = get(client, "deliveries", query_string={"state": "pending"}).get_json()
    assert [d["id"] for d in pending["deliveries"]] == [delivery_id]
