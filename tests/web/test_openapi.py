"""GET /api/v1/openapi.json: served without a token, a valid OpenAPI 3.1 document, and one that
describes every route under /api/v1 with its methods, and nothing else."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema.validators import Draft202012Validator

from connector.web.api import PREFIX
from connector.web.api.openapi import openapi_document
from tests.conftest import API_TOKEN

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: `<int:alert_id>`, `<tenant:tenant>`, `<slug>`: a werkzeug rule's variable part.
_VARIABLE = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
#: Methods werkzeug adds to every rule on its own.
_IMPLICIT = {"HEAD", "OPTIONS"}


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every rule under /api/v1, the path relative to the prefix."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = _VARIABLE.sub(r"{\1}", rule.rule.removeprefix(PREFIX))
        found |= {(method, path) for method in (rule.methods or set()) - _IMPLICIT}
    return found


def documented_operations() -> set[tuple[str, str]]:
    """(method, path) of every operation the document describes."""
    paths = openapi_document()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


@sqlite_only
def test_every_route_is_documented_and_every_documented_route_exists(
    connector_app: Flask,
) -> None:
    routed = routed_operations(connector_app)
    documented = documented_operations()
    assert routed - documented == set(), "routes under /api/v1 the OpenAPI document lacks"
    assert documented - routed == set(), "operations the OpenAPI document has but no route"
    assert len(routed) >= 41


def test_every_path_parameter_is_described_and_every_id_is_a_bounded_integer() -> None:
    for path, item in openapi_document()["paths"].items():
        named = set(re.findall(r"{([a-z_]+)}", path))
        for method, operation in item.items():
            described = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
            assert set(described) == named, (method, path)
            for name, parameter in described.items():
                if name.endswith("_id"):
                    schema = parameter["schema"]
                    assert schema == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


@sqlite_only
def test_the_document_is_served_without_a_token_and_is_valid_openapi(
    client: FlaskClient,
) -> None:
    # The OpenAPI 3.1 meta-schema as schemathesis ships it (no network needed).
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document == openapi_document()
    Draft202012Validator(OPENAPI_31).validate(document)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # The same with a token: the token does not change or hinder it.
    with_token = client.get(
        f"{PREFIX}/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert with_token.get_json() == document


@sqlite_only
def test_every_operation_needs_the_token_but_the_document(client: FlaskClient) -> None:
    document = openapi_document()
    assert document["security"] == [{"apiToken": []}]
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    public = [
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    ]
    assert public == [("get", "/openapi.json")]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") != []:
                assert "401" in operation["responses"], (method, path)


@sqlite_only
def test_every_operation_the_document_says_needs_the_token_answers_401_without_it(
    client: FlaskClient,
) -> None:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            url = PREFIX + re.sub(r"{([a-z_]+)}", "1", path)
            response = client.open(url, method=method.upper(), json={})
            expected = 200 if operation.get("security") == [] else 401
            assert response.status_code == expected, (method, path)
