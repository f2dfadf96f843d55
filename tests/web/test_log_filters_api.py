"""The JSON API's filters the admin pages share: alerts by tenant or host text, calls by outcome
(`ok`, `failed`) and by ticket number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.persistence.models import Alert, Integration, TicketLink
from tests.conftest import API_TOKEN
from tests.connector.test_activity_report import add_call, add_delivery


def get(client: FlaskClient, path: str) -> Any:
    answer = client.get(f"/api/v1/{path}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def test_alerts_search_their_tenant_and_host_and_calls_filter_by_outcome_and_ticket_number(
    connector_app: Flask, client: FlaskClient
) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    with connector_app.extensions["connector"].transaction() as session:
        integration_id = session.scalars(select(Integration.id)).one()
        alert_a, delivery_a = add_delivery(session, integration_id, "a", 111)
        alert_b, delivery_b = add_delivery(session, integration_id, "b", 222)
        session.get_one(Alert, alert_a).tenant = "Contoso_Ltd"
        session.get_one(Alert, alert_b).host = "CONTOSO-srv"
        session.scalars(
            select(TicketLink).where(TicketLink.ticket_id == 222)
        ).one().ticket_number = "T20261203.0002"
        ok = add_call(session, integration_id, base, delivery_id=delivery_a)
        refused = add_call(
            session, integration_id, base, status=200, delivery_id=delivery_b, error="unreadable"
        )
        missing = add_call(session, integration_id, base, status=404, delivery_id=delivery_b)

    def alerts(query: str) -> list[int]:
        return sorted(item["id"] for item in get(client, f"alerts?{query}")["alerts"])

    def calls(query: str) -> list[int]:
        return sorted(item["id"] for item in get(client, f"api-calls?{query}")["api_calls"])

    assert alerts("search=contoso") == sorted([alert_a, alert_b])
    assert alerts("search=o_l") == [alert_a]  # "_" is text, not a wildcard
    assert alerts("search=srv") == [alert_b]
    assert calls("status=ok") == [ok]
    assert calls("status=failed") == sorted([refused, missing])
    assert calls("ticket_number=T20261203.0002") == sorted([refused, missing])
    assert calls("ticket_number=T0&status=ok") == []
