"""Escaping: every character round-trips through JSON and XML escaping."""

from __future__ import annotations

import json

from lxml import etree

from connector.payloads.escaping import escape_json, escape_xml
from tests.connector.payloads.support import carried

ALL_BMP = "".join(chr(code) for code in range(0x0, 0x3000)) + "\ue000\ufffd\ufffe\uffff😀"


def test_escape_json_round_trips_every_character() -> None:
    assert json.loads(f'"{escape_json(ALL_BMP)}"') == ALL_BMP
    lone = "a\ud800b"
    assert json.loads(f'"{escape_json(lone)}"') == "a\ufffdb"


def test_escape_xml_round_trips_every_character_xml_can_carry() -> None:
    element = etree.fromstring(f'<a b="{escape_xml(ALL_BMP)}">{escape_xml(ALL_BMP)}</a>'.encode())
    assert element.text == carried(ALL_BMP, "xml")
    assert element.get("b") == carried(ALL_BMP, "xml")
