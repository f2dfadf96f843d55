"""The JSON API's dead-letter decisions: discard with a reason, replay every dead letter, and the
same for kept webhooks (POST …/discard, /deliveries/replay-dead, /rejected-webhooks/replay-all).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.persistence.models import Delivery, RejectedWebhook
from tests.conftest import API_TOKEN, GENERIC_ALERT, HOOK_TOKEN, default_integration_id, error_of

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def api(client: FlaskClient, path: str, body: Any = None, **kwargs: Any) -> Any:
    """POST to the API with its token (a JSON body when given)."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    if body is not None:
        kwargs["json"] = body
    return client.post(f"/api/v1/{path}", headers=headers, **kwargs)


def dead_letters(client: FlaskClient, app: Flask, count: int) -> list[int]:
    """`count` alerts through the webhook, each delivery dead-lettered; their ids."""
    for number in range(count):
        answer = client.post(
            "/hooks/generic",
            json=dict(GENERIC_ALERT, id=f"dead-{number}"),
            headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
        )
        assert answer.status_code == 202
    with app.extensions["connector"].transaction() as session:
        session.execute(
            update(Delivery).values(state="dead", outcome="failed", last_error="HTTP 500")
        )
        return list(session.scalars(select(Delivery.id).order_by(Delivery.id)))


def delivery_states(app: Flask) -> list[str]:
    with app.extensions["connector"].transaction() as session:
        return list(session.scalars(select(Delivery.state).order_by(Delivery.id)))


# -- deliveries ----------------------------------------------------------------------------------


def test_a_discarded_dead_letter_keeps_its_reason_and_is_never_replayed(
    client: FlaskClient, connector_app: Flask
) -> None:
    first, second = dead_letters(client, connector_app, 2)

    answer = api(client, f"deliveries/{first}/discard", {"reason": "  test alert \u2014 not real "})

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["state"], body["outcome"]) == ("discarded", "failed")
    assert body["discard_reason"] == "test alert \u2014 not real"
    assert body["discarded_at"] is not None
    assert "discarded" in error_of(api(client, f"deliveries/{first}/replay"), 409)["message"]
    assert (
        "not dead"
        in error_of(api(client, f"deliveries/{first}/discard", {"reason": "x"}), 409)["message"]
    )
    listed = client.get(
        "/api/v1/deliveries?state=discarded", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).get_json()["deliveries"]
    assert [d["id"] for d in listed] == [first]
    # The alarm counts only what still waits: the discarded one is no dead letter any more.
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "connector_dead_letters 1.0" in metrics.splitlines()
    assert 'connector_deliveries{state="discarded"} 1.0' in metrics.splitlines()

    replayed = api(client, "deliveries/replay-dead")

    assert replayed.get_json() == {"replayed": 1, "integration_id": None}
    assert delivery_states(connector_app) == ["discarded", "pending"]
    assert second  # the one replayed
    # Nothing dead is left: a second replay-all replays nothing.
    assert api(client, "deliveries/replay-dead", {}).get_json()["replayed"] == 0


def test_replay_dead_keeps_to_one_integration_when_asked(
    client: FlaskClient, connector_app: Flask
) -> None:
    dead_letters(client, connector_app, 3)
    integration_id = default_integration_id(connector_app)

    answer = api(client, "deliveries/replay-dead", {"integration_id": integration_id})

    assert answer.get_json() == {"replayed": 3, "integration_id": integration_id}
    assert delivery_states(connector_app) == ["pending"] * 3
    error_of(api(client, "deliveries/replay-dead", {"integration_id": 424242}), 404)


def test_the_replay_dead_command_replays_them_and_says_how_many(
    client: FlaskClient,
    connector_app: Flask,
    connector_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from connector.cli import main

    ids = dead_letters(client, connector_app, 2)
    with connector_app.extensions["connector"].transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == ids[1])
            .values(state="discarded", discard_reason="done by hand")
        )
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", str(connector_settings["DATABASE_URL"]))
    monkeypatch.setenv("CONNECTOR_SECRET_KEYS", json.dumps(connector_settings["SECRET_KEYS"]))

    result = CliRunner().invoke(main, ["replay-dead"])
    assert result.exit_code == 0, result.output
    assert "1 dead letter replayed" in result.output
    assert delivery_states(connector_app) == ["pending", "discarded"]
    unknown = CliRunner().invoke(main, ["replay-dead", "--integration", "424242"])
    assert unknown.exit_code == 1
    assert "no integration 424242" in unknown.output


@sqlite_only
@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({}, "reason: Missing data for required field", id="missing"),
        pytest.param({"reason": ""}, "reason: must not be blank", id="empty"),
        pytest.param({"reason": " \t\n "}, "reason: must not be blank", id="blank"),
        pytest.param({"reason": "x" * 501}, "reason: at most 500 characters, got 501", id="long"),
        pytest.param({"reason": 7}, "reason: Not a valid string", id="number"),
        pytest.param({"reason": "ok", "why": "x"}, "why: Unknown field", id="unknown-field"),
        pytest.param(["ok"], "must be a JSON object", id="list"),
    ],
)
def test_a_discard_without_a_usable_reason_is_a_precise_400(
    client: FlaskClient, connector_app: Flask, body: Any, words: str
) -> None:
    [delivery] = dead_letters(client, connector_app, 1)
    error = error_of(api(client, f"deliveries/{delivery}/discard", body), 400)
    assert words in error["message"]
    assert delivery_states(connector_app) == ["dead"]


