"""AutotaskRestTarget registers a ticket webhook against the running sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sandbox import Sandbox
from adapters.sandbox.seed import API_USER_RESOURCE_ID
from adapters.targets.autotask.rest import AutotaskRestTarget
from connector.domain import ApiCallRecord
from connector.errors import TargetRejected
from connector.ports import RegisteredWebhook, TicketWebhookRegistrar
from tests.adapters.targets.autotask.rest.test_target_sandbox import (
    make_client,  # noqa: F401  (fixture)
    records,  # noqa: F401  (fixture)
    sent_headers,  # noqa: F401  (fixture)
    target,  # noqa: F401  (fixture)
)

URL = "https://alerts.example.net/ticket-webhooks/1"


def test_the_webhook_is_created_with_its_fields_and_the_api_user_excluded(
    target: AutotaskRestTarget,  # noqa: F811
    sandbox: Sandbox,
    records: list[ApiCallRecord],  # noqa: F811
) -> None:
    assert isinstance(target, TicketWebhookRegistrar)
    registered = target.register_ticket_webhook("Alert connector: default", URL, "s" * 43)
    (webhook,) = sandbox.webhooks.all()
    assert registered == RegisteredWebhook(webhook["id"], API_USER_RESOURCE_ID)
    assert webhook["webhookUrl"] == webhook["deactivationUrl"] == URL
    assert webhook["isActive"] is True
    assert (webhook["isSubscribedToUpdateEvents"], webhook["isSubscribedToDeleteEvents"]) == (
        True,
        True,
    )
    assert webhook["isSubscribedToCreateEvents"] is False
    fields = {
        f["fieldID"]: (f["isSubscribedField"], f["isDisplayAlwaysField"])
        for f in sandbox.webhooks.fields_of(webhook["id"])
    }
    assert fields == {1: (True, True), 5: (False, True)}  # status; externalID
    excluded = sandbox.webhooks.excluded_resources_of(webhook["id"])
    assert [e["resourceID"] for e in excluded] == [API_USER_RESOURCE_ID]
    assert [(r.method, r.entity) for r in records if r.entity != "ZoneInformation"] == [
        ("GET", "Resources"),
        ("GET", "TicketWebhookFields"),
        ("POST", "TicketWebhooks"),
        ("POST", "TicketWebhookFields"),
        ("POST", "TicketWebhookFields"),
        ("POST", "TicketWebhookExcludedResources"),
    ]


def test_an_api_user_without_a_resource_registers_without_an_exclusion(
    target: AutotaskRestTarget,  # noqa: F811
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = target.client.query

    def no_resource(entity: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [] if entity == "Resources" else query(entity, *args, **kwargs)

    monkeypatch.setattr(target.client, "query", no_resource)
    registered = target.register_ticket_webhook("n", URL, "secret")
    assert registered.excluded_resource_id is None
    assert sandbox.webhooks.excluded_resources_of(registered.remote_id) == []


def test_without_a_status_field_to_subscribe_nothing_is_registered(
    target: AutotaskRestTarget,  # noqa: F811
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_picklist(entity: str) -> list[dict[str, Any]]:
        return [{"name": "fieldID", "picklistValues": []}]

    monkeypatch.setattr(target.client, "entity_fields", no_picklist)
    with pytest.raises(TargetRejected, match="no status or externalid field"):
        target.register_ticket_webhook("n", URL, "secret")
    assert sandbox.webhooks.all() == []
