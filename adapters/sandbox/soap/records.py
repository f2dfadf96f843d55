"""ATWS entities both ways: stored records encoded as `<Entity xsi:type=…>` in an ATWSResponse,
and the entities of a create or update decoded into REST-named values."""

from __future__ import annotations

import math
from typing import Any

from flask import Response
from lxml import etree

from adapters.sandbox.core import GENERIC_ERROR
from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES, SOAP_FIELD_ORDER, SOAP_TO_REST
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.soap.envelope import (
    ATWS_NS,
    ATWS_NSMAP,
    REST_ENTITY,
    XSI_NIL,
    XSI_TYPE,
    add_element,
    child_elements,
    entity_type,
    local_name,
    namespace_of,
    opaque_errors,
    soap_envelope,
)
from adapters.sandbox.values import wire_record

#: getFieldInfo data types → the xsi:type real responses put on field values: the real query
#: fixtures carry `<AccountID xsi:type="xsd:int">` and `<AccountType xsi:type="xsd:short">`.
#: Reference: autotask-api.md §10 (trepidity/autotask_ruby spec/fixtures).
_XSD_TYPES = {
    "integer": "xsd:int",
    "long": "xsd:long",
    "short": "xsd:short",
    "decimal": "xsd:decimal",
    "double": "xsd:double",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "string": "xsd:string",
}
_REST_XSD_TYPES = {
    "int32": "xsd:int",
    "int64": "xsd:long",
    "double": "xsd:double",
    "boolean": "xsd:boolean",
    "date-time": "xsd:dateTime",
    "string": "xsd:string",
}


def _field_types() -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    for soap, rest in REST_ENTITY.items():
        rows = {str(row["name"]): row for row in FIELD_INFO[rest]}
        kinds = REST_PROPERTIES[rest]
        types[soap] = {}
        for name in SOAP_FIELD_ORDER[soap]:
            row = rows.get(name)
            prop = SOAP_TO_REST[soap].get(name)
            if row is not None and str(row["type"]) in _XSD_TYPES:
                types[soap][name] = _XSD_TYPES[str(row["type"])]
            elif prop is not None:
                types[soap][name] = _REST_XSD_TYPES.get(kinds[prop], "xsd:string")
    return types


#: SOAP entity → {SOAP field: xsi:type of its values}.
FIELD_TYPES = _field_types()


