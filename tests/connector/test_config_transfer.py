"""`connector config export|import`: integrations as JSON; round trip, all or nothing, no secret."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, SandboxServer
from connector import create_app
from connector.cli import main, prepare_database
from connector.config import DEFAULTS
from connector.errors import ConflictError, InvalidInput
from connector.integrations.editing import EditContext
from connector.integrations.transfer import (
    NOTE,
    export_configuration,
    import_configuration,
)
from connector.persistence.models import Integration
from connector.services import Services
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def api(client: FlaskClient, method: str, path: str, body: Any = None) -> Any:
    response = client.open(
        f"/api/v1/integrations{path}",
        method=method,
        json=body,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def configured(
    client: FlaskClient, connector_app: Flask, sandbox_server: SandboxServer, api_user: ApiUser
) -> Flask:
    """The seeded integration edited live, and a second one (SOAP) made through the API."""
    iid = default_integration_id(connector_app)
    api(client, "PATCH", f"/{iid}", {"settings": {"priority_map": {"critical": 1}}})
    requests = api(client, "GET", f"/{iid}/requests")["requests"]
    note = dict(requests[2], body=requests[2]["body"].replace("##NOTETEXT##", "Seen: ##NOTETEXT##"))
    api(client, "PUT", f"/{iid}/requests", {"requests": [note]})
    second = {
        "name": "second",
        "api_flavour": "soap",
        "zone_lookup_url": sandbox_server.soap_url,
        "username": "second@sandbox.test",
        "secret": canaries.SECOND_AUTOTASK_SECRET,
        "integration_code": "CANARYSECONDTRACKINGID00007",
        "settings": {
            "allowed_zone_hosts": ["127.0.0.1"],
            "queue_id": 7,
            "status_on_acknowledge": True,  # against SOAP's default
        },
    }
    created = api(client, "POST", "", second)
    api(client, "PUT", f"/{created['id']}/tenants/a%2Fb", {"company_id": 1, "enabled": False})
    return connector_app


def exported(services: Services) -> dict[str, Any]:
    with services.sessions() as session:
        return export_configuration(session, services.profiles)


def do_import(services: Services, document: Any) -> list[str]:
    """Import in one transaction (rolled back on a refusal); what each integration got."""
    with services.transaction() as session:
        results = import_configuration(session, EditContext.of(services), document)
    return [result.describe() for result in results]


SECRETS = (
    canaries.SECOND_AUTOTASK_SECRET,
    canaries.SECOND_INTEGRATION_CODE,
    HOOK_TOKEN,
    API_TOKEN,
)


def test_the_export_holds_every_integration_and_no_secret(
    configured: Flask, services: Services, api_user: ApiUser
) -> None:
    document = exported(services)

    assert document["version"] == 1
    assert "NO secret" in document["note"]
    assert [i["name"] for i in document["integrations"]] == ["default", "second"]
    default, second = document["integrations"]
    assert default["settings"]["priority_map"] == {"critical": 1}
    assert default["tenants"]["fabrikam"] == {"company_id": 29683415, "enabled": True}
    assert default["tenants"]["switched-off"] == {"company_id": None, "enabled": False}
    assert "Seen: ##NOTETEXT##" in default["requests"][2]["body"]
    assert len(default["requests"]) == 9
    assert second["api_flavour"] == "soap"
    assert second["settings"]["status_on_acknowledge"] is True
    assert second["tenants"] == {"a/b": {"company_id": 1, "enabled": False}}
    text = json.dumps(document)
    for secret in (*SECRETS, api_user.secret, api_user.integration_code):
        assert secret not in text
    for entry in document["integrations"]:
        assert not {"secret", "integration_code", "hook_credentials"} & set(entry)


@sqlite_only
def test_an_export_imported_into_an_empty_database_recreates_the_configuration(
    configured: Flask,
    services: Services,
    connector_settings: dict[str, Any],
    tmp_path: Path,
    api_user: ApiUser,
) -> None:
    document = exported(services)
    empty = create_app(
        dict(
            connector_settings,
            DATABASE_URL=f"sqlite:///{tmp_path}/other.sqlite",
            INTEGRATION={},
        )
    )
    other: Services = empty.extensions["connector"]
    try:
        prepare_database(other)
        # New integrations need their secrets: the export has none.
        with pytest.raises(InvalidInput) as refused:
            do_import(other, document)
        message = str(refused.value)
        assert message.startswith("integration 'default': ")
        assert "secret: Missing data for required field" in message
        assert "integration_code: Missing data for required field" in message
        assert exported(other)["integrations"] == []

        with_secrets = copy.deepcopy(document)
        for entry in with_secrets["integrations"]:
            entry |= {"secret": "s-" + entry["name"], "integration_code": "c-" + entry["name"]}
        assert do_import(other, with_secrets) == [
            "created integration 'default'",
            "created integration 'second'",
        ]

        assert exported(other) == document
        assert do_import(other, document) == [
            "unchanged integration 'default'",
            "unchanged integration 'second'",
        ]
    finally:
        other.dispose()


@sqlite_only
def test_an_import_updates_by_name_and_keeps_the_stored_secrets(
    configured: Flask, services: Services, api_user: ApiUser
) -> None:
    document = exported(services)
    default = document["integrations"][0]
    default["settings"] = {"default_company_id": 29683416, "allowed_zone_hosts": ["127.0.0.1"]}
    default["tenants"] = {"contoso": 29683415, "old": False}
    document["integrations"] = [default]  # "second" is left alone
    with services.sessions() as session:
        before = {row.name: row.updated_at for row in session.scalars(select(Integration))}

    assert do_import(services, document) == ["updated integration 'default': settings, tenants"]

    after = exported(services)
    assert after["integrations"][0]["settings"] == default["settings"]
    assert after["integrations"][0]["tenants"] == {
        "contoso": {"company_id": 29683415, "enabled": True},
        "old": {"company_id": None, "enabled": False},
    }
    box = services.secret_box()
    with services.sessions() as session:
        rows = {row.name: row for row in session.scalars(select(Integration))}
        assert box.decrypt(rows["default"].secret_encrypted) == api_user.secret
        assert box.decrypt(rows["default"].integration_code_encrypted) == (
            api_user.integration_code
        )
        assert rows["default"].updated_at > before["default"]
        assert rows["second"].updated_at == before["second"]


@sqlite_only
def test_a_refusal_anywhere_in_the_file_imports_nothing(
    configured: Flask, services: Services
) -> None:
    before = exported(services)
    document = copy.deepcopy(before)
    document["integrations"][0]["settings"]["queue_id"] = 99
    document["integrations"][1]["settings"]["priority_map"] = {"urgent": 1}

    with pytest.raises(InvalidInput) as refused:
        do_import(services, document)

    assert str(refused.value).startswith("integration 'second': settings.priority_map.urgent:")
    assert exported(services) == before


def changed_document(services: Services, change: Any) -> dict[str, Any]:
    document = exported(services)
    change(document)
    return document


#: (a change to the exported document, words the refusal must contain)
INVALID_DOCUMENTS = [
    pytest.param(lambda d: d.update(version=2), "version: must be 1", id="version"),
    pytest.param(lambda d: d.pop("integrations"), "integrations: Missing", id="no-list"),
    pytest.param(lambda d: d.update(extra=1), "extra: Unknown field", id="unknown-key"),
    pytest.param(
        lambda d: d["integrations"].append(dict(d["integrations"][0])),
        "integration 'default': named twice",
        id="twice",
    ),
    pytest.param(
        lambda d: d["integrations"].append("x"), "integrations.2: must be a JSON object", id="str"
    ),
    pytest.param(
        lambda d: d["integrations"][0]["tenants"].update(acme="x"),
        "integration 'default': tenants.acme: must be a company id",
        id="tenant-company",
    ),
    pytest.param(
        lambda d: d["integrations"][0]["tenants"].update(acme={"enabled": True}),
        "integration 'default': tenants.acme.company_id: required",
        id="tenant-without-company",
    ),
    pytest.param(
        lambda d: d["integrations"][0]["requests"][0].update(body='{"title": "{{ x }"}'),
        "integration 'default': requests: active create request",
        id="bad-template",
    ),
    pytest.param(
        lambda d: d["integrations"][0]["requests"].append(d["integrations"][0]["requests"][0]),
        "integration 'default': requests.9: a second active create request",
        id="slot-twice",
    ),
    pytest.param(
        lambda d: d["integrations"][0].update(zone_lookup_url="https://evil.example.com/x/"),
        "integration 'default': zone_lookup_url",
        id="url",
    ),
    pytest.param(
        lambda d: d["integrations"][1].update(name="third"),
        "integration 'third': secret: Missing data for required field",
        id="new-without-secret",
    ),
]


@sqlite_only
@pytest.mark.parametrize(("change", "words"), INVALID_DOCUMENTS)
def test_a_refused_file_names_the_integration_and_the_field(
    configured: Flask, services: Services, change: Any, words: str
) -> None:
    before = exported(services)

    with pytest.raises(InvalidInput) as refused:
        do_import(services, changed_document(services, change))

    assert words in str(refused.value)
    assert exported(services) == before


@sqlite_only
def test_a_flavour_change_keeps_customized_requests_unless_the_file_gives_new_ones(
    configured: Flask, services: Services, sandbox_server: SandboxServer
) -> None:
    before = exported(services)
    to_soap = copy.deepcopy(before)
    soap = {"api_flavour": "soap", "zone_lookup_url": sandbox_server.soap_url}
    to_soap["integrations"][0] |= soap
    rest_requests = to_soap["integrations"][0].pop("requests")

    with pytest.raises(ConflictError, match="integration 'default': changing api_flavour"):
        do_import(services, to_soap)
    assert exported(services) == before

    to_soap["integrations"][0]["requests"] = rest_requests
    with pytest.raises(InvalidInput, match="'default': requests: active create request: SOAP"):
        do_import(services, to_soap)
    assert exported(services) == before

    # The second integration's requests are SOAP requests: give them to the first.
    to_soap["integrations"][0]["requests"] = before["integrations"][1]["requests"]
    assert do_import(services, to_soap) == [
        "updated integration 'default': api_flavour, zone_lookup_url, requests",
        "unchanged integration 'second'",
    ]
    assert (
        exported(services)["integrations"][0]["requests"] == to_soap["integrations"][0]["requests"]
    )


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def command_env(
    monkeypatch: pytest.MonkeyPatch, connector_settings: dict[str, Any], tmp_path: Path
) -> Iterator[None]:
    """The environment a `connector config …` command reads: the test app's database and key."""
    for key in DEFAULTS:
        monkeypatch.delenv(f"CONNECTOR_{key}", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", str(connector_settings["DATABASE_URL"]))
    monkeypatch.setenv("CONNECTOR_SECRET_KEYS", json.dumps(connector_settings["SECRET_KEYS"]))
    monkeypatch.chdir(tmp_path)  # no var/secret.key here
    yield


@sqlite_only
def test_the_commands_export_and_import_a_file(
    configured: Flask, services: Services, command_env: None, tmp_path: Path
) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["config", "export"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == exported(services)
    target = tmp_path / "connector.json"
    written = runner.invoke(main, ["config", "export", "-o", str(target)])
    assert written.exit_code == 0, written.output
    assert json.loads(target.read_text()) == exported(services)
    assert json.loads(target.read_text())["note"] == NOTE

    document = json.loads(target.read_text())
    document["integrations"][1]["settings"]["queue_id"] = 8
    target.write_text(json.dumps(document))
    before = exported(services)

    dry = runner.invoke(main, ["config", "import", "--dry-run", str(target)])
    assert dry.exit_code == 0, dry.output
    assert "(dry run) updated integration 'second': settings" in dry.stdout
    assert exported(services) == before

    applied = runner.invoke(main, ["config", "import", str(target)])
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [
        "unchanged integration 'default'",
        "updated integration 'second': settings",
    ]
    assert exported(services)["integrations"][1]["settings"]["queue_id"] == 8


@sqlite_only
@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param("{not json", "the file is not JSON: ", id="not-json"),
        pytest.param('{"version": 1, "integrations": [{"name": "x"}]}', "'x': ", id="new-bare"),
        pytest.param('{"version": 1, "integrations": {}}', "integrations: Not a valid", id="map"),
    ],
)
def test_the_import_command_refuses_with_the_reason_and_changes_nothing(
    configured: Flask,
    services: Services,
    command_env: None,
    tmp_path: Path,
    content: str,
    words: str,
) -> None:
    before = exported(services)
    target = tmp_path / "bad.json"
    target.write_text(content)

    result = CliRunner().invoke(main, ["config", "import", str(target)])

    assert result.exit_code == 1
    assert words in result.output
    assert exported(services) == before
