"""Batches are judged alert by alert: one bad alert never costs the others their tickets.

Alertmanager drops a whole notification on a 4xx, and so do most senders, so a batch whose one
alert cannot be read is a 202: the good alerts are ingested in one transaction, the bad one is
named in `rejected` and kept as a rejected webhook of its own (status 202, `alert_index`), its
body that alert alone so that it can be replayed alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import fields, validate
from sqlalchemy import func, select

from connector.persistence.models import Alert, AlertEvent, RejectedWebhook
from tests.adapters.sources.support import fixture, post
from tests.conftest import API_TOKEN, GENERIC_ALERT

NUL = "Disk full\x00 on srv03"


def api(client: FlaskClient, method: str, path: str) -> Any:
    return client.open(
        f"/api/v1/{path}", method=method, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )


def generic(n: int) -> dict[str, Any]:
    return dict(GENERIC_ALERT, id=f"disk-srv0{n}", host=f"srv0{n}")


def logicmonitor(n: int) -> dict[str, Any]:
    return fixture("logicmonitor", "active.json") | {"alert_id": f"LMD{n}"}


def datto_rmm(n: int) -> dict[str, Any]:
    return fixture("datto_rmm", "triggered.json") | {"alert_uid": f"uid-{n}"}


def office_protect(n: int) -> dict[str, Any]:
    event: dict[str, Any] = fixture("office_protect", "sign_in_unauthorized_country.json")
    return event | {"event_id": f"event-{n}"}


def alertmanager_alert(n: int) -> dict[str, Any]:
    alert = copy.deepcopy(fixture("alertmanager", "firing.json")["alerts"][0])
    alert["fingerprint"] = f"fp{n}"
    return dict(alert)


def with_nul(field: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def spoil(item: dict[str, Any]) -> dict[str, Any]:
        spoiled = copy.deepcopy(item)
        target = spoiled
        *path, last = field.split(".")
        for step in path:
            target = target[step]
        target[last] = NUL
        return spoiled

    return spoil


@dataclass(frozen=True)
class Batch:
    """A source's batch of three whose third alert carries a NUL in its title-bearing field."""

    source: str
    key: str
    item: Callable[[int], dict[str, Any]]
    spoil: Callable[[dict[str, Any]], dict[str, Any]]
    #: The refusal names this field of the third alert.
    field: str
    #: The rest of the webhook (Alertmanager's group fields).
    group: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        items = [self.item(1), self.item(2), self.spoil(self.item(3))]
        return (self.group or {}) | {self.key: items}


AM_GROUP = {k: v for k, v in fixture("alertmanager", "firing.json").items() if k != "alerts"}

BATCHES = {
    "generic": Batch("generic", "alerts", generic, with_nul("title"), "alerts.2.title"),
    "logicmonitor": Batch(
        "logicmonitor", "alerts", logicmonitor, with_nul("message"), "alerts.2.message"
    ),
    "datto_rmm": Batch("datto_rmm", "alerts", datto_rmm, with_nul("message"), "alerts.2.message"),
    "office_protect": Batch(
        "office_protect", "events", office_protect, with_nul("description"), "events.2.description"
    ),
    "alertmanager": Batch(
        "alertmanager",
        "alerts",
        alertmanager_alert,
        with_nul("annotations.summary"),
        "alerts.2.annotations.summary.value",
        group=AM_GROUP,
    ),
}


def stored(app: Flask) -> tuple[int, int]:
    with app.extensions["connector"].sessions() as session:
        alerts = session.scalar(select(func.count()).select_from(Alert))
        events = session.scalar(select(func.count()).select_from(AlertEvent))
    return int(alerts or 0), int(events or 0)


@pytest.mark.parametrize("batch", list(BATCHES.values()), ids=list(BATCHES))
def test_a_batch_with_one_bad_alert_keeps_the_good_ones_and_names_the_bad_one(
    client: FlaskClient, connector_app: Flask, batch: Batch
) -> None:
    body = batch.body()

    response = post(client, batch.source, body)

    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert [entry["index"] for entry in answer["accepted"]] == [0, 1]
    assert stored(connector_app) == (2, 2)
    [rejected] = answer["rejected"]
    assert (rejected["index"], rejected["disposition"]) == (2, "rejected")
    assert list(rejected["details"]) == [batch.field]
    assert "NUL" in rejected["details"][batch.field][0]
    assert batch.field in rejected["message"]
    # Visible to the admin, with the webhook's request id, that alert alone as its body.
    [row] = api(client, "GET", "rejected-webhooks").get_json()["rejected_webhooks"]
    assert (row["id"], row["status"], row["alert_index"]) == (
        rejected["rejected_webhook_id"],
        202,
        2,
    )
    assert (row["source"], row["request_id"]) == (batch.source, answer["request_id"])
    assert row["details"] == rejected["details"]
    kept = api(client, "GET", f"rejected-webhooks/{row['id']}").get_json()
    alone = json.loads(kept["body"])
    third = body[batch.key][2]
    assert alone == ((batch.group or {}) | {"alerts": [third]} if batch.group else third)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("batch", list(BATCHES.values()), ids=list(BATCHES))
