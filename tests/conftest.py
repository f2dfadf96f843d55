"""Shared fixtures: a real sandbox over HTTP, a REST client for it, and the database URLs."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from adapters.sandbox import (
    ApiUser,
    LimitSettings,
    Sandbox,
    SandboxConfig,
    SandboxServer,
)
from tests import canaries, canary_plugin

FIXTURES = Path(__file__).parent / "fixtures"
SPECS = FIXTURES / "autotask" / "specs"


def pytest_configure(config: pytest.Config) -> None:
    """Run the canary check (tests/canary_plugin.py) on every test."""
    if not config.pluginmanager.is_registered(canary_plugin):
        config.pluginmanager.register(canary_plugin, "canaries")


def sandbox_user() -> ApiUser:
    """The sandbox's API user, with canary secrets (tests/canaries.py)."""
    return ApiUser(
        username=canaries.AUTOTASK_USERNAME,
        secret=canaries.AUTOTASK_SECRET,
        integration_code=canaries.AUTOTASK_INTEGRATION_CODE,
    )


@pytest.fixture
def api_user() -> ApiUser:
    """The sandbox's API user (sandbox_user)."""
    return sandbox_user()


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
#: .ci/run sets it: a test whose server or program is missing fails instead of skipping.
IN_CI = bool(os.environ.get("CONNECTOR_CI"))


def cannot_run(reason: str, *, required: bool) -> NoReturn:
    """Fail when this run must not leave the test out, else skip; skips are listed at the end."""
    if required:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL test database; fail if the one named does not answer, else skip.

    CONNECTOR_TEST_POSTGRES_URL names it (.ci/run sets it), and then the PostgreSQL tests must
    run; without it the machine's usual server on 127.0.0.1:5432 is tried, and skipped if absent.
    """
    import sqlalchemy as sa

    named = os.environ.get("CONNECTOR_TEST_POSTGRES_URL")
    url = named or DEFAULT_POSTGRES_URL
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as e:
        if named:
            reason = f"CONNECTOR_TEST_POSTGRES_URL is set but PostgreSQL at {engine.url!r}"
        else:
            reason = f"no CONNECTOR_TEST_POSTGRES_URL, and PostgreSQL at {engine.url!r}"
        error = " ".join(str(e.orig).split())  # psycopg's message spans lines
        cannot_run(f"{reason} does not answer: {error}", required=bool(named or IN_CI))
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest schema, once per test process, to copy."""
    from connector.persistence.db import upgrade

    template = tmp_path_factory.mktemp("template") / "connector.sqlite"
    upgrade(f"sqlite:///{template}")
    return template


