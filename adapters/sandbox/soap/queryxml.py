"""ATWS QueryXML (`<queryxml><entity>…</entity><query>…</query></queryxml>`) parsed into the
condition tree the REST face's filters also become."""

from __future__ import annotations

from lxml import etree

from adapters.sandbox.entities import SOAP_TO_REST
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.query import Condition, Group, check_limits, make_condition
from adapters.sandbox.soap.envelope import (
    REST_ENTITY,
    child_elements,
    local_name,
    query_entity_name,
    served_entity,
)

#: "query() will return a maximum of 500 records at once, sorted by their id value".
#: Reference: autotask-api.md §10 (OFFICIAL QueryXML.htm).
MAX_QUERY_RECORDS = 500

#: QueryXML operators (lower-cased) → REST filter operators. Reference: autotask-api.md §10
#: (python-atws atws/query.py lists the names; OFFICIAL QueryXML.htm their meaning).
QUERY_OPS = {
    "equals": "eq",
    "notequal": "noteq",
    "greaterthan": "gt",
    "lessthan": "lt",
    "greaterthanorequals": "gte",
    "lessthanorequals": "lte",
    "beginswith": "beginsWith",
    "endswith": "endsWith",
    "contains": "contains",
    "isnotnull": "exist",
    "isnull": "notExist",
}

#: Real QueryXML operators the sandbox does not evaluate (answered with an ATWSError).
UNSUPPORTED_QUERY_OPS = {"isthisday", "like", "notlike", "soundslike"}


def parse_queryxml(queryxml: etree._Element) -> tuple[str, Group]:
    """Parse `<queryxml><entity>…</entity><query>…</query></queryxml>` into a condition tree."""
    if local_name(queryxml.tag).lower() != "queryxml":
        raise SandboxError("The sXML document must be a <queryxml> element.")
    name = query_entity_name(queryxml) or ""
    soap = served_entity(name)
    if soap is None:
        raise SandboxError(f"The sandbox does not serve the entity type {name!r} over SOAP.")
    query = next(
        (c for c in child_elements(queryxml) if local_name(c.tag).lower() == "query"), None
    )
    if query is None:
        raise SandboxError("The queryxml has no <query> element.")
    tree = Group("and", [_container(soap, query)])
    check_limits(tree)
    return soap, tree


def _container(soap: str, element: etree._Element) -> Condition | Group:
    """A <query> or <condition>: its fields and conditions, joined left to right.

    A `<condition operator="OR">` is OR-ed with what precedes it, everything else AND-ed
    (python-atws builds `WHERE … OR …` this way, autotask-api.md §10). AND binds tighter than
    OR, as in the SQL Autotask runs; the official docs do not state the precedence.
    """
    runs: list[list[Condition | Group]] = [[]]
    for child in child_elements(element):
        tag = local_name(child.tag).lower()
        if tag == "field":
            node = _field(soap, child)
            joiner = "and"
        elif tag == "condition":
            node = _container(soap, child)
            joiner = (child.get("operator") or "and").strip().lower()
            if joiner not in ("and", "or"):
                raise SandboxError(f"Invalid condition operator {child.get('operator')!r}.")
        else:
            raise SandboxError(f"Unexpected element <{local_name(child.tag)}> in the query.")
        if joiner == "or" and runs[-1]:
            runs.append([])
        runs[-1].append(node)
    if not runs[0]:
        raise SandboxError("Each query and condition must hold at least one field.")
    groups = [run[0] if len(run) == 1 else Group("and", run) for run in runs]
    return groups[0] if len(groups) == 1 else Group("or", list(groups))


def _field(soap: str, element: etree._Element) -> Condition | Group:
    """`<field [udf="true"]>Name<expression op="Equals">value</expression>…</field>`."""
    name = (element.text or "").strip()
    if not name:
        raise SandboxError("A query field has no name.")
    udf = (element.get("udf") or "").strip().lower() == "true"
    prop = name
    if not udf:
        lookup = {k.lower(): v for k, v in SOAP_TO_REST[soap].items()}
        found = lookup.get(name.lower())
        if found is None:
            # The REST wording (autotask-api.md §14); ATWS's own was not recorded.
            raise SandboxError(f"Unable to find {name} in the {soap} Entity")
        prop = found
    conditions: list[Condition | Group] = []
    for expression in child_elements(element):
        if local_name(expression.tag).lower() != "expression":
            raise SandboxError(
                f"Unexpected element <{local_name(expression.tag)}> in field {name}."
            )
        op = (expression.get("op") or "").strip().lower()
        if op in UNSUPPORTED_QUERY_OPS:
            raise SandboxError(f"The sandbox does not support the query operator {op!r}.")
        if op not in QUERY_OPS:
            raise SandboxError(f"Invalid query operator {expression.get('op')!r}.")
        rest_op = QUERY_OPS[op]
        value = None if rest_op in ("exist", "notExist") else (expression.text or "")
        conditions.append(make_condition(REST_ENTITY[soap], rest_op, prop, value, udf=udf))
    if not conditions:
        raise SandboxError(f"The query field {name} has no expression.")
    return conditions[0] if len(conditions) == 1 else Group("and", conditions)
