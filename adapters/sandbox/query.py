"""Autotask query filters: one condition tree, parsed from REST JSON or SOAP queryxml.

REST operators: eq, noteq, gt, gte, lt, lte, beginsWith, endsWith, contains, exist, notExist, in,
notIn, and or/and groups with `items`. Reference: ../shared/reference/autotask-api.md §4.
String comparisons ignore case, as Autotask's SQL Server collation does; a comparison against an
empty field is false (SQL NULL semantics), only `notExist` matches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.values import parse_datetime

COMPARISONS = {"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains"}
EXISTENCE = {"exist", "notexist"}
LISTS = {"in", "notin"}
GROUPS = {"and", "or"}

#: "Queries are limited to 500 or fewer 'OR' conditions." Reference: autotask-api.md §8.
MAX_OR_CONDITIONS = 500


@dataclass
class Condition:
    """One field test; `field` is the canonical REST property (or the UDF name when `udf`)."""

    op: str
    field: str
    value: Any = None
    udf: bool = False


@dataclass
class Group:
    """An and/or group of conditions and groups."""

    op: str
    items: list[Condition | Group] = field(default_factory=list)


#: REST entity → the singular name Autotask's query errors use.
SINGULAR = {
    "Tickets": "Ticket",
    "TicketNotes": "TicketNote",
    "Companies": "Company",
    "BillingCodes": "BillingCode",
}


def canonical_field(entity: str, name: str) -> str:
    """Map a case-insensitive field name to the entity's REST property, or raise."""
    lookup = {prop.lower(): prop for prop in REST_PROPERTIES[entity]}
    found = lookup.get(str(name).lower())
    if found is None or found == "userDefinedFields":
        # Autotask's words: "Unable to find projectID in the TimeEntry Entity" for the
        # TimeEntries endpoint (WYRE-AI/autotask-mcp PR #282; autotask-api.md §14).
        raise SandboxError(f"Unable to find {name} in the {SINGULAR.get(entity, entity)} Entity")
    return found


def _not_queryable(entity: str) -> set[str]:
    return {
        str(row["rest_name"])
        for row in FIELD_INFO[entity]
        if row["rest_name"] and not row["queryable"]
    } | {"creatorType", "lastActivityPersonType"}


def parse_rest_filter(entity: str, filters: Any) -> Group:
    """Parse a QueryModel `filter` list (implicitly AND-ed) into a condition tree."""
    if not isinstance(filters, list) or not filters:
        raise SandboxError("The query must have at least one filter condition.")
    tree = Group("and", [_parse_rest_node(entity, node) for node in filters])
    check_limits(tree)
    return tree


def _key(node: dict[str, Any], name: str) -> Any:
    """Read a QueryModel key whatever its casing (the Swagger example uses PascalCase)."""
    for key, value in node.items():
        if key.lower() == name:
            return value
    return None


def _parse_rest_node(entity: str, node: Any) -> Condition | Group:
    if not isinstance(node, dict):
        raise SandboxError(f"Invalid filter {node!r}: each filter must be an object.")
    op = str(_key(node, "op") or "").lower()
    if op in GROUPS:
        items = _key(node, "items")
        if not isinstance(items, list) or not items:
            raise SandboxError(f"The '{op}' filter needs a non-empty 'items' list.")
        return Group(op, [_parse_rest_node(entity, item) for item in items])
    udf = _key(node, "udf") is True
    name = _key(node, "field")
    if not name:
        raise SandboxError(f"Filter {node!r} has no field.")
    value = _key(node, "value")
    return make_condition(entity, op, str(name), value, udf=udf)


