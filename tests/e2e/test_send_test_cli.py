"""`connector send-test` as a real process against the sandbox: JSON out, exit code on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sandbox import ApiUser, Sandbox
from connector import create_app
from connector.cli import prepare_database
from connector.persistence.models import ApiCall
from connector.pipeline.testdelivery import TEST_TITLE

pytestmark = pytest.mark.e2e
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CONNECTOR = [sys.executable, "-m", "connector"]


@pytest.fixture
def prepared(connector_settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A migrated database holding the sandbox integration; the settings to reach it."""
    app = create_app(connector_settings)
    prepare_database(app.extensions["connector"])
    app.extensions["connector"].dispose()
    yield connector_settings


def send_test(settings: dict[str, Any], cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run `connector send-test ARGS`; return the exit code, the printed JSON and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_DATABASE_URL"] = str(settings["DATABASE_URL"])
    env["CONNECTOR_SECRET_KEYS"] = json.dumps(settings["SECRET_KEYS"])
    result = subprocess.run(
        [*CONNECTOR, "send-test", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def test_help_lists_send_test() -> None:
    result = subprocess.run(
        [*CONNECTOR, "--help"], capture_output=True, text=True, check=True, timeout=30
    )
    assert "  send-test " in result.stdout


@sqlite_only
@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_send_test_makes_and_completes_a_ticket(
    prepared: dict[str, Any], sandbox: Sandbox, api_user: ApiUser, tmp_path: Path
) -> None:
    code, body, stderr = send_test(prepared, tmp_path, "--complete", "--company", "29683416")

    assert code == 0, stderr
    assert body["ok"] is True
    assert body["company_id"] == 29683416
    tickets = {t["id"]: t for t in sandbox.tickets_with_notes()}
    ticket = tickets[body["ticket_id"]]
    assert (ticket["title"], ticket["companyID"], ticket["status"]) == (TEST_TITLE, 29683416, 5)
    assert body["ticket_number"] == ticket["ticketNumber"]
    assert body["completed"]["ticket_status"] == 5
    assert api_user.secret not in json.dumps(body)
    assert api_user.integration_code not in json.dumps(body)
    app = create_app(prepared)
    with app.extensions["connector"].transaction() as session:
        calls = list(session.scalars(select(ApiCall)))
    app.extensions["connector"].dispose()
    assert len(calls) >= 4 and all(c.delivery_id is None for c in calls)


@pytest.mark.autotask_words  # it shows Autotask's words for an inactive company
@sqlite_only
def test_send_test_exits_non_zero_with_the_words_when_autotask_refuses(
    prepared: dict[str, Any], sandbox: Sandbox, tmp_path: Path
) -> None:
    code, body, _ = send_test(prepared, tmp_path, "--company", "99999999")

    assert code == 1
    assert body["ok"] is False
    assert body["error"] == "Autotask has no active company 99999999"
    assert sandbox.tickets_with_notes() == []


@sqlite_only
def test_send_test_of_an_unknown_integration_exits_non_zero(
    prepared: dict[str, Any], tmp_path: Path
) -> None:
    code, body, _ = send_test(prepared, tmp_path, "--integration", "999")

    assert code == 1
    assert body == {"ok": False, "error": "no integration 999"}
