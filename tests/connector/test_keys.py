"""The keys of the stored secrets: a wrong key stops the start by name; rotation re-encrypts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from connector import create_app
from connector.cli import main, prepare_database
from connector.errors import ConfigError
from connector.integrations.keys import check_keys, rotate_keys
from connector.persistence.models import HookCredential, Integration
from connector.services import Services
from tests import canaries
from tests.conftest import default_integration_id

HMAC_SECRET = canaries.HMAC_SHARED_SECRET
ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def stored(connector_app: Flask) -> dict[str, str]:
    """The seeded integration's secrets and an HMAC webhook secret, as stored in clear form."""
    services: Services = connector_app.extensions["connector"]
    box = services.secret_box()
    with services.transaction() as session:
        session.add(
            HookCredential(
                integration_id=default_integration_id(connector_app),
                scheme="hmac",
                secret_encrypted=box.encrypt(HMAC_SECRET),
            )
        )
    return clear_secrets(services)


def clear_secrets(services: Services) -> dict[str, str]:
    """Every stored secret, decrypted with `services`' keys."""
    box = services.secret_box()
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        credential = session.scalars(
            select(HookCredential).where(HookCredential.scheme == "hmac")
        ).one()
        return {
            "secret": box.decrypt(integration.secret_encrypted),
            "integration_code": box.decrypt(integration.integration_code_encrypted),
            "hmac": box.decrypt(credential.secret_encrypted or ""),
        }


@pytest.fixture
def with_keys(connector_settings: dict[str, Any]) -> Iterator[Any]:
    """Services on the same database with other SECRET_KEYS (closed after the test)."""
    made: list[Services] = []

    def make(keys: list[str]) -> Services:
        services: Services = create_app({**connector_settings, "SECRET_KEYS": keys}).extensions[
            "connector"
        ]
        made.append(services)
        return services

    yield make
    for services in made:
        services.dispose()


def test_the_configured_key_opens_every_stored_secret(
    connector_app: Flask, stored: dict[str, str]
) -> None:
    assert check_keys(connector_app.extensions["connector"]) == 3
    assert stored["hmac"] == HMAC_SECRET


def test_a_wrong_key_stops_the_start_naming_the_setting(
    connector_app: Flask, stored: dict[str, str], with_keys: Any
) -> None:
    """prepare_database (every start of run, serve and db upgrade) refuses a key that opens
    nothing, before it stores anything with it."""
    wrong = with_keys([canaries.WRONG_SECRET_KEY])
    with pytest.raises(ConfigError) as refused:
        prepare_database(wrong)
    message = str(refused.value)
    assert "SECRET_KEYS cannot decrypt 3 of the 3 stored secrets" in message
    assert "integration 1 (secret_encrypted)" in message
    assert "webhook credential" in message


def test_rotation_re_encrypts_everything_with_the_first_key(
    connector_app: Flask, connector_settings: dict[str, Any], stored: dict[str, str], with_keys: Any
) -> None:
    """New key first, old key after it; rotate; then the new key alone opens everything."""
    old = connector_settings["SECRET_KEYS"][0]
    new = canaries.ROTATED_SECRET_KEY
    assert rotate_keys(with_keys([new, old])) == 3
    only_new = with_keys([new])
    assert check_keys(only_new) == 3
    assert clear_secrets(only_new) == stored
    with pytest.raises(ConfigError):
        check_keys(with_keys([old]))


def test_rotation_refuses_to_change_anything_when_a_secret_opens_with_no_key(
    connector_app: Flask, stored: dict[str, str], with_keys: Any
) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEYS cannot decrypt"):
        rotate_keys(with_keys([canaries.WRONG_SECRET_KEY]))
    assert clear_secrets(connector_app.extensions["connector"]) == stored


def test_keys_commands(
    connector_app: Flask,
    connector_settings: dict[str, Any],
    stored: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`connector keys new | check | rotate` through the CLI, settings from the environment."""
    runner = CliRunner()
    fresh = runner.invoke(main, ["keys", "new"])
    assert fresh.exit_code == 0
    new = fresh.output.strip()
    assert len(new) == 44
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", connector_settings["DATABASE_URL"])
    monkeypatch.setenv("CONNECTOR_SECRET_KEYS", f'["{new}"]')
    refused = runner.invoke(main, ["keys", "check"])
    assert refused.exit_code == 1
    assert "SECRET_KEYS cannot decrypt 3 of the 3" in refused.output
    old = connector_settings["SECRET_KEYS"][0]
    monkeypatch.setenv("CONNECTOR_SECRET_KEYS", f'["{new}", "{old}"]')
    rotated = runner.invoke(main, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 3 stored secrets" in rotated.output
    monkeypatch.setenv("CONNECTOR_SECRET_KEYS", f'["{new}"]')
    checked = runner.invoke(main, ["keys", "check"])
    assert checked.exit_code == 0, checked.output
    assert "opens all 3 stored secrets" in checked.output


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["db", "upgrade"]], ids=" ".join)
def test_every_start_with_a_wrong_key_fails_closed_naming_the_setting(
    connector_settings: dict[str, Any], stored: dict[str, str], command: list[str]
) -> None:
    """`connector serve`, `worker` and `db upgrade` stop before serving or delivering anything
    (in their own process: `serve` sets up process-wide metrics)."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "CONNECTOR_DATABASE_URL": connector_settings["DATABASE_URL"],
        "CONNECTOR_SECRET_KEYS": f'["{canaries.WRONG_SECRET_KEY}"]',
        "CONNECTOR_HOST": "127.0.0.1",
        "CONNECTOR_PORT": "0",
    }

    refused = subprocess.run(
        [sys.executable, "-c", "from connector.cli import main; main()", *command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,  # a start that went on serving would be stopped here, and fail
        check=False,
    )

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "configuration error: SECRET_KEYS cannot decrypt 3 of the 3 stored secrets" in (
        refused.stderr
    )
    assert "CONNECTOR_SECRET_KEYS" in refused.stderr
    assert "Traceback" not in refused.stderr and "Connector service on" not in refused.stdout


def test_rotation_and_the_start_check_cover_every_encrypted_column() -> None:
    """A column added later holding ciphertext is rotated too, or the old key could not go."""
    from connector.integrations.keys import ENCRYPTED_COLUMNS
    from connector.persistence.models import Base

    encrypted = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if "encrypted" in column.name or "cipher" in column.name
    }
    listed = {f"{column.class_.__tablename__}.{column.key}" for column, _ in ENCRYPTED_COLUMNS}
    assert encrypted == listed