@functools.cache
def newest_schema_ddl(url: str) -> str:
    """The newest schema as PostgreSQL DDL, stamped with the head revision.

    Built from the models, which tests/integration/test_migrations.py proves the migrations
    build exactly; one statement batch instead of Alembic's run of every migration.
    """
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex, CreateTable

    from connector.persistence.db import head_revision
    from connector.persistence.models import Base

    dialect = sa.create_engine(url).dialect
    statements = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    statements.append(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
        " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    head = head_revision()  # our own migrations' revision, not input
    statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{head}')")  # noqa: S608
    return ";\n".join(statements)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the newest schema with no rows: a SQLite file, or a throwaway schema in the
    PostgreSQL test database. A test marked `empty_database` gets one with no tables at all."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        database = tmp_path / "connector.sqlite"
        if not empty:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
        yield f"sqlite:///{database}"
        if database.exists():
            canary_plugin.scan_sqlite(str(database))
        return
    with throwaway_schema(request.getfixturevalue("postgres_url"), empty=empty) as url:
        yield url


@contextlib.contextmanager
def throwaway_schema(base_url: str, *, empty: bool = False) -> Iterator[str]:
    """A new schema in the PostgreSQL database at `base_url` (at the newest schema unless
    `empty`), as a URL that uses it; dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        if not empty:
            connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
            connection.exec_driver_sql(newest_schema_ddl(base_url))
    url = sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
        with admin.begin() as connection:
            tables = None if empty else canary_plugin.model_columns()
            canary_plugin.scan_postgres_schema(connection, schema, tables)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


HOOK_TOKEN = canaries.HOOK_TOKEN
API_TOKEN = canaries.API_TOKEN
#: A generic webhook's alert, as the web tests post it.
GENERIC_ALERT: dict[str, Any] = {
    "id": "disk-srv01",
    "status": "active",
    "severity": "error",
    "title": "Disk full on srv01",
    "host": "srv01",
    "occurred_at": "2026-11-22T10:00:05Z",
}


@pytest.fixture
def secret_key() -> str:
    """A Fernet key for stored secrets (a canary)."""
    return canaries.SECRET_KEY


@pytest.fixture
def api_flavour() -> str:
    """The Autotask API the connector talks (override or parametrize: rest or soap)."""
    return "rest"


@pytest.fixture
def integration_config(
    sandbox_server: SandboxServer, api_user: ApiUser, api_flavour: str
) -> dict[str, object]:
    """The INTEGRATION setting of a connector wired to the running sandbox."""
    return integration_for_tests(sandbox_server, api_user, api_flavour)


def integration_for_tests(
    sandbox_server: SandboxServer, api_user: ApiUser, api_flavour: str = "rest"
) -> dict[str, object]:
    """The integration_config fixture's setting, for any sandbox server (a module's own too)."""
    zone_lookup = {"rest": sandbox_server.rest_url, "soap": sandbox_server.soap_url}
    return {
        "name": "default",
        "api_flavour": api_flavour,
        "zone_lookup_url": zone_lookup[api_flavour],
        "username": api_user.username,
        "secret": api_user.secret,
        "integration_code": api_user.integration_code,
        "allowed_zone_hosts": ["127.0.0.1"],
        "default_company_id": 29683414,
        "queue_id": 29682833,
        "tenants": {"fabrikam": 29683415, "northwind": 29683416, "switched-off": False},
        "repeat_note_minutes": 60,
    }


@pytest.fixture
def connector_settings(
    request: pytest.FixtureRequest,
    database_url: str,
    secret_key: str,
    integration_config: dict[str, object],
) -> dict[str, object]:
    """Settings of a connector on the test database, talking to the sandbox, fast retries; a
    test adds its own through indirect parametrization ({"SETTING": value})."""
    extra = getattr(request, "param", {})
    return {**settings_for_tests(database_url, secret_key, integration_config), **extra}


def settings_for_tests(
    database_url: str, secret_key: str, integration_config: dict[str, object]
) -> dict[str, object]:
    """The connector_settings fixture's settings, on any database (a test's own server too)."""
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEYS": [secret_key],
        "HOOK_TOKEN": HOOK_TOKEN,
        "API_TOKEN": API_TOKEN,
        "INTEGRATION": integration_config,
        "WORKER_ENABLED": False,
        "WORKER_POLL_SECONDS": 0.05,
        "WORKER_LEASE_SECONDS": 30,
        "RETRY_DELAYS": [0.05, 0.1, 0.2],
        "AUTOTASK_READ_TIMEOUT": 5.0,
        # Tests push hours' worth of calls through in minutes (the sandbox allows 10,000 too),
        # and an outage test should not sit out a 30 s breaker cooldown.
        "API_HOURLY_CEILING": 10_000,
        "BREAKER_COOLDOWN_SECONDS": 2.0,
    }


@pytest.fixture
def connector_app(connector_settings: dict[str, object]) -> Iterator[Flask]:
    """The connector app, migrated and bootstrapped (integration, hook and API tokens)."""
    from connector import create_app
    from connector.cli import prepare_database

    app = create_app(connector_settings)
    try:
        prepare_database(app.extensions["connector"])
        yield app
    finally:  # a failed setup must not leave its connections to the next test
        app.extensions["connector"].dispose()


@pytest.fixture
def client(connector_app: Flask) -> FlaskClient:
    """A test client for the connector app."""
    return connector_app.test_client()


def _not_run(stats: dict[str, list[Any]]) -> dict[str, list[str]]:
    """The skipped tests' node ids, by the reason they give."""
    by_reason: dict[str, list[str]] = {}
    for report in stats.get("skipped", []):
        longrepr = report.longrepr
        reason = str(longrepr[2] if isinstance(longrepr, tuple | list) else longrepr)
        by_reason.setdefault(reason.removeprefix("Skipped: "), []).append(report.nodeid)
    return by_reason


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List which tests did not run and why, so a green run cannot hide them."""
    by_reason = _not_run(terminalreporter.stats)
    if not by_reason:
        return
    count = sum(len(nodeids) for nodeids in by_reason.values())
    terminalreporter.section(f"{count} tests NOT run", sep="!", yellow=True)
    for reason, nodeids in sorted(by_reason.items()):
        terminalreporter.line(f"{len(nodeids)} not run: {reason}", yellow=True)
        for nodeid in sorted(nodeids):
            terminalreporter.line(f"  {nodeid}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Repeat how many tests did not run, and why, as the very last line (after pytest's count)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    by_reason = _not_run(reporter.stats)
    if by_reason:
        count = sum(len(nodeids) for nodeids in by_reason.values())
        reasons = "; ".join(sorted(by_reason))
        reporter.write_line(f"NOT RUN: {count} tests (listed above): {reasons}", yellow=True)


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error envelope of `response`, which must have `status`, a message and a request id."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == status
    assert error["message"]
    assert len(error["request_id"]) == 32
    return dict(error)


def default_integration_id(app: Flask) -> int:
    """The id of the integration the test settings configure ("default")."""
    from sqlalchemy import select

    from connector.persistence.models import Integration

    with app.extensions["connector"].sessions() as session:
        found = session.scalar(select(Integration.id).where(Integration.name == "default"))
    assert found is not None
    return int(found)
