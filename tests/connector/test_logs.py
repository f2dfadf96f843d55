"""Logging: one handler, the event's fields and the request id on every line, text or JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.config import load_settings
from connector.errors import ConfigError
from connector.logs import configure_logging, request_id
from tests.conftest import API_TOKEN

logger = logging.getLogger("connector.test_logs")


@pytest.fixture
def logging_to_stderr() -> Iterator[None]:
    """Whatever configure_logging installs is taken off the root logger after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.usefixtures("logging_to_stderr")
def test_json_lines_carry_the_event_fields_and_the_request_id(
    connector_app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    with connector_app.test_request_context("/hooks/generic"):
        logger.warning("delivery.dead_letter", extra={"delivery_id": 7, "error": 'a "quote"'})
        expected = request_id()
    (line,) = lines(capsys)
    entry = json.loads(line)
    assert entry["message"] == "delivery.dead_letter"
    assert entry["level"] == "WARNING" and entry["logger"] == "connector.test_logs"
    assert (entry["delivery_id"], entry["error"]) == (7, 'a "quote"')
    assert entry["request_id"] == expected and len(expected) == 32


@pytest.mark.usefixtures("logging_to_stderr")
def test_text_lines_show_fields_as_key_value_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging({"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"})
    logger.info("not written: below the level")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("worker.unexpected_error", extra={"delivery_id": 3})
    text = capsys.readouterr().err
    assert "below the level" not in text
    first = text.splitlines()[0]
    assert first.endswith("ERROR connector.test_logs worker.unexpected_error delivery_id=3")
    assert "RuntimeError: boom" in text
    assert "request_id" not in text  # outside a request there is none


@pytest.mark.usefixtures("logging_to_stderr")
def test_configuring_again_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging({"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"})
    configure_logging({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    logger.warning("once")
    (line,) = lines(capsys)
    assert json.loads(line)["message"] == "once"


def test_an_error_answer_names_the_request_id_its_header_and_log_lines_carry(
    client: FlaskClient,
) -> None:
    response = client.get("/api/v1/alerts/424242", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 404
    body: dict[str, Any] = response.get_json()
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    assert len(response.headers["X-Request-Id"]) == 32
    again = client.get("/healthz")
    assert again.headers["X-Request-Id"] not in ("", response.headers["X-Request-Id"])


@pytest.mark.parametrize(
    ("name", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "chatty")], ids=["format", "level"]
)
def test_an_unknown_log_format_or_level_is_refused_at_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_an_unexpected_error_is_a_500_whose_request_id_is_on_its_log_line(
    connector_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The 500's envelope promises the request id is in the logs (issue 15): it is."""

    def boom() -> str:
        raise RuntimeError("a bug, not the caller's fault")

    connector_app.add_url_rule("/boom-for-the-test", "boom_for_the_test", boom)
    caplog.set_level(logging.ERROR)

    response = connector_app.test_client().get("/boom-for-the-test")

    assert response.status_code == 500
    error = response.get_json()["error"]
    assert error["message"] == "internal error; the request id is in the logs"
    assert "a bug" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.getMessage() == "connector.unexpected_error"]
    assert (
        getattr(record, "request_id", "") == error["request_id"] == response.headers["X-Request-Id"]
    )