def make_condition(entity: str, op: str, name: str, value: Any, *, udf: bool = False) -> Condition:
    """Build a validated condition; values are coerced to the field's type."""
    op = op.lower()
    if op not in COMPARISONS | EXISTENCE | LISTS:
        raise SandboxError(f"Invalid operator '{op}'.")
    if udf:
        return Condition(op, name, value if op in EXISTENCE else _udf_value(op, value), True)
    prop = canonical_field(entity, name)
    if prop in _not_queryable(entity):
        raise SandboxError(f"The field {prop} is not queryable.")
    if op in EXISTENCE:
        return Condition(op, prop)
    kind = REST_PROPERTIES[entity][prop]
    if op in LISTS:
        if not isinstance(value, list) or not value:
            raise SandboxError(f"The '{op}' operator on {prop} needs a non-empty list of values.")
        return Condition(op, prop, [coerce_query_value(prop, kind, v) for v in value])
    return Condition(op, prop, coerce_query_value(prop, kind, value))


def _udf_value(op: str, value: Any) -> Any:
    if op in LISTS:
        if not isinstance(value, list) or not value:
            raise SandboxError(f"The '{op}' operator needs a non-empty list of values.")
        return [str(v) for v in value]
    if value is None:
        raise SandboxError("A filter value cannot be null.")
    return str(value)


def coerce_query_value(prop: str, kind: str, value: Any) -> Any:
    """Turn a filter value into the field's Python type, or raise a query error."""
    if value is None:
        raise SandboxError(f"A filter value for {prop} cannot be null.")
    try:
        if kind in ("int32", "int64"):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "double":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            # Booleans must be true or false. Reference: autotask-api.md §4 (REST basic queries).
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if kind == "date-time":
            return parse_datetime(str(value))
    except (TypeError, ValueError) as e:
        raise SandboxError(f"Invalid value {value!r} for field {prop} ({kind}).") from e
    return str(value)


def check_limits(tree: Group) -> None:
    """Refuse trees over Autotask's OR-condition limit or with more than one UDF condition."""
    ors = 0
    udfs = 0

    def walk(node: Condition | Group, in_or: bool) -> None:
        nonlocal ors, udfs
        if isinstance(node, Group):
            for item in node.items:
                walk(item, node.op == "or")
            return
        ors += 1 if in_or else 0
        udfs += 1 if node.udf else 0

    walk(tree, False)
    if ors > MAX_OR_CONDITIONS:
        raise SandboxError(
            "Invalid query syntax. Queries are limited to 500 or fewer 'OR' conditions."
        )
    if udfs > 1:
        # Only one UDF per query. Reference: autotask-api.md §4 (OFFICIAL PATCH page note).
        raise SandboxError("Only one user-defined field may be queried at a time.")


def matches(record: dict[str, Any], node: Condition | Group) -> bool:
    """Return whether a stored record (REST property names) satisfies the tree."""
    if isinstance(node, Group):
        results = (matches(record, item) for item in node.items)
        return all(results) if node.op == "and" else any(results)
    actual = _udf(record, node.field) if node.udf else record.get(node.field)
    if node.op == "exist":
        return actual not in (None, "")
    if node.op == "notexist":
        return actual in (None, "")
    if actual is None:
        return False
    if isinstance(actual, str) and not node.udf and _looks_like_datetime(node.value):
        actual = parse_datetime(actual)
    if node.op in LISTS:
        found = any(_compare("eq", actual, v) for v in node.value)
        return found if node.op == "in" else not found
    return _compare(node.op, actual, node.value)


def _looks_like_datetime(value: Any) -> bool:
    if isinstance(value, list):  # the values of in/notIn
        return any(isinstance(v, datetime) for v in value)
    return isinstance(value, datetime)


def _udf(record: dict[str, Any], name: str) -> Any:
    for udf in record.get("userDefinedFields") or []:
        if str(udf.get("name", "")).lower() == name.lower():
            return udf.get("value")
    return None


_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "beginswith": str.startswith,
    "endswith": str.endswith,
    "contains": lambda a, b: b in a,
}


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op in _STRING_OPS:
        return _STRING_OPS[op](str(actual).lower(), str(expected).lower())
    if isinstance(actual, str) or isinstance(expected, str):
        actual, expected = str(actual).lower(), str(expected).lower()
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "noteq":
            return bool(actual != expected)
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False
