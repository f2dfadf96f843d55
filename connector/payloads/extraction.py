"""Reading the new ticket's id from the target's answer, by JSONPath or XPath."""

from __future__ import annotations

import json
from collections.abc import Mapping

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from lxml import etree

from connector.errors import ExtractionError, TemplateRejected
from connector.payloads.field_limits import parse_xml
from connector.payloads.formats import Format
from connector.safe_xml import XmlRefused

#: How much of an answer an extraction error shows.
RESPONSE_EXCERPT_CHARS = 2000


def _excerpt(body: bytes | str) -> str:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return text[:RESPONSE_EXCERPT_CHARS]


def _extraction_error(message: str, path: str, body: bytes | str) -> ExtractionError:
    excerpt = _excerpt(body)
    return ExtractionError(
        f"{message} (path {path}); the response was: {excerpt}",
        response={"path": path, "body": excerpt},
    )


def _as_ticket_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if number > 0 else None


def validate_id_path(fmt: Format, path: str, namespaces: Mapping[str, str]) -> None:
    """Refuse (TemplateRejected) a JSONPath or XPath that does not compile."""
    try:
        if fmt == "json":
            parse_jsonpath(path)
        else:
            # Evaluating once finds what compiling does not, such as an undeclared prefix.
            etree.XPath(path, namespaces=dict(namespaces))(etree.Element("r"))
    except (JSONPathError, etree.XPathError) as e:
        raise TemplateRejected(f"the id path {path!r} is not valid: {e}") from e


def extract_ticket_id(
    body: bytes | str,
    fmt: Format,
    path: str,
    namespaces: Mapping[str, str],
) -> int:
    """The ticket id in a response, by JSONPath or (namespace-aware) XPath; else ExtractionError."""
    if fmt == "json":
        try:
            expression = parse_jsonpath(path)
        except JSONPathError as e:
            raise _extraction_error(f"the JSONPath is not valid: {e}", path, body) from e
        try:
            data = json.loads(body)
        except ValueError as e:
            raise _extraction_error("the response is not JSON", path, body) from e
        values = [match.value for match in expression.find(data)]
    else:
        data_bytes = body.encode("utf-8") if isinstance(body, str) else body
        try:
            root = parse_xml(data_bytes)
        except XmlRefused as e:
            raise _extraction_error(f"the response is not valid XML: {e}", path, body) from e
        try:
            result = root.xpath(path, namespaces=dict(namespaces))
        except etree.XPathError as e:
            raise _extraction_error(f"the XPath failed: {e}", path, body) from e
        found = result if isinstance(result, list) else [result]
        values = [item.text if isinstance(item, etree._Element) else item for item in found]
    if not values:
        raise _extraction_error("the response has no ticket id", path, body)
    ticket_id = _as_ticket_id(values[0])
    if ticket_id is None:
        raise _extraction_error(
            f"the ticket id {values[0]!r} is not a positive integer", path, body
        )
    return ticket_id
