"""An app with the admin form on the test database: cheap argon2, a clock the test moves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from flask import Flask
from flask.testing import FlaskClient

from connector.admins import passwords
from connector.admins.accounts import create_admin
from connector.config import DEFAULTS
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN

USERNAME = "jane@example.net"
#: Also the canary the log checks look for.
PASSWORD = canaries.ADMIN_PASSWORD


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move on by `seconds`."""
        self.now += timedelta(seconds=seconds)


class CountingHasher(PasswordHasher):
    """argon2id with the cheapest parameters (the defaults take ~0.3 s per hash on CI), which
    remembers the passwords it verified."""

    verified: list[str]

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(str(password))
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    """The hasher of this test (cheap, counting)."""
    cheap = CountingHasher.from_parameters(CHEAPEST)
    cheap.verified = []
    monkeypatch.setattr(passwords, "HASHER", cheap)
    return cheap


@pytest.fixture(autouse=True)
def no_admin_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's CONNECTOR_* variables must not make admins here."""
    for key in DEFAULTS:
        if key.startswith("ADMIN_") or key == "SECRET_KEYS":
            monkeypatch.delenv(f"CONNECTOR_{key}", raising=False)


@pytest.fixture
def admin_settings(
    request: pytest.FixtureRequest, database_url: str, secret_key: str
) -> dict[str, object]:
    """Settings of a connector on the test database: with no integration, or, in a module
    marked `with_integration`, with the sandbox's seeded and the preset hook and API tokens."""
    settings: dict[str, object] = {
        "DATABASE_URL": database_url,
        "SECRET_KEYS": [secret_key],
        "WORKER_ENABLED": False,
    }
    if request.node.get_closest_marker("with_integration"):
        settings |= {
            "HOOK_TOKEN": HOOK_TOKEN,
            "API_TOKEN": API_TOKEN,
            "INTEGRATION": request.getfixturevalue("integration_config"),
        }
    return settings


def make_app(settings: dict[str, object]) -> Flask:
    """The app for `settings`, migrated and bootstrapped."""
    from connector import create_app
    from connector.cli import prepare_database

    app = create_app(settings)
    prepare_database(app.extensions["connector"])
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def admin_app(admin_settings: dict[str, object], clock: FakeClock) -> Iterator[Flask]:
    """The app, with one admin (USERNAME, PASSWORD) and the fake clock."""
    app = make_app(admin_settings)
    app.extensions["connector_admin"].clock = clock
    try:
        with app.extensions["connector"].transaction() as session:
            create_admin(session, USERNAME, PASSWORD, how="test")
        yield app
    finally:
        app.extensions["connector"].dispose()


@pytest.fixture
def browser(admin_app: Flask) -> FlaskClient:
    """A client that keeps cookies, as a browser does."""
    return admin_app.test_client()


def csrf_of(page: str) -> str:
    """The CSRF token of the (first) form on `page`."""
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'type="hidden" name="csrf_token" value="([^"]+)"', page
    )
    assert found, page
    return found.group(1)


def sign_in(
    client: FlaskClient,
    username: str = USERNAME,
    password: str = PASSWORD,
    *,
    path: str = "/admin/login",
    remote_addr: str = "127.0.0.1",
) -> object:
    """Fill in and send the sign-in form as a browser does; the answer."""
    page = client.get(path, environ_base={"REMOTE_ADDR": remote_addr}).get_data(as_text=True)
    # Over https Flask-WTF also wants the Referer of a page of this site (as browsers send).
    referer = path if path.startswith("https://") else f"http://localhost{path}"
    return client.post(
        path,
        data={"csrf_token": csrf_of(page), "username": username, "password": password},
        environ_base={"REMOTE_ADDR": remote_addr},
        headers={"Referer": referer},
    )
