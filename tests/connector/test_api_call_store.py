"""store_api_calls keeps each call's request and answer (api_call.request/.response), on SQLite
and PostgreSQL, and the integration log's query reads them back with the call's delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select

from connector.domain import ApiCallRecord
from connector.persistence.models import ApiCall, Delivery, Integration
from connector.pipeline.activity import store_api_calls
from connector.pipeline.activity_log import CallFilter, recent_calls
from connector.services import Services
from tests.connector.test_activity_report import add_delivery

REQUEST = {
    "url": "https://webservices3.autotask.net/atservicesrest/v1.0/Tickets",
    "headers": {"Secret": "<redacted>", "Content-Type": "application/json"},
    "body": '{"title": "Disk full on srv01 — /var ✓", "companyID": 7}',
}
RESPONSE = {"status": 200, "headers": {"Content-Type": "application/json"}, "body": '{"itemId": 5}'}


def test_request_and_answer_are_stored_and_read_back(connector_app: Flask) -> None:
    services: Services = connector_app.extensions["connector"]
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    with services.transaction() as session:
        integration_id = session.scalars(select(Integration.id)).one()
        alert_id, delivery_id = add_delivery(session, integration_id, "disk", 5)
        session.get_one(Delivery, delivery_id).attempts = 3
        store_api_calls(
            session,
            [
                ApiCallRecord(at, "POST", "Tickets", 200, 48.5, 1, None, REQUEST, RESPONSE),
                ApiCallRecord(at, "GET", "Tickets", None, 30000.0, error="no answer"),
            ],
            integration_id,
            delivery_id,
        )
    with services.transaction() as session:
        stored = session.scalars(select(ApiCall).order_by(ApiCall.id)).all()
        assert [(call.request, call.response) for call in stored] == [
            (REQUEST, RESPONSE),
            (None, None),
        ]
        logged = recent_calls(session, CallFilter(alert_id=alert_id))
    assert [call.row.method for call in logged] == ["GET", "POST"]  # newest (highest id) first
    assert logged[1].request == REQUEST and logged[1].response == RESPONSE
    assert logged[0].request is None and logged[0].response is None
    assert {call.delivery_attempts for call in logged} == {3}
    assert {call.row.alert_id for call in logged} == {alert_id}


def test_recent_calls_page_below_an_id(connector_app: Flask) -> None:
    services: Services = connector_app.extensions["connector"]
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    with services.transaction() as session:
        integration_id = session.scalars(select(Integration.id)).one()
        store_api_calls(
            session,
            [ApiCallRecord(at, "GET", f"E{n}", 200, 1.0) for n in range(5)],
            integration_id,
        )
    with services.transaction() as session:
        first = recent_calls(session, CallFilter(), limit=2)
        rest = recent_calls(session, CallFilter(), before_id=first[-1].row.id, limit=10)
    assert [call.row.entity for call in first] == ["E4", "E3"]
    assert [call.row.entity for call in rest] == ["E2", "E1", "E0"]
    assert rest[0].delivery_attempts is None