def test_a_batch_whose_every_alert_is_bad_is_a_400_kept_whole(
    client: FlaskClient, connector_app: Flask, batch: Batch
) -> None:
    body = (batch.group or {}) | {batch.key: [batch.spoil(batch.item(n)) for n in (1, 2)]}

    response = post(client, batch.source, body)

    assert response.status_code == 400
    details = response.get_json()["error"]["details"]
    assert sorted(details) == sorted(batch.field.replace(".2.", f".{n}.") for n in (0, 1))
    assert stored(connector_app) == (0, 0)
    [row] = api(client, "GET", "rejected-webhooks").get_json()["rejected_webhooks"]
    assert (row["status"], row["alert_index"]) == (400, None)
    kept = api(client, "GET", f"rejected-webhooks/{row['id']}").get_json()
    assert json.loads(kept["body"]) == body


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bad_alertmanager_group_field_refuses_the_whole_webhook(
    client: FlaskClient, connector_app: Flask
) -> None:
    """The group's fields apply to every alert of it: none can be read without them."""
    body = BATCHES["alertmanager"].body() | {"version": "3"}

    response = post(client, "alertmanager", body)

    assert response.status_code == 400
    assert list(response.get_json()["error"]["details"]) == ["version"]
    assert stored(connector_app) == (0, 0)


def test_a_refused_alert_that_is_still_bad_is_not_replayed(
    client: FlaskClient, connector_app: Flask
) -> None:
    """NUL cannot be stored by any database: the replay is a 422 and the row stays."""
    answer = post(client, "generic", BATCHES["generic"].body()).get_json()
    [rejected] = answer["rejected"]
    path = f"rejected-webhooks/{rejected['rejected_webhook_id']}"

    response = api(client, "POST", f"{path}/replay")

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "still cannot be read" in error["message"]
    assert list(error["details"]) == ["title"]
    row = api(client, "GET", path).get_json()
    assert (row["replayed_at"], row["replay_result"]) == (None, None)
    assert stored(connector_app) == (2, 2)


def test_a_refused_alert_replays_alone_once_the_adapter_reads_it(
    client: FlaskClient, connector_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector that learns to read the alert (here: a status word) takes it in, once."""
    from adapters.sources import generic as generic_module

    unknown_word = dict(generic(3), status="raised")
    answer = post(client, "generic", {"alerts": [generic(1), unknown_word]}).get_json()
    [rejected] = answer["rejected"]
    path = f"rejected-webhooks/{rejected['rejected_webhook_id']}"
    # The upgrade: a new connector version whose generic source knows the word.
    words = dict(generic_module.STATUS_WORDS, raised=generic_module.AlertStatus.ACTIVE)

    class UpgradedSchema(generic_module.GenericAlertSchema):
        status = fields.String(required=True, validate=validate.OneOf(sorted(words)))

    monkeypatch.setattr(generic_module, "STATUS_WORDS", words)
    monkeypatch.setattr(generic_module, "_ALERT_SCHEMA", UpgradedSchema())

    response = api(client, "POST", f"{path}/replay")

    assert response.status_code == 202, response.get_data(as_text=True)
    replay = response.get_json()
    [accepted] = replay["accepted"]
    assert (accepted["index"], accepted["disposition"]) == (0, "queued")
    assert replay["rejected"] == []
    assert stored(connector_app) == (2, 2)
    row = api(client, "GET", path).get_json()
    assert row["replayed_at"] == replay["replayed_at"]
    assert row["replay_result"]["accepted"] == replay["accepted"]
    # Nothing is ingested twice.
    again = api(client, "POST", f"{path}/replay")
    assert again.status_code == 409
    assert stored(connector_app) == (2, 2)
    with connector_app.extensions["connector"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(RejectedWebhook)) == 1
