"""The canary check itself (tests/canary_plugin.py): it finds a leaked canary, and only that."""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response, session

from tests import canaries, canary_plugin

pytest_plugins = ["pytester"]

REDACTED = "***"


@pytest.fixture
def found() -> Iterator[list[str]]:
    """The leaks noted during the test; forgotten after it, as these are made on purpose."""
    canary_plugin.forget()
    yield canary_plugin._leaks
    canary_plugin.forget()


def test_every_kind_of_secret_has_a_canary() -> None:
    kinds = {
        canaries.AUTOTASK_SECRET,
        canaries.AUTOTASK_INTEGRATION_CODE,
        canaries.HOOK_TOKEN,
        canaries.API_TOKEN,
        canaries.METRICS_TOKEN,
        canaries.GENERIC_BEARER_TOKEN,
        canaries.BASIC_PASSWORD,
        canaries.HMAC_SECRET,
        canaries.STANDARD_WEBHOOKS_SECRET,
        canaries.TICKET_WEBHOOK_SECRET,
        canaries.ADMIN_PASSWORD,
        canaries.SMTP_PASSWORD,
        canaries.SECRET_KEY,
    }
    assert kinds <= canaries.ALL
    assert canaries.AUTOTASK_USERNAME not in canaries.ALL
    # The key inside the Standard Webhooks secret, and a URL-encoded form, count as well.
    assert canaries.STANDARD_WEBHOOKS_SECRET.removeprefix("whsec_") in canaries.ALL
    assert "canary-hmac-secret-d41c7730-%C3%A9" in canaries.ALL
    # found_in looks closer only at a text with a marker: every canary must have one.
    assert [value for value in canaries.ALL if not canaries.marked(value)] == []


def test_a_canary_in_a_log_record_of_any_level_is_found(found: list[str]) -> None:
    logger = logging.getLogger("connector.canary_self_test")
    logger.debug("calling with %s", REDACTED, extra={"secret": REDACTED})
    assert found == []
    logger.debug("calling", extra={"headers": {"Secret": canaries.AUTOTASK_SECRET}})
    assert len(found) == 1
    assert "'canary-secret-7f3a9c' in a log record (connector.canary_self_test DEBUG" in found[0]
    assert __file__ in found[0]


def test_a_canary_in_a_traceback_is_found(found: list[str]) -> None:
    try:
        raise ValueError(f"bad token {canaries.API_TOKEN}")
    except ValueError:
        logging.getLogger("adapters.canary_self_test").exception("failed")
    assert any(repr(canaries.API_TOKEN) in leak for leak in found)


def test_a_record_below_the_level_is_looked_at_but_not_handled(
    found: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    logging.getLogger("connector.canary_self_test").info("token %s", canaries.HOOK_TOKEN)
    assert caplog.records == []
    assert len(found) == 1


def make_app() -> Flask:
    """An app that answers what it is told to, and signs an admin in like the connector does."""
    app = Flask("canary_self_test")
    app.config.update(SECRET_KEY="self-test-only", SESSION_COOKIE_NAME="connector_admin")

    @app.get("/echo/<path:text>")
    def echo(text: str) -> Response:
        return Response(text, headers={"X-Echo": text})

    @app.post("/sign-in")
    def sign_in() -> str:
        session[canary_plugin.SESSION_TOKEN_KEY] = "a-session-token-made-by-the-app-0123"
        return "signed in"

    return app


def test_a_canary_in_an_answer_is_found(found: list[str]) -> None:
    client = make_app().test_client()
    assert client.get(f"/echo/{REDACTED}").status_code == 200
    assert found == []
    client.get(f"/echo/{canaries.SMTP_PASSWORD}")
    where = f"of the answer to GET /echo/{canaries.SMTP_PASSWORD}"
    leaked = repr(canaries.SMTP_PASSWORD)
    assert found == [f"{leaked} in the headers {where}", f"{leaked} in the body {where}"]


def test_the_session_cookie_and_its_token_become_canaries(found: list[str]) -> None:
    client = make_app().test_client()
    client.post("/sign-in")
    assert found == []  # the cookie is where it belongs
    cookie = client.get_cookie("connector_admin")
    assert cookie is not None
    client.get(f"/echo/{cookie.value}")
    client.get("/echo/a-session-token-made-by-the-app-0123")
    assert len(found) == 4
    assert all(leak.startswith("an admin session cookie or its token in the") for leak in found)


def test_a_canary_in_a_stored_row_is_found(found: list[str], tmp_path: Path) -> None:
    database = tmp_path / "leak.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE dead_letter (id INTEGER, error TEXT, body BLOB)")
        connection.execute("INSERT INTO dead_letter VALUES (1, 'Secret: ***', NULL)")
        connection.execute(
            "INSERT INTO dead_letter VALUES (2, 'refused', ?)",
            (f"token={canaries.GENERIC_BEARER_TOKEN}".encode(),),
        )
    connection.close()
    canary_plugin.scan_sqlite(str(database))
    assert found == [
        f"{canaries.GENERIC_BEARER_TOKEN!r} in the stored row dead_letter.body (row 2)"
    ]


