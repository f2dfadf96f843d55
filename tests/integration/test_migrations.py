"""Migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from connector.persistence.db import alembic_config, make_engine, upgrade
from connector.persistence.models import Base

#: Migrations start from nothing.
pytestmark = pytest.mark.empty_database


def test_upgrade_builds_the_models_schema_with_no_drift(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert diff == []
    expected = {"alert", "alert_event", "delivery", "ticket_link", "api_call", "rejected_webhook"}
    assert expected <= tables


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head == "0015"
    assert version == head


def test_hook_tokens_become_bearer_credentials_for_every_source(database_url: str) -> None:
    """0003 keeps every stored webhook token working (and revoked ones revoked); down keeps them."""
    from alembic import command

    from connector.persistence.models import UTCDateTime, utcnow

    config = alembic_config(database_url)
    command.upgrade(config, "0002")
    integration = sa.table(
        "integration",
        *(sa.column(name) for name in ("id", "name", "api_flavour", "zone_lookup_url")),
        *(sa.column(name) for name in ("username", "secret_encrypted")),
        sa.column("integration_code_encrypted"),
        sa.column("settings", sa.JSON()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    hook_token = sa.table(
        "hook_token",
        sa.column("integration_id"),
        sa.column("token_sha256"),
        sa.column("label"),
        sa.column("created_at", UTCDateTime()),
        sa.column("revoked_at", UTCDateTime()),
    )
    now = utcnow()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            integration.insert().values(
                id=1,
                name="default",
                api_flavour="rest",
                zone_lookup_url="https://webservices.autotask.net/atservicesrest/",
                username="api@example.net",
                secret_encrypted="x",
                integration_code_encrypted="x",
                settings={},
                created_at=now,
                updated_at=now,
            )
        )
        connection.execute(
            hook_token.insert(),
            [
                {
                    "integration_id": 1,
                    "token_sha256": "a" * 64,
                    "label": "preset",
                    "created_at": now,
                    "revoked_at": None,
                },
                {
                    "integration_id": 1,
                    "token_sha256": "b" * 64,
                    "label": "old",
                    "created_at": now,
                    "revoked_at": now,
                },
            ],
        )
    engine.dispose()

    upgrade(database_url)

    engine = make_engine(database_url)
    with engine.begin() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT integration_id, scheme, source, token_sha256, label, revoked_at IS NULL"
                " FROM hook_credential ORDER BY token_sha256"
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            (1, "bearer", None, "a" * 64, "preset", True),
            (1, "bearer", None, "b" * 64, "old", False),
        ]
        # The sequence knows nothing of copied ids: the next credential gets a fresh one.
        connection.execute(
            sa.text(
                "INSERT INTO hook_credential (integration_id, scheme, source, label, token_sha256,"
                " created_at) VALUES (1, 'bearer', 'generic', 'new', :digest, :now)"
            ),
            {"digest": "c" * 64, "now": now.isoformat()},
        )
    engine.dispose()

    command.downgrade(config, "0002")

    engine = make_engine(database_url)
    with engine.connect() as connection:
        kept = connection.execute(
            sa.text("SELECT token_sha256 FROM hook_token ORDER BY token_sha256")
        ).scalars()
        # A source-limited token would widen to every source in the old table: not copied back.
        assert list(kept) == ["a" * 64, "b" * 64]
    engine.dispose()


def test_rejected_webhooks_come_and_go_with_0004(database_url: str) -> None:
    from alembic import command

    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "0003")
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert "rejected_webhook" not in sa.inspect(connection).get_table_names()
    engine.dispose()

    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert "rejected_webhook" in sa.inspect(connection).get_table_names()
    engine.dispose()


def test_0006_keys_alerts_by_source_and_fills_the_new_columns_from_what_is_stored(
    database_url: str,
) -> None:
    """Existing alerts, events, ticket links and requests survive 0006 and back."""
    from alembic import command

    from connector.payloads.requests import default_template
    from connector.persistence.models import UTCDateTime, utcnow

    config = alembic_config(database_url)
    command.upgrade(config, "0005")
    now = utcnow()
    old_update = '{# PATCH {base}/V1.0/Tickets: only the fields sent change (TicketModel). #}\n{\n  "id": ##EXTERNALTICKETID##,\n  "status": ##STATUS##\n}\n'  # noqa: E501
    edited_update = '{"id": ##EXTERNALTICKETID##, "status": ##STATUS##, "queueID": 5}'
    time = UTCDateTime()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO integration (id, name, api_flavour, zone_lookup_url, username,"
                " secret_encrypted, integration_code_encrypted, settings, created_at, updated_at)"
                " VALUES (1, 'default', 'rest', 'https://x.invalid/', 'u', 'x', 'x', '{}',"
                " :now, :now)"
            ).bindparams(sa.bindparam("now", type_=time)),
            {"now": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO alert (id, integration_id, fingerprint, source, status, severity,"
                " title, message, host, tenant, monitor, properties, cycle, last_event_at,"
                " created_at) VALUES (7, 1, '4711', 'generic', 'active', 'warning', 't', '', '',"
                " '', '', '{}', 0, :now, :now)"
            ).bindparams(sa.bindparam("now", type_=time)),
            {"now": now},
        )
        for event_id, minute in ((1, 5), (2, 9), (3, None)):
            connection.execute(
                sa.text(
                    "INSERT INTO alert_event (id, alert_id, status, severity, dedupe_key,"
                    " occurred_at, received_at, disposition, payload) VALUES (:id, 7, 'active',"
                    " 'warning', :key, :occurred, :now, 'queued', '{}')"
                ).bindparams(sa.bindparam("occurred", type_=time), sa.bindparam("now", type_=time)),
                {
                    "id": event_id,
                    "key": f"k{event_id}",
                    "occurred": now.replace(minute=minute) if minute is not None else None,
                    "now": now,
                },
            )
        connection.execute(
            sa.text(
                "INSERT INTO ticket_link (id, alert_id, episode, state, marker, created_at,"
                " updated_at) VALUES (1, 7, 1, 'open', 'aac-1', :now, :now)"
            ).bindparams(sa.bindparam("now", type_=time)),
            {"now": now},
        )
        for row_id, status, body in ((1, "active", old_update), (2, "acknowledged", edited_update)):
            connection.execute(
                sa.text(
                    "INSERT INTO delivery_request (id, integration_id, status, action, method,"
                    " url, headers, body, format, id_path, updated_at) VALUES (:id, 1, :status,"
                    " 'update', 'PATCH', '##ZONEURL##Tickets', '{}', :body, 'json', '', :now)"
                ).bindparams(sa.bindparam("now", type_=time)),
                {"id": row_id, "status": status, "body": body, "now": now},
            )
    engine.dispose()

    upgrade(database_url)

    engine = make_engine(database_url)
    with engine.begin() as connection:
        newest = connection.execute(
            sa.select(sa.column("last_occurred_at", time)).select_from(sa.table("alert"))
        ).scalar_one()
        assert newest == now.replace(minute=9)
        assert (
            connection.execute(sa.text("SELECT applied_severity FROM ticket_link")).scalar_one()
            == "warning"
        )
        bodies = dict(connection.execute(sa.text("SELECT id, body FROM delivery_request")).all())
        assert bodies == {1: default_template("rest/status.json"), 2: edited_update}
        # The same id from another source is another alert now.
        connection.execute(
            sa.text(
                "INSERT INTO alert (integration_id, fingerprint, source, status, severity,"
                " title, message, host, tenant, monitor, properties, cycle, last_event_at,"
                " created_at) VALUES (1, '4711', 'alertmanager', 'active', 'warning', 't', '',"
                " '', '', '', '{}', 0, :now, :now)"
            ).bindparams(sa.bindparam("now", type_=time)),
            {"now": now},
        )
    engine.dispose()

    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM alert WHERE source = 'alertmanager'"))
    engine.dispose()
    command.downgrade(config, "0005")

    engine = make_engine(database_url)
    with engine.connect() as connection:
        bodies = dict(connection.execute(sa.text("SELECT id, body FROM delivery_request")).all())
        assert bodies == {1: old_update, 2: edited_update}
        assert "last_occurred_at" not in {
            column["name"] for column in sa.inspect(connection).get_columns("alert")
        }
    engine.dispose()


def test_rejected_webhook_bodies_come_and_go_with_0007(database_url: str) -> None:
    """0007 adds the body, alert index and replay columns; down removes them, rows stay."""
    from alembic import command

    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "0006")
    engine = make_engine(database_url)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("rejected_webhook")}
    engine.dispose()
    assert not columns & {"body", "alert_index", "replayed_at", "replay_result"}

    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("rejected_webhook")}
    engine.dispose()
    assert {"body", "alert_index", "replayed_at", "replay_result"} <= columns
