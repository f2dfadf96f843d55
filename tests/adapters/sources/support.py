"""Helpers shared by the source adapter tests: fixtures by name, posting, reading alerts back."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from connector.domain import IncomingAlert
from tests.conftest import API_TOKEN, FIXTURES, HOOK_TOKEN

SOURCES_DIR = FIXTURES / "sources"

#: Text that must arrive literally: markup, template syntax, SQL, JSON and XML breakers.
HOSTILE = (
    "<script>alert(1)</script> {{7*7}} {% raw %} ##TITLE## ${jndi:ldap://x} '; DROP TABLE alert;--"
    ' "quoted" \\ back\\slash ]]> &amp; \u202e RTL \U0001f525'
)


def fixture(source: str, name: str) -> Any:
    """A fixture payload, decoded."""
    return json.loads((SOURCES_DIR / source / name).read_text(encoding="utf-8"))


def fixture_names(source: str) -> list[str]:
    """Every JSON fixture of a source, by file name."""
    return sorted(path.name for path in (SOURCES_DIR / source).glob("*.json"))


def post(client: FlaskClient, source: str, body: Any) -> Any:
    """POST `body` as JSON to /hooks/<source> with the hook token."""
    return client.post(
        f"/hooks/{source}", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )


def post_raw(client: FlaskClient, source: str, body: bytes) -> Any:
    """POST raw bytes as application/json to /hooks/<source> with the hook token."""
    return client.post(
        f"/hooks/{source}",
        data=body,
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"},
    )


def alert_record(client: FlaskClient, alert_id: int) -> dict[str, Any]:
    """The alert as the JSON API shows it (with its events)."""
    response = client.get(
        f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def alerts_listed(client: FlaskClient) -> list[dict[str, Any]]:
    """Every alert the JSON API lists."""
    response = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["alerts"])


def iso(moment: Any) -> str | None:
    """How the API writes a timestamp."""
    return moment.isoformat() if moment is not None else None


def assert_recorded(record: dict[str, Any], alert: IncomingAlert) -> None:
    """The stored alert row says what the adapter normalized (the first event's own fields)."""
    assert {
        "fingerprint": record["fingerprint"],
        "source": record["source"],
        "status": record["status"],
        "severity": record["severity"],
        "title": record["title"],
        "message": record["message"],
        "host": record["host"],
        "tenant": record["tenant"],
        "monitor": record["monitor"],
        "properties": record["properties"],
        "started_at": record["started_at"],
    } == {
        "fingerprint": alert.fingerprint,
        "source": alert.source,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "message": alert.message,
        "host": alert.host,
        "tenant": alert.tenant,
        "monitor": alert.monitor,
        "properties": dict(alert.properties),
        "started_at": iso(alert.started_at),
    }
    assert record["events"][-1]["occurred_at"] == iso(alert.occurred_at)
    assert record["events"][-1]["status"] == alert.status.value


def precise_400(response: Any) -> dict[str, Any]:
    """The 400 envelope: a message, and `details` naming fields (when any are named)."""
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == 400
    assert error["message"]
    return dict(error)
