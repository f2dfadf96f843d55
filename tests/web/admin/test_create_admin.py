"""The first admin: `connector create-admin`, or CONNECTOR_ADMIN_USERNAME/PASSWORD at start."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from connector.cli import main
from connector.config import load_settings
from connector.errors import ConfigError
from connector.persistence.db import make_engine, make_session_factory, upgrade
from connector.persistence.models import AdminUser
from tests import canaries
from tests.web.admin.conftest import PASSWORD, USERNAME, make_app, sign_in


def admins(database_url: str) -> list[str]:
    """The usernames of the admins in the database."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(AdminUser.username).order_by(AdminUser.id)))
    finally:
        engine.dispose()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner of the `connector` command on the test database."""
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
    return CliRunner()


def test_create_admin_asks_the_password_twice_hidden(cli: CliRunner, database_url: str) -> None:
    result = cli.invoke(main, ["create-admin"], input=f"{USERNAME}\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert f"admin '{USERNAME}' created" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert "Repeat for confirmation" in result.output
    assert admins(database_url) == [USERNAME]


def test_create_admin_reads_the_password_from_stdin(cli: CliRunner, database_url: str) -> None:
    result = cli.invoke(
        main, ["create-admin", "--username", "Ops", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert admins(database_url) == ["ops"]
    app = make_app({"DATABASE_URL": database_url, "SECRET_KEYS": [_key()]})
    try:
        assert sign_in(app.test_client(), "ops", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    finally:
        app.extensions["connector"].dispose()


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (["--username", "ops"], "short-pw-11\n", "too short: use at least 12 characters"),
        (["--username", "a b"], PASSWORD + "\n", "the username must be 1 to 100 letters"),
        (["--username", ""], PASSWORD + "\n", "the username must be"),
    ],
)
def test_create_admin_refuses_what_the_rules_refuse(
    cli: CliRunner, database_url: str, arguments: list[str], stdin: str, message: str
) -> None:
    result = cli.invoke(main, ["create-admin", *arguments, "--password-stdin"], input=stdin)
    assert result.exit_code == 1
    assert message in result.output
    assert stdin.strip() not in result.output
    assert admins(database_url) == []


def test_create_admin_refuses_a_username_that_is_taken(cli: CliRunner, database_url: str) -> None:
    first = cli.invoke(
        main, ["create-admin", "--username", "ops", "--password-stdin"], input=PASSWORD
    )
    again = cli.invoke(
        main, ["create-admin", "--username", "OPS", "--password-stdin"], input=PASSWORD + "2"
    )
    assert first.exit_code == 0, first.output
    assert again.exit_code == 1
    assert "an admin named 'ops' exists already" in again.output
    assert admins(database_url) == ["ops"]


def test_create_admin_stops_when_the_two_passwords_differ(
    cli: CliRunner, database_url: str
) -> None:
    upgrade(database_url)
    result = cli.invoke(
        main, ["create-admin", "--username", "ops"], input=f"{PASSWORD}\n{PASSWORD}x\n"
    )
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert admins(database_url) == []


def _key() -> str:
    return canaries.SECRET_KEY


# -- from the environment, for unattended starts --------------------------------------------------


def test_the_configured_admin_is_made_at_start_when_none_exists(
    admin_settings: dict[str, object], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {**admin_settings, "ADMIN_USERNAME": USERNAME, "ADMIN_PASSWORD": PASSWORD}
    app = make_app(settings)
    try:
        assert admins(database_url) == [USERNAME]
        assert sign_in(app.test_client()).status_code == 303  # type: ignore[attr-defined]
    finally:
        app.extensions["connector"].dispose()
    assert "admin.created" in caplog.text
    assert all(PASSWORD not in f"{r.getMessage()} {vars(r)}" for r in caplog.records)


def test_the_configured_admin_is_ignored_once_an_admin_exists(
    admin_settings: dict[str, object], database_url: str
) -> None:
    first = {**admin_settings, "ADMIN_USERNAME": "first", "ADMIN_PASSWORD": PASSWORD}
    make_app(first).extensions["connector"].dispose()
    second = {**admin_settings, "ADMIN_USERNAME": "second", "ADMIN_PASSWORD": PASSWORD + "2"}
    app: Flask = make_app(second)
    try:
        assert admins(database_url) == ["first"]
        response = sign_in(app.test_client(), "second", PASSWORD + "2")
        assert "Wrong username or password." in response.get_data(as_text=True)  # type: ignore[attr-defined]
    finally:
        app.extensions["connector"].dispose()


def test_a_configured_admin_password_that_is_too_short_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("CONNECTOR_ADMIN_PASSWORD", "tooshort-11")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "ADMIN_PASSWORD is too short: use at least 12 characters" in str(refused.value)
    assert "tooshort-11" not in str(refused.value)


@pytest.mark.parametrize("missing", ["ADMIN_USERNAME", "ADMIN_PASSWORD"])
def test_a_configured_admin_needs_both_username_and_password(missing: str) -> None:
    settings = {"ADMIN_USERNAME": "ops", "ADMIN_PASSWORD": PASSWORD, missing: ""}
    with pytest.raises(ConfigError, match="ADMIN_USERNAME and ADMIN_PASSWORD go together"):
        load_settings(settings)


def test_connector_config_hides_the_admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("CONNECTOR_ADMIN_PASSWORD", PASSWORD)
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert "ADMIN_PASSWORD = <secret>" in result.output
    assert PASSWORD not in result.output
