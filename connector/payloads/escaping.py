"""Escaping: every emitted value is written as JSON string content or as XML text.

Integers, booleans and None render bare in both formats; a `tojson` result (JsonText) is emitted
as is into JSON. Characters XML 1.0 cannot carry are removed; lone surrogates become U+FFFD.
"""

from __future__ import annotations

import json
import re

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from connector.payloads.render_limits import as_text


class JsonText(str):
    """A complete JSON value made by the `tojson` filter; emitted as is into JSON payloads."""


_SURROGATE = re.compile("[\ud800-\udfff]")
#: Characters XML 1.0 cannot carry (§2.2 Char), even as references.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\r": "&#13;",
}
_XML_SPECIAL = re.compile("[&<>\"'\t\n\r]")


def replace_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate as U+FFFD (UTF-8 cannot encode them)."""
    return _SURROGATE.sub("\ufffd", text)


def _scalar_text(value: object) -> str | None:
    """Text for None, booleans and numbers, shared by both formats; None for anything else."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value, allow_nan=False)
    return None


def _printable(value: object) -> str:
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined raises: what it names is undefined or not allowed
    if isinstance(value, str | dict | list | tuple | set | frozenset | Namespace):
        return replace_lone_surrogates(as_text(value))
    # Runtime objects (loop, cycler, namespace …): their type, never their repr.
    return f"<{type(value).__name__}>"


def escape_json(text: str) -> str:
    """`text` as the content of a JSON string (without the quotes)."""
    return json.dumps(replace_lone_surrogates(text), ensure_ascii=False)[1:-1]


def escape_xml(text: str) -> str:
    """`text` as XML text or attribute content; characters XML cannot carry are removed."""
    text = _NOT_XML.sub("", replace_lone_surrogates(text))
    return _XML_SPECIAL.sub(lambda m: _XML_ESCAPES[m.group()], text)


def finalize_json(value: object) -> str:
    """What `{{ value }}` emits into a JSON payload."""
    if isinstance(value, JsonText):
        return str.__str__(value)
    scalar = _scalar_text(value)
    if scalar is not None:
        return scalar
    return escape_json(_printable(value))


def finalize_xml(value: object) -> str:
    """What `{{ value }}` emits into an XML payload."""
    scalar = _scalar_text(value)
    if scalar is not None:
        return scalar
    return escape_xml(_printable(value))
