"""The rendered payload parsed, checked and cut to the target's field limits.

`enforce_limits` parses the payload (json.loads refusing duplicate keys and NaN, or the one
hardened XML parser, which refuses any DOCTYPE) and truncates the named text fields with a
visible marker, counting UTF-16 units as the target does.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import logging
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from lxml import etree

from connector.errors import RenderError
from connector.payloads.escaping import replace_lone_surrogates
from connector.payloads.formats import Format
from connector.payloads.text import truncate, utf16_units
from connector.safe_xml import DoctypeRefused, XmlRefused, parse_untrusted

logger = logging.getLogger(__name__)

#: No field is cut.
NO_LIMITS: Mapping[str, int] = {}


class InvalidPayload(ValueError):
    """The rendered payload does not parse; `offset` is where in the text, if known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def parse_xml(data: bytes) -> etree._Element:
    """Parse a payload or an answer with the one hardened parser (connector.safe_xml).

    Processing instructions stay: a rendered payload is sent as the admin wrote it.
    """
    return parse_untrusted(data, keep_processing_instructions=True)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice")
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


#: The pure-Python scanner (the C one calls no overridable parse_object).
_PY_SCANNER: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 (not in the stubs)


class _ObjectSpans(json.JSONDecoder):
    """The pure-Python decoder, noting where each object starts and ends (to place an error)."""

    def __init__(self) -> None:
        super().__init__(object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
        self.spans: list[tuple[int, int]] = []
        self.failed_at: int | None = None
        parse: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 (not in the stubs)

        def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
            start = s_and_end[1] - 1
            try:
                value, end = parse(s_and_end, *args)
            except _DuplicateKey:
                self.failed_at = start if self.failed_at is None else self.failed_at
                raise
            self.spans.append((start, end))
            return value, end

        self.parse_object = parse_object
        self.scan_once = _PY_SCANNER(self)


def _duplicate_key_offset(payload: str, key: str) -> int | None:
    """Where `key` is written the second time in the first object that has it twice."""
    decoder = _ObjectSpans()
    try:
        decoder.decode(payload)
    except _DuplicateKey:
        pass
    start = decoder.failed_at
    if start is None:
        return None
    inner = [span for span in decoder.spans if span[0] > start]
    member = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:")
    found = [
        m.start()
        for m in member.finditer(payload, start)
        if not any(a <= m.start() < b for a, b in inner)
    ]
    return found[1] if len(found) > 1 else None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_CONSTANT = re.compile(r"-?Infinity|NaN")


def _constant_offset(payload: str) -> int | None:
    """Where the first NaN or Infinity outside a string is."""
    outside_strings = _JSON_STRING.sub(lambda m: " " * len(m.group()), payload)
    found = _JSON_CONSTANT.search(outside_strings)
    return found.start() if found else None


def _cut(name: str, text: str, limit: int) -> str:
    units = utf16_units(text)
    if units <= limit:
        return text
    logger.warning(
        "payload.field.truncated", extra={"field": name, "utf16_units": units, "limit": limit}
    )
    return truncate(text, limit)


def _truncate_json(value: Any, limits: Mapping[str, int]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            limit = limits.get(key.lower())
            if limit is not None and isinstance(item, str):
                out[key] = _cut(key, item, limit)
            else:
                out[key] = _truncate_json(item, limits)
        return out
    if isinstance(value, list):
        return [_truncate_json(item, limits) for item in value]
    return value


def enforce_limits(payload: str, fmt: Format, limits: Mapping[str, int]) -> str:
    """Parse the payload, cut the fields named in `limits` with a marker, and serialize it again.

    JSON members match `limits` case-insensitively at any depth; XML elements by local name.
    RenderError says why a payload that does not parse is invalid.
    """
    try:
        return parse_and_cut(payload, fmt, limits)
    except InvalidPayload as e:
        raise RenderError(str(e)) from e


def parse_and_cut(payload: str, fmt: Format, limits: Mapping[str, int]) -> str:
    """`enforce_limits`, but InvalidPayload (with where in the payload) if it does not parse."""
    limits = {name.lower(): limit for name, limit in limits.items()}
    if fmt == "json":
        try:
            data = json.loads(
                payload, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant
            )
        except json.JSONDecodeError as e:
            raise InvalidPayload(
                f"the payload is not valid JSON: {e.msg}"
                f" (payload line {e.lineno}, column {e.colno})",
                e.pos,
            ) from e
        except _DuplicateKey as e:
            offset = _duplicate_key_offset(payload, e.key)
            raise InvalidPayload(f"the payload is not valid JSON: {e}", offset) from e
        except ValueError as e:
            offset = _constant_offset(payload)
            raise InvalidPayload(f"the payload is not valid JSON: {e}", offset) from e
        # A "\ud800" written into the template's own text parses to a lone surrogate.
        text = json.dumps(_truncate_json(data, limits), ensure_ascii=False)
        return replace_lone_surrogates(text)
    try:
        root = parse_xml(payload.encode("utf-8"))
    except DoctypeRefused as e:
        raise InvalidPayload(
            f"the payload is not valid XML: {e}", _found(payload, "<!DOCTYPE")
        ) from e
    except XmlRefused as e:
        offset = _offset(payload, *e.position) if e.position is not None else None
        raise InvalidPayload(f"the payload is not valid XML: {e}", offset) from e
    encoding = root.getroottree().docinfo.encoding or "utf-8"
    if encoding.lower() not in ("utf-8", "utf8"):
        raise InvalidPayload(
            f"the payload declares encoding {encoding!r}; use utf-8", _found(payload, "<?xml")
        )
    for element in root.iter():
        if not isinstance(element.tag, str) or len(element):
            continue
        limit = limits.get(etree.QName(element).localname.lower())
        if limit is not None and element.text:
            element.text = _cut(etree.QName(element).localname, element.text, limit)
    declared = payload.lstrip().startswith("<?xml")
    tree = root.getroottree()
    return etree.tostring(tree, xml_declaration=declared, encoding="utf-8").decode("utf-8")


def _offset(text: str, line: int, column: int) -> int:
    """The character offset of a 1-based line and column (libxml2 counts columns in bytes)."""
    lines = text.splitlines(keepends=True)
    start = sum(len(part) for part in lines[: max(line - 1, 0)])
    return start + max(column - 1, 0)


def _found(text: str, needle: str) -> int | None:
    """The offset of `needle` in `text`, if it is there."""
    offset = text.find(needle)
    return offset if offset >= 0 else None
