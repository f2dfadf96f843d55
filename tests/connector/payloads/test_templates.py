"""Compiling templates: invalid ones are refused at save time with the reason and line."""

from __future__ import annotations

import pytest

from adapters.targets.autotask.profile import TICKET_LIMITS
from connector.errors import ConnectorError, RenderError, TemplateRejected
from connector.payloads.field_limits import NO_LIMITS
from connector.payloads.formats import Format
from connector.payloads.samples import (
    SAMPLE_CONTEXT,
    validate_template,
)
from connector.payloads.templates import compile_template

REFUSED = [
    (
        "syntax error",
        "json",
        '{\n  "a": 1,\n  "b": "{{ alert.title | }}"\n}',
        3,
        "expected token 'name'",
    ),
    # Jinja reports where the template ended: the line of its last token.
    ("unclosed block", "json", '{\n{% if true %}\n  "a": 1\n}', 3, "endif"),
    ("unknown filter", "json", '{\n  "a": "{{ alert.title|center(80) }}"\n}', 2, "center"),
    ("missing comma", "json", '{\n  "a": 1\n  "b": 2\n}', 3, "not valid JSON"),
    ("trailing comma", "json", '{\n  "a": 1,\n}', 3, "not valid JSON"),
    ("text token outside quotes", "json", '{\n  "title": ##TITLE##\n}', 2, "not valid JSON"),
    ("duplicate key", "json", '{"a": 1, "A": 2, "a": 3}', 1, "appears twice"),
    (
        "duplicate key after a nested one",
        "json",
        '{\n  "x": {"a": 1},\n  "a": 2,\n  "y": {"b": 1,\n    "b": 2}\n}',
        5,
        "'b' appears twice",
    ),
    ("not a number written", "json", '{\n  "a": "NaN",\n  "b": NaN\n}', 3, "NaN"),
    ("not a number", "json", '{"a": {{ (1e308 * 10)|tojson }}}', 1, "ValueError"),
    (
        "unset optional value outside a guard",
        "json",
        '{\n  "companyID": ##ACCOUNTID##,\n  "queueID": ##QUEUEID##\n}',
        4,
        "optional values unset",
    ),
    ("xml tag mismatch", "xml", "<a>\n  <b>##TITLE##</c>\n</a>", 2, "not valid XML"),
    ("xml cdata", "xml", "<a>\n<![CDATA[##TITLE##]]></a>", 2, "CDATA"),
    ("xml value as element name", "xml", "<a><{{ alert.host }}/></a>", 1, "not valid XML"),
    ("xml value in a comment", "xml", "<a><!-- ##MESSAGE## --></a>", 1, "not valid XML"),
    (
        "xml doctype",
        "xml",
        '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<a>&x;</a>',
        2,
        "DOCTYPE",
    ),
    (
        "xml latin-1 declaration",
        "xml",
        '<?xml version="1.0" encoding="iso-8859-1"?><a/>',
        1,
        "utf-8",
    ),
]


@pytest.mark.parametrize(
    ("fmt", "source", "line", "reason"),
    [row[1:] for row in REFUSED],
    ids=[row[0] for row in REFUSED],
)
def test_invalid_templates_are_refused_with_reason_and_line(
    fmt: Format, source: str, line: int | None, reason: str
) -> None:
    with pytest.raises(TemplateRejected, match=reason) as e:
        validate_template(source, fmt, TICKET_LIMITS)
    assert e.value.line == line, str(e.value)
    if line is not None:
        assert str(e.value).startswith(f"line {line}: ")
        assert e.value.details is not None and e.value.details["line"] == line
    assert isinstance(e.value, ConnectorError) and e.value.status == 400


def test_an_oversized_template_is_refused() -> None:
    with pytest.raises(TemplateRejected, match="characters"):
        compile_template('"' + "x" * 70_000 + '"', "json")


def test_a_rendered_doctype_never_reads_the_file() -> None:
    source = '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    with pytest.raises(RenderError, match="DOCTYPE") as e:
        compile_template(source, "xml").render_payload(SAMPLE_CONTEXT, NO_LIMITS)
    assert "root:" not in str(e.value)
