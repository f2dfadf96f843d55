"""Shared fixtures: a real sandbox over HTTP, a REST client for it, and the database URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.targets.sandbox import (
    ApiUser,
    LimitSettings,
    Sandbox,
    SandboxConfig,
    SandboxServer,
)

FIXTURES = Path(__file__).parent / "fixtures"
SPECS = FIXTURES / "autotask" / "specs"


@pytest.fixture
def api_user() -> ApiUser:
    """The sandbox's API user; the values double as canaries for log-redaction checks."""
    return ApiUser(
        username="alerts-api@sandbox.test",
        secret="canary-secret-7f3a9c",
        integration_code="CANARYTRACKINGID0000000000A",
    )


@pytest.fixture
def limit_settings() -> LimitSettings:
    """Autotask's limits, with no added latency so tests stay fast unless they ask for it."""
    return LimitSettings(latency_tiers=[])


@pytest.fixture
def sandbox(api_user: ApiUser, limit_settings: LimitSettings) -> Sandbox:
    """A fresh in-memory sandbox."""
    return Sandbox(SandboxConfig(user=api_user, limits=limit_settings))


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    """The sandbox served over HTTP on 127.0.0.1 and a free port."""
    with SandboxServer(sandbox) as server:
        yield server


class RestClient:
    """A thin requests wrapper that sends Autotask's auth headers to the sandbox's REST API."""

    def __init__(self, server: SandboxServer, user: ApiUser) -> None:
        self.base = f"{server.url}atservicesrest/v1.0/"
        self.session = requests.Session()
        self.session.headers.update(
            {
                "UserName": user.username,
                "Secret": user.secret,
                "ApiIntegrationCode": user.integration_code,
                "Content-Type": "application/json",
            }
        )

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """Send `method` to base + path with a 10 s timeout."""
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base + path, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def create_ticket(self, **fields: object) -> int:
        """Create a valid ticket (overridable fields) and return its id."""
        body = {"companyID": 29683414, "title": "Disk full on srv01", "status": 1, "priority": 2}
        body.update(fields)
        response = self.post("Tickets", json=body)
        assert response.status_code == 200, response.text
        return int(response.json()["itemId"])


@pytest.fixture
def rest(sandbox_server: SandboxServer, api_user: ApiUser) -> RestClient:
    """An authenticated REST client for the running sandbox."""
    return RestClient(sandbox_server, api_user)


DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL test database, or skip saying why.

    CONNECTOR_TEST_POSTGRES_URL names it (.ci/run sets it); without it the machine's usual server
    on 127.0.0.1:5432 is tried.
    """
    import sqlalchemy as sa

    url = os.environ.get("CONNECTOR_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable at {engine.url!r}: {e.orig}")
    finally:
        engine.dispose()
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly which PostgreSQL tests did not run, so a green run cannot hide them."""
    skipped = terminalreporter.stats.get("skipped", [])
    missing = [
        report.nodeid for report in skipped if "PostgreSQL" in str(getattr(report, "longrepr", ""))
    ]
    if missing:
        terminalreporter.section("PostgreSQL tests NOT run", sep="!", yellow=True)
        terminalreporter.line("No PostgreSQL server was reachable; these tests did not run:")
        for nodeid in missing:
            terminalreporter.line(f"  {nodeid}")