def _format(kind: str, xsd_type: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "INF" if value > 0 else "-INF"
        if xsd_type == "xsd:decimal":
            return format(value, "f").rstrip("0").rstrip(".") or "0"
        return repr(value)
    return str(value)


def add_entity(parent: etree._Element, soap: str, record: dict[str, Any]) -> None:
    """Append `<Entity xsi:type=…>`: id, UserDefinedFields, then the fields in WSDL order.

    Values are in the wire form (values.wire_record): an unset string is an empty element, as
    `<Resolution xsi:type="xsd:string"/>` in the real query fixtures; a null one is left out.
    """
    record = wire_record(REST_ENTITY[soap], record)
    element = add_element(parent, "Entity")
    element.set(XSI_TYPE, soap)
    add_element(element, "id", str(record["id"]))
    udfs = add_element(element, "UserDefinedFields")
    for udf in record.get("userDefinedFields") or []:
        item = add_element(udfs, "UserDefinedField")
        add_element(item, "Name", str(udf.get("name", "")))
        if udf.get("value") is not None:
            add_element(item, "Value", str(udf["value"]))
    kinds = REST_PROPERTIES[REST_ENTITY[soap]]
    for name in SOAP_FIELD_ORDER[soap]:
        prop = SOAP_TO_REST[soap].get(name)
        if prop is None or record.get(prop) is None:
            continue  # unset fields are left out, as in the real query fixtures
        xsd_type = FIELD_TYPES[soap][name]
        field = add_element(element, name, _format(kinds[prop], xsd_type, record[prop]))
        field.set(XSI_TYPE, xsd_type)


def _return_info(parent: etree._Element, entity_id: int, message: str | None = None) -> None:
    info = add_element(parent, "EntityReturnInfo")
    add_element(info, "EntityId", str(entity_id))
    # Real create and query answers both say DatabaseAction None (trepidity/autotask_ruby
    # create_response.xml and query fixtures). Reference: autotask-api.md §10.
    add_element(info, "DatabaseAction", "None")
    duplicate = add_element(info, "DuplicateStatus")
    add_element(duplicate, "Found", "false")
    add_element(duplicate, "Ignored", "false")
    if message is not None:
        add_element(info, "Message", message)


def atws_response(
    operation: str,
    *,
    soap: str | None = None,
    records: list[dict[str, Any]] | None = None,
    errors: list[str] | None = None,
    info_message: str | None = None,
) -> Response:
    """`<{op}Response><{op}Result>` holding an ATWSResponse (ReturnCode 1, or -1 with errors)."""
    if errors and opaque_errors():
        errors = [GENERIC_ERROR]
    wrapper = etree.Element(f"{{{ATWS_NS}}}{operation}Response", nsmap=ATWS_NSMAP)
    result = add_element(wrapper, f"{operation}Result")
    # Failures carry a ReturnCode other than 1; -1 is the sandbox's choice (the exact value is
    # unrecorded; python-atws treats any value other than 1 as failure). autotask-api.md §10.
    add_element(result, "ReturnCode", "-1" if errors else "1")
    results = add_element(result, "EntityResults")
    for record in records or []:
        add_entity(results, soap or "", record)
    # EntityResultType is the lower-cased entity name ("ticket", "account" in real answers).
    add_element(result, "EntityResultType", soap.lower() if soap else None)
    errors_element = add_element(result, "Errors")
    for message in errors or []:
        add_element(add_element(errors_element, "ATWSError"), "Message", message)
    infos = add_element(result, "EntityReturnInfoResults")
    for record in records or []:
        _return_info(infos, int(record["id"]))
    if info_message is not None:
        _return_info(infos, 0, info_message)
    return soap_envelope(wrapper)


# -- entity values -----------------------------------------------------------------------------


def read_entity(element: etree._Element, strict: bool) -> tuple[str, dict[str, Any]]:
    """Turn `<Entity xsi:type="Ticket">` into (SOAP entity, REST-named values)."""
    soap = entity_type(element)
    if soap not in REST_ENTITY:
        raise SandboxError(f"The sandbox does not serve the entity type {soap} over SOAP.")
    rest = REST_ENTITY[soap]
    kinds = REST_PROPERTIES[rest]
    declared = set(SOAP_FIELD_ORDER[soap])
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for child in child_elements(element):
        name = local_name(child.tag)
        if namespace_of(child.tag) != ATWS_NS:
            unknown.append(name)
        elif name == "id":
            values["id"] = _entity_id(child.text)
        elif name == "Fields":
            continue  # field metadata, never data
        elif name == "UserDefinedFields":
            udfs = _read_udfs(child)
            if udfs and "userDefinedFields" not in kinds:
                unknown.append(name)
            elif udfs:
                values["userDefinedFields"] = udfs
        elif name in declared and name in SOAP_TO_REST[soap]:
            prop = SOAP_TO_REST[soap][name]
            value = _field_value(kinds[prop], child)
            if value is not None:
                values[prop] = value
        else:
            unknown.append(name)
    if unknown and strict:
        names = ", ".join(sorted(unknown))
        raise SandboxError(
            f"Unknown field {names} for entity {soap}"
            " (sandbox strict mode; real Autotask ignores unknown elements)."
        )
    return soap, values


def _entity_id(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError as e:
        raise SandboxError(f"Invalid value {text!r} for field id.") from e


def _read_udfs(element: etree._Element) -> list[dict[str, Any]]:
    udfs = []
    for item in child_elements(element):
        name = item.findtext(f"{{{ATWS_NS}}}Name")
        if name is None:
            raise SandboxError("A UserDefinedField has no Name.")
        udfs.append({"name": name, "value": item.findtext(f"{{{ATWS_NS}}}Value")})
    return udfs


def _field_value(kind: str, element: etree._Element) -> Any:
    """A field's text as the service expects it; None when the element carries no value."""
    if element.get(XSI_NIL, "").strip().lower() in ("true", "1"):
        return None
    text = element.text or ""
    if kind == "string":
        return text
    text = text.strip()
    if not text:
        return None
    if kind == "boolean":
        # xsd:boolean allows true/false/1/0; the service wants a real bool.
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
    return text
