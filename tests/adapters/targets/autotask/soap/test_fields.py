"""fields.py is generated from the vendored WSDL and is not stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from adapters.targets.autotask.soap import fields

ROOT = Path(__file__).resolve().parents[5]
GENERATOR = ROOT / "tools" / "gen_sandbox_entities.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sandbox_entities", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_field_order_matches_the_generator() -> None:
    generated = load_generator().generate_fields()
    committed = Path(fields.__file__).read_text(encoding="utf-8")
    assert generated == committed, "run: python tools/gen_sandbox_entities.py"


def test_the_target_writes_tickets_and_ticket_notes_in_wsdl_order() -> None:
    assert list(fields.FIELD_ORDER) == ["Ticket", "TicketNote"]
    assert fields.FIELD_ORDER["Ticket"][:2] == ("AccountID", "AllocationCodeID")
