"""Schemathesis over /api/v1 (reliability-security S11): every operation of the served OpenAPI
document, called in process with generated parameters and bodies, never answers a 5xx the
document does not promise, and every answer matches the document (status and body).

The app is the real one on a fresh SQLite database, with the integration the web tests use,
wired to the in-process Autotask sandbox on 127.0.0.1; whatever else a call would reach (a zone
URL or allowed host an edit set) is refused before it leaves the machine.

SCHEMATHESIS_MAX_EXAMPLES sets the examples per operation: small by default so that `make test`
stays fast; S11 asks 1,000 per operation for a release, e.g.
`SCHEMATHESIS_MAX_EXAMPLES=1000 make pytest PYTEST_ARGS=tests/web/test_openapi_schemathesis.py`,
and again with SCHEMATHESIS_DATABASE=postgresql (CONNECTOR_TEST_POSTGRES_URL names the server).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator

import pytest
import responses
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from adapters.sandbox import LimitSettings, Sandbox, SandboxConfig, SandboxServer
from connector.persistence.models import Delivery
from connector.web.api.openapi import openapi_document
from connector.wiring import make_worker
from tests.conftest import (
    API_TOKEN,
    GENERIC_ALERT,
    HOOK_TOKEN,
    integration_for_tests,
    sandbox_user,
    settings_for_tests,
    throwaway_schema,
)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
#: Only the sandbox (and any other server a test started here) is reached over HTTP.
LOOPBACK = re.compile(r"^https?://127\.0\.0\.1[:/]")


@pytest.fixture(scope="module")
def api_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app's database at the newest schema: a copy of the SQLite template, or with
    SCHEMATHESIS_DATABASE=postgresql a throwaway schema in the PostgreSQL test database (whose
    text, unlike SQLite's, holds no NUL: where such bugs show)."""
    if os.environ.get("SCHEMATHESIS_DATABASE", "sqlite") != "postgresql":
        database = tmp_path_factory.mktemp("schemathesis") / "connector.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
        yield f"sqlite:///{database}"
        return
    with throwaway_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture(scope="module")
def api_app(api_database: str) -> Iterator[Flask]:
    """One app for every operation, so what one call creates the next can find: bootstrapped
    as connector_app is, its integration on a sandbox of its own."""
    from connector import create_app
    from connector.cli import prepare_database
    from connector.secrets import new_key

    user = sandbox_user()
    sandbox = Sandbox(SandboxConfig(user=user, limits=LimitSettings(latency_tiers=[])))
    with SandboxServer(sandbox) as server:
        integration = integration_for_tests(server, user)
        app = create_app(settings_for_tests(api_database, new_key(), integration))
        try:
            prepare_database(app.extensions["connector"])
            seed(app)
            yield app
        finally:
            app.extensions["connector"].dispose()


def seed(app: Flask) -> None:
    """Rows for the reads to find and the answers to show: alerts with tickets made in the
    sandbox (and so logged calls), an unmapped tenant, dead letters, refused webhooks."""
    client = app.test_client()
    hook = {"Authorization": f"Bearer {HOOK_TOKEN}"}
    for number, tenant in enumerate(["fabrikam", "northwind", "not-mapped", ""]):
        alert = dict(GENERIC_ALERT, id=f"seed-{number}", tenant=tenant)
        assert client.post("/hooks/generic", json=alert, headers=hook).status_code == 202
    worker = make_worker(app.extensions["connector"])
    deadline = time.monotonic() + 30
    while worker.run_once() and time.monotonic() < deadline:
        pass
    for number in range(2):
        alert = dict(GENERIC_ALERT, id=f"dead-{number}")
        assert client.post("/hooks/generic", json=alert, headers=hook).status_code == 202
    with app.extensions["connector"].transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.state == "pending")
            .values(state="dead", outcome="failed", last_error="HTTP 500")
        )
    for body in ({"status": "bogus"}, [1, 2]):
        assert client.post("/hooks/generic", json=body, headers=hook).status_code == 400


@pytest.fixture
def loopback_only() -> Iterator[responses.RequestsMock]:
    """Every HTTP request through `requests` to anything but 127.0.0.1 fails as unreachable."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(LOOPBACK)
        yield mock


#: A 502 (the ticket system or mail server failed) and a 503 (throttled, or the database is
#: down) are answers the document promises, not the service failing; status_code_conformance
#: still fails either where an operation does not document it. A 500 is never expected.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", 502, 503]}}}
)
#: The document (tests/web/test_openapi.py checks that the app serves exactly this one).
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    # loopback_only is meant to stay up for all of an operation's examples; a call that reads
    # or writes the database is slow by Hypothesis's measure.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, api_app: Flask, loopback_only: responses.RequestsMock
) -> None:
    case.call_and_validate(
        app=api_app, headers={"Authorization": f"Bearer {API_TOKEN}"}, checks=CHECKS
    )


def test_no_call_leaves_the_machine(loopback_only: responses.RequestsMock) -> None:
    import requests

    with pytest.raises(requests.ConnectionError):
        requests.get("https://webservices1.autotask.net/atservicesrest/v1.0/Version", timeout=5)