def test_a_canary_a_process_writes_is_found(found: list[str]) -> None:
    import subprocess

    command = [sys.executable, "-c", f"print({canaries.METRICS_TOKEN!r})"]
    subprocess.run(command, capture_output=True, check=True, timeout=60)
    assert len(found) == 1
    assert found[0].startswith(f"{canaries.METRICS_TOKEN!r} in the stdout of `")


def test_a_canary_a_command_prints_is_found(found: list[str]) -> None:
    import click
    from click.testing import CliRunner

    @click.command()
    def show() -> None:
        click.echo(f"HOOK_TOKEN={canaries.HOOK_TOKEN}")

    CliRunner().invoke(show, ["--verbose"])
    CliRunner().invoke(show, [])
    assert found == [f"{canaries.HOOK_TOKEN!r} in the output of the command ``"]


@pytest.mark.shows_secret("pytester prints the inner run's output, which names its canaries")
def test_a_leak_fails_the_test_at_teardown_and_a_marked_one_does_not(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        f"""
        import logging
        import pytest

        def test_prints():
            print("the token is {canaries.API_TOKEN}")

        def test_logs():
            logging.getLogger("connector.x").debug("secret {canaries.AUTOTASK_SECRET}")

        def test_quiet():
            print("the token is ***")

        @pytest.mark.shows_secret("the point of this test")
        def test_shows():
            print("{canaries.API_TOKEN}")
        """
    )
    root = str(Path(__file__).parent.parent)
    monkeypatch.setenv("PYTHONPATH", root)
    result = pytester.runpytest_subprocess(
        "-p", "tests.canary_plugin", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-cov"
    )
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*{canaries.API_TOKEN!r} in the test's stdout call*",
            f"*{canaries.AUTOTASK_SECRET!r} in a log record (connector.x DEBUG*",
        ]
    )


@pytest.mark.postgres
def test_a_canary_in_a_stored_postgresql_row_is_found(found: list[str], postgres_url: str) -> None:
    import uuid

    import sqlalchemy as sa

    schema = f"test_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(postgres_url)
    leaked = f"token={canaries.GENERIC_BEARER_TOKEN}".encode()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            connection.exec_driver_sql(
                f'CREATE TABLE "{schema}".dead_letter (id int, error text, body bytea)'
            )
            connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
            connection.exec_driver_sql(
                "INSERT INTO dead_letter VALUES (1, %(error)s, NULL), (2, NULL, %(body)s)",
                {"error": "Secret: ***", "body": leaked},
            )
            canary_plugin.scan_postgres_schema(connection, schema)  # the catalog's tables
            columns = {"dead_letter": [("id", False), ("error", False), ("body", True)]}
            canary_plugin.scan_postgres_schema(connection, schema, columns)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()
    leak = f"{canaries.GENERIC_BEARER_TOKEN!r} in the stored row dead_letter.body (row 2)"
    assert found == [leak, leak]