@sqlite_only
def test_a_reason_of_500_characters_is_taken(client: FlaskClient, connector_app: Flask) -> None:
    [delivery] = dead_letters(client, connector_app, 1)
    answer = api(client, f"deliveries/{delivery}/discard", {"reason": "y" * 500})
    assert answer.status_code == 200


@sqlite_only
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"integration_id": -1}, "integration_id: Must be greater than or equal to 0"),
        ({"integration_id": 2**63}, "integration_id: Must be greater than or equal to 0"),
        ({"integration_id": "1"}, "integration_id: Not a valid integer"),
        ({"x": 1}, "x: Unknown field"),
        ([1], "must be a JSON object"),
    ],
)
@pytest.mark.parametrize("path", ["deliveries/replay-dead", "rejected-webhooks/replay-all"])
def test_replay_all_refuses_an_impossible_body_with_a_400(
    client: FlaskClient, path: str, body: Any, words: str
) -> None:
    assert words in error_of(api(client, path, body), 400)["message"]


@sqlite_only
@pytest.mark.parametrize("missing", ["424242", str(2**63), "9" * 30])
@pytest.mark.parametrize(
    "path",
    [
        "deliveries/{}/discard",
        "deliveries/{}/replay",
        "rejected-webhooks/{}/discard",
        "rejected-webhooks/{}/replay",
    ],
)
def test_an_unknown_or_impossible_id_is_404(client: FlaskClient, path: str, missing: str) -> None:
    error_of(api(client, path.format(missing), {"reason": "gone"}), 404)


@sqlite_only
@pytest.mark.parametrize(
    "path",
    [
        "deliveries/1/discard",
        "deliveries/replay-dead",
        "rejected-webhooks/1/discard",
        "rejected-webhooks/replay-all",
    ],
)
def test_the_new_routes_need_the_api_token(client: FlaskClient, path: str) -> None:
    answer = client.post(
        f"/api/v1/{path}", json={"reason": "x"}, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    error_of(answer, 401)


# -- rejected webhooks ---------------------------------------------------------------------------


def refuse(client: FlaskClient, body: bytes) -> int:
    """Send a body the generic source refuses; the id of the kept row."""
    answer = client.post(
        "/hooks/generic",
        data=body,
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500
    listed = client.get(
        "/api/v1/rejected-webhooks", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).get_json()["rejected_webhooks"]
    return int(listed[0]["id"])


@pytest.fixture
def upgraded_generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A connector upgraded to know the status word "raised" (the old one refused it)."""
    from marshmallow import fields, validate

    from adapters.sources import generic

    words = dict(generic.STATUS_WORDS, raised=generic.AlertStatus.ACTIVE)

    class UpgradedSchema(generic.GenericAlertSchema):
        status = fields.String(required=True, validate=validate.OneOf(sorted(words)))

    def upgrade() -> None:
        monkeypatch.setattr(generic, "STATUS_WORDS", words)
        monkeypatch.setattr(generic, "_ALERT_SCHEMA", UpgradedSchema())

    return upgrade


def raised(number: int) -> bytes:
    return json.dumps(dict(GENERIC_ALERT, id=f"raised-{number}", status="raised")).encode()


def test_a_discarded_webhook_is_listed_with_its_reason_and_never_replayed(
    client: FlaskClient, connector_app: Flask, upgraded_generic: Callable[[], None]
) -> None:
    kept = refuse(client, raised(1))
    error = error_of(api(client, f"rejected-webhooks/{kept}/discard", {"reason": " "}), 400)
    assert "reason: must not be blank" in error["message"]

    answer = api(client, f"rejected-webhooks/{kept}/discard", {"reason": "sent by mistake"})

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["discard_reason"] == "sent by mistake"
    assert body["discarded_at"] is not None and body["replayed_at"] is None
    upgraded_generic()
    assert (
        "discarded at" in error_of(api(client, f"rejected-webhooks/{kept}/replay"), 409)["message"]
    )
    assert (
        "discarded at"
        in error_of(api(client, f"rejected-webhooks/{kept}/discard", {"reason": "again"}), 409)[
            "message"
        ]
    )
    assert api(client, "rejected-webhooks/replay-all").get_json()["replayed"] == 0
    with connector_app.extensions["connector"].transaction() as session:
        assert session.scalar(select(Delivery.id)) is None  # nothing was taken in


def test_replay_all_takes_in_the_readable_and_keeps_the_rest_as_they_were(
    client: FlaskClient, connector_app: Flask, upgraded_generic: Callable[[], None]
) -> None:
    readable = refuse(client, raised(1))
    unreadable = refuse(client, b'{"status": ')
    replayed_before = refuse(client, raised(2))
    discarded = refuse(client, raised(3))
    upgraded_generic()
    assert api(client, f"rejected-webhooks/{replayed_before}/replay").status_code == 202
    assert (
        api(client, f"rejected-webhooks/{discarded}/discard", {"reason": "dup"}).status_code == 200
    )

    answer = api(
        client,
        "rejected-webhooks/replay-all",
        {"integration_id": default_integration_id(connector_app)},
    )

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["replayed"], body["replayed_ids"]) == (1, [readable])
    [refused] = body["refused"]
    assert refused["id"] == unreadable and "still cannot be read" in refused["message"]
    with connector_app.extensions["connector"].transaction() as session:
        rows = {row.id: row for row in session.scalars(select(RejectedWebhook))}
        assert rows[readable].replayed_at is not None
        assert (rows[unreadable].replayed_at, rows[unreadable].discarded_at) == (None, None)
        assert rows[discarded].replayed_at is None
    assert len(delivery_states(connector_app)) == 2  # raised-1 now, raised-2 before
    error_of(api(client, "rejected-webhooks/replay-all", {"integration_id": 424242}), 404)
