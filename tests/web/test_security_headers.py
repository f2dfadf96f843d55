"""Headers on every answer (issue 15): no sniffing, no referrer, nothing kept by a cache."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_TOKEN, HOOK_TOKEN

ALERT = {"id": "hdr-1", "status": "active", "severity": "critical", "title": "Headers"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/healthz", {}, 200),
        ("POST", "/hooks/generic", {"Authorization": f"Bearer {HOOK_TOKEN}"}, 202),
        ("POST", "/hooks/generic", {"Authorization": "Bearer wrong-token-0123456789"}, 401),
        ("POST", "/hooks/nagios", {}, 401),
        ("GET", "/api/v1/alerts", {"Authorization": f"Bearer {API_TOKEN}"}, 200),
        ("GET", "/api/v1/alerts", {}, 401),
        ("GET", "/no/such/page", {}, 404),
    ],
)
def test_every_answer_carries_the_security_headers(
    client: FlaskClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    answer = client.open(path, method=method, headers=headers, json=ALERT)
    assert answer.status_code == status
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"


def test_the_admin_pages_keep_their_stricter_headers(client: FlaskClient) -> None:
    answer = client.get("/admin/login")
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
