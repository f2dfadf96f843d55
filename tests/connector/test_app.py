"""The app factory, health endpoint and the one JSON error envelope."""

from __future__ import annotations

import pytest
from flask import Flask

from connector import create_app
from connector.errors import ConfigError, PayloadError


@pytest.fixture
def app() -> Flask:
    app = create_app({"TESTING": True})

    @app.post("/_test/payload-error")
    def payload_error() -> str:
        raise PayloadError("field 'status' is required")

    return app


def test_healthz_answers_ok(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_route_uses_the_json_error_envelope(app: Flask) -> None:
    response = app.test_client().get("/no/such/thing")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["status"] == 404
    assert len(error["request_id"]) == 32


def test_connector_errors_keep_their_status_and_message(app: Flask) -> None:
    response = app.test_client().post("/_test/payload-error")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "field 'status' is required"


def test_invalid_settings_fail_at_startup() -> None:
    with pytest.raises(ConfigError, match="PORT"):
        create_app({"PORT": -1})
