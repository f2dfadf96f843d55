"""entities.py is generated from the vendored specs and is not stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adapters.sandbox import entities
from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from tests.conftest import SPECS

ROOT = Path(__file__).resolve().parents[3]
GENERATOR = ROOT / "tools" / "gen_sandbox_entities.py"
SWAGGER: dict[str, Any] = json.loads(
    (SPECS / "autotask-rest-swagger-v1.0.SergLGP-2022.json").read_text(encoding="utf-8")
)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sandbox_entities", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_entities_match_the_generator() -> None:
    generated = load_generator().generate()
    committed = Path(entities.__file__).read_text(encoding="utf-8")
    assert generated == committed, "run: python tools/gen_sandbox_entities.py"


@pytest.mark.parametrize(
    ("entity", "model"),
    [("Tickets", "TicketModel"), ("TicketNotes", "TicketNoteModel"), ("Companies", "CompanyModel")],
    ids=["Tickets", "TicketNotes", "Companies"],
)
def test_rest_properties_are_the_swagger_model(entity: str, model: str) -> None:
    swagger = SWAGGER["definitions"][model]["properties"]
    # Swagger-generator artifacts (readOnly $ref expressions) are never on the wire.
    wire = {name: s for name, s in swagger.items() if not (s.get("readOnly") and "$ref" in s)}
    assert list(REST_PROPERTIES[entity]) == list(wire)
    for name, schema in wire.items():
        expected = "udfs" if schema.get("type") == "array" else schema.get("format", schema["type"])
        assert REST_PROPERTIES[entity][name] == expected, name


def test_ticket_properties_equal_the_ticket_model() -> None:
    assert set(REST_PROPERTIES["Tickets"]) == set(
        SWAGGER["definitions"]["TicketModel"]["properties"]
    )


def _row(entity: str, rest_name: str) -> dict[str, Any]:
    (row,) = [row for row in FIELD_INFO[entity] if row["rest_name"] == rest_name]
    return row


@pytest.mark.parametrize(
    ("entity", "field", "length"),
    [
        ("Tickets", "title", 255),
        ("Tickets", "description", 8000),
        ("Tickets", "externalID", 50),
        ("Tickets", "resolution", 32000),
        ("TicketNotes", "description", 32000),
        ("TicketNotes", "title", 250),
    ],
    ids=lambda v: str(v),
)
def test_field_lengths(entity: str, field: str, length: int) -> None:
    assert _row(entity, field)["length"] == length


def test_required_and_renamed_fields() -> None:
    required = {row["rest_name"] for row in FIELD_INFO["Tickets"] if row["required"]}
    assert required == {"id", "companyID", "title", "status", "priority"}
    assert _row("Tickets", "companyID")["name"] == "AccountID"
    assert _row("Tickets", "subIssueType")["picklist_parent"] == "IssueType"
    assert _row("TicketNotes", "noteType")["required"] is True
