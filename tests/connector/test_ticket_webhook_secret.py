"""A ticket webhook's signing secret, sent to the ticket system to register it, is kept nowhere
in clear: not in the recorded API calls (the integration log), not in a log line (issue 15)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from sqlalchemy import select

from connector.domain import REDACTED
from connector.integrations import ticket_webhooks
from connector.persistence.models import ApiCall
from tests import canaries

SECRET = canaries.REGISTERED_TICKET_WEBHOOK_SECRET


def test_the_registered_secret_is_redacted_in_the_recorded_calls(
    connector_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticket_webhooks, "new_webhook_secret", lambda: SECRET)
    services = connector_app.extensions["connector"]

    ticket_webhooks.register_ticket_webhook(services, None, "https://alerts.example.net/")

    with services.sessions() as session:
        calls = session.scalars(select(ApiCall)).all()
    created = [call for call in calls if call.method == "POST" and call.entity == "TicketWebhooks"]
    assert len(created) == 1
    recorded = repr([(call.request, call.response, call.error) for call in calls])
    assert SECRET not in recorded
    assert created[0].request is not None
    assert json.loads(created[0].request["body"])["secretKey"] == REDACTED
