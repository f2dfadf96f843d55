"""Fuzz the hardened XML parser (connector/safe_xml.py) that every XML read goes through."""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    from connector.safe_xml import XmlRefused, parse_untrusted


def test_one(data: bytes) -> None:
    """Parsed, or XmlRefused; never a DOCTYPE, an entity's text, or another exception."""
    for keep in (False, True):
        try:
            root = parse_untrusted(data, keep_processing_instructions=keep)
        except XmlRefused:
            continue
        info = root.getroottree().docinfo
        assert info.internalDTD is None and not info.doctype, "a DOCTYPE got through"
        assert b"root:x:0:0" not in (root.text or "").encode(), "a file was read"


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(
            _harness.SEEDS / "xml", _harness.SEEDS / "soap", _harness.REGRESSIONS / "safe_xml"
        ),
        dictionary=_harness.XML_DICT,
    )
