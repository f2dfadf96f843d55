"""Field limits: the parsed payload's fields cut to the limits, in UTF-16 units."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from adapters.targets.autotask.profile import NOTE_LIMITS, TICKET_LIMITS
from connector.payloads.field_limits import enforce_limits
from connector.payloads.text import truncate, utf16_units


def test_enforce_limits_cuts_json_fields_case_insensitively_at_any_depth() -> None:
    payload = json.dumps(
        {"Title": "t" * 300, "description": "short", "item": {"TITLE": "u" * 256}, "n": 5}
    )
    body = json.loads(enforce_limits(payload, "json", TICKET_LIMITS))
    assert len(body["Title"]) == 255 and body["Title"].endswith(" … [truncated]")
    assert body["Title"].startswith("t" * 240)
    assert len(body["item"]["TITLE"]) == 255
    assert body["description"] == "short" and body["n"] == 5


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("a" * 255, 255, "a" * 255),  # fits exactly: untouched
        ("🔥" * 127 + "a", 255, "🔥" * 127 + "a"),  # 255 UTF-16 units, 128 code points
        ("🔥" * 128, 255, "🔥" * 120 + " … [truncated]"),  # 256 units: cut, pair kept whole
        ("a" * 200 + "🔥" * 50, 255, "a" * 200 + "🔥" * 20 + " … [truncated]"),
        ("é" * 300, 255, "é" * 241 + " … [truncated]"),  # BMP: one unit each
    ],
    ids=["fits", "emoji fit in units", "emoji over by one unit", "mixed", "accents"],
)
def test_truncate_counts_utf16_units_as_autotask_does(text: str, limit: int, kept: str) -> None:
    # Autotask (.NET, SQL Server) measures strings in UTF-16 code units (autotask-api.md §14).
    cut = truncate(text, limit)
    assert cut == kept
    assert utf16_units(cut) <= limit
    assert cut.encode("utf-16-le").decode("utf-16-le") == cut  # no lone surrogate


def test_enforce_limits_cuts_a_title_with_emoji_to_255_utf16_units() -> None:
    title = "Disk 🔥 on C:\\ " * 20  # 300 code points, 320 UTF-16 units
    body = json.loads(enforce_limits(json.dumps({"title": title}), "json", TICKET_LIMITS))
    assert utf16_units(body["title"]) <= 255 < utf16_units(title)
    assert body["title"].endswith(" … [truncated]")


def test_enforce_limits_cuts_xml_elements_by_local_name() -> None:
    payload = (
        f'<a xmlns="urn:x"><Title>{"t" * 300}</Title><Description>{"d" * 40000}</Description></a>'
    )
    root = etree.fromstring(enforce_limits(payload, "xml", NOTE_LIMITS).encode())
    title, description = (child.text or "" for child in root)
    assert (len(title), len(description)) == (250, 32000)
    assert title.endswith("… [truncated]") and description.endswith("… [truncated]")
