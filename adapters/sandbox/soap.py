"""Autotask's SOAP 1.6 API (ATWS) as the sandbox serves it.

One endpoint, POST /ATServices/1.6/atws.asmx, SOAP 1.1 document/literal. Shapes follow the WSDL
(tests/fixtures/autotask/specs/atws-v1_6.trepidity-autotask_ruby.wsdl) and the real responses
quoted in ../shared/reference/autotask-api.md §10. Records are read and written through the same
SandboxService as the REST face, in REST property names; this module only translates.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from lxml import etree
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.sandbox.core import GENERIC_ERROR, SOAP_PATH, SOAP_URL_PATH, Call, Sandbox, new_call
from adapters.sandbox.entities import (
    FIELD_INFO,
    REST_PROPERTIES,
    SOAP_ENTITY,
    SOAP_FIELD_ORDER,
    SOAP_TO_REST,
)
from adapters.sandbox.entity_info import entity_information, field_definitions
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.query import Condition, Group, check_limits, make_condition
from adapters.sandbox.service import SandboxService
from adapters.sandbox.state import SandboxState
from adapters.sandbox.values import wire_record
from connector.safe_xml import DoctypeRefused, XmlRefused, parse_untrusted

ATWS_NS = "http://autotask.net/ATWS/v1_6/"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = f"{{{XSI_NS}}}type"
XSI_NIL = f"{{{XSI_NS}}}nil"

#: Responses declare ATWS as the default namespace, as the real ones do, so `xsi:type="Ticket"`
#: resolves to the WSDL type. (lxml-stubs types nsmap keys as str; lxml takes None.)
_DEFAULT_NS: Any = {None: ATWS_NS}

#: "Any batch call must be 200 or less entities per call". Reference: autotask-api.md §10
#: (OFFICIAL Batching_API_Calls.htm; python-atws AUTOTASK_API_ENTITY_SEND_LIMIT = 200).
MAX_BATCH = 200

#: "query() will return a maximum of 500 records at once, sorted by their id value".
#: Reference: autotask-api.md §10 (OFFICIAL QueryXML.htm).
MAX_QUERY_RECORDS = 500

#: SOAP entity → REST entity, for the entities the sandbox serves over SOAP.
REST_ENTITY = {soap: rest for rest, soap in SOAP_ENTITY.items()}

#: SOAP entities that create and update accept; Accounts are seeded and query-only here.
WRITABLE = {"Ticket", "TicketNote"}

#: The operations the sandbox implements, by the Body element's local name. The WSDL names the
#: entity-information operation getEntityInfo, but its element (what goes in the Body) is
#: GetEntityInfo.
OPERATIONS = {
    "create",
    "update",
    "query",
    "getZoneInfo",
    "getThresholdAndUsageInfo",
    "GetEntityInfo",
    "GetFieldInfo",
}

#: The vendored real WSDL the sandbox serves, byte for byte the one in
#: tests/fixtures/autotask/specs/ (trepidity/autotask_ruby atws-1_6.wsdl; a test keeps them equal).
WSDL_FILE = Path(__file__).with_name("atws-v1_6.wsdl")

#: The WSDL's service address, replaced by the sandbox's own when it is served.
WSDL_ADDRESS = "https://webservices2.autotask.net/ATServices/1.6/atws.asmx"

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

#: Characters XML 1.0 cannot carry; lxml refuses them, so they are replaced in answers.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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


class SoapFault(Exception):
    """A request the SOAP stack refuses before any web method runs: answered with a soap:Fault."""

    def __init__(self, message: str, *, code: str = "Client", status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# -- hardened XML ------------------------------------------------------------------------------


def parse_xml(data: bytes, what: str = "request") -> etree._Element:
    """Parse untrusted XML with the connector's one hardened parser; a SoapFault if refused."""
    try:
        return parse_untrusted(data)
    except DoctypeRefused as e:
        raise SoapFault(f"Server was unable to read {what}: a DOCTYPE is not allowed.") from e
    except XmlRefused as e:
        raise SoapFault(f"Server was unable to read {what}: the XML is not well-formed.") from e


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (no comments)."""
    for child in parent:
        if isinstance(child.tag, str):
            yield child


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _ns(tag: str) -> str | None:
    return etree.QName(tag).namespace


# -- requests ----------------------------------------------------------------------------------


@dataclass
class SoapRequest:
    """One parsed SOAP call: its operation, Body element and AutotaskIntegrations code."""

    operation: str
    body: etree._Element
    integration_code: str | None
    #: The entity the call names (thread limits are per entity), or None.
    entity: str | None = None
    #: For query: the parsed queryxml document inside sXML.
    queryxml: etree._Element | None = None


def parse_request(data: bytes) -> SoapRequest:
    """Parse a SOAP 1.1 envelope and pick the operation from the Body's first element."""
    envelope = parse_xml(data)
    if _local(envelope.tag) != "Envelope":
        raise SoapFault("The request is not a SOAP envelope.")
    if _ns(envelope.tag) != SOAP_ENV_NS:
        # SOAP 1.1 §4.4.1: "VersionMismatch: … found an invalid namespace for the SOAP Envelope
        # element" (a SOAP 1.2 client, say); ATWS speaks SOAP 1.1 (autotask-api.md §10).
        raise SoapFault(
            "Possible SOAP version mismatch: the envelope namespace must be"
            f" {SOAP_ENV_NS} (SOAP 1.1).",
            code="VersionMismatch",
        )
    header = envelope.find(f"{{{SOAP_ENV_NS}}}Header")
    body = envelope.find(f"{{{SOAP_ENV_NS}}}Body")
    if body is None:
        raise SoapFault("The SOAP envelope has no Body.")
    operation_element = next(_elements(body), None)
    if operation_element is None:
        raise SoapFault("The SOAP Body is empty.")
    operation = _local(operation_element.tag)
    # The operation is the Body element; SOAPAction is not checked, as clients differ in how
    # they quote it (the WSDL's value is http://autotask.net/ATWS/v1_6/{op}, autotask-api.md §10).
    if _ns(operation_element.tag) != ATWS_NS or operation not in OPERATIONS:
        raise SoapFault(
            "Server did not recognize the request element"
            f" {{{_ns(operation_element.tag) or ''}}}{operation}; the sandbox serves"
            f" {', '.join(sorted(OPERATIONS))} in {ATWS_NS}."
        )
    code = None
    if header is not None:
        integrations = header.find(f"{{{ATWS_NS}}}AutotaskIntegrations")
        if integrations is not None:
            code = integrations.findtext(f"{{{ATWS_NS}}}IntegrationCode")
    soap_request = SoapRequest(operation, operation_element, code and code.strip())
    if operation in ("create", "update"):
        first = next(iter(_entity_elements(operation_element)), None)
        if first is not None:
            soap_request.entity = _entity_type(first)
    elif operation == "GetFieldInfo":
        object_type = (operation_element.findtext(f"{{{ATWS_NS}}}psObjectType") or "").strip()
        known = {s.lower(): s for s in REST_ENTITY}
        soap_request.entity = known.get(object_type.lower(), object_type)
    elif operation == "query":
        sxml = operation_element.findtext(f"{{{ATWS_NS}}}sXML")
        if not sxml or not sxml.strip():
            raise SoapFault("The query has no sXML.")
        # The queryxml inside sXML is untrusted XML too: same parser, same DOCTYPE refusal.
        soap_request.queryxml = parse_xml(sxml.strip().encode("utf-8"), "sXML")
        name = _query_entity_name(soap_request.queryxml)
        soap_request.entity = {s.lower(): s for s in REST_ENTITY}.get((name or "").lower(), name)
    return soap_request


def _entity_elements(operation: etree._Element) -> list[etree._Element]:
    entities = operation.find(f"{{{ATWS_NS}}}Entities")
    if entities is None:
        return []
    return [e for e in _elements(entities) if e.tag == f"{{{ATWS_NS}}}Entity"]


def _entity_type(element: etree._Element) -> str:
    """The SOAP entity an `<Entity xsi:type="…">` carries (prefix dropped)."""
    xsi_type = element.get(XSI_TYPE)
    if not xsi_type:
        # Entity is abstract in the WSDL: without xsi:type ASMX cannot deserialize it.
        raise SoapFault("Server was unable to read request: an Entity has no xsi:type.")
    return xsi_type.rsplit(":", 1)[-1].strip()


def _query_entity_name(queryxml: etree._Element) -> str | None:
    for child in _elements(queryxml):
        if _local(child.tag).lower() == "entity":
            return (child.text or "").strip()
    return None


def _basic() -> tuple[str | None, str | None]:
    auth = request.authorization
    if auth is None or auth.type.lower() != "basic":
        return None, None
    return auth.username, auth.password


# -- responses ---------------------------------------------------------------------------------


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATWS_NS}}}{name}")
    if text is not None:
        element.text = _text(text)
    return element


def _envelope(content: etree._Element, status: int = 200) -> Response:
    envelope = etree.Element(
        f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS, "xsi": XSI_NS, "xsd": XSD_NS}
    )
    etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body").append(content)
    body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def _opaque() -> bool:
    """Whether the sandbox answering this request is in opaque-errors mode."""
    sandbox: Sandbox = current_app.extensions["sandbox"]
    return bool(sandbox.opaque_errors)


def fault_response(message: str, *, code: str = "Client", status: int = 500) -> Response:
    """A SOAP 1.1 Fault (HTTP 500 unless the pipeline chose another status)."""
    fault = etree.Element(f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = _text(GENERIC_ERROR if _opaque() else message)
    etree.SubElement(fault, "detail")
    return _envelope(fault, status)


def unauthorized_response() -> Response:
    """HTTP 401 for failed Basic authentication, before any SOAP processing.

    The body is the text .NET clients report for it (ecitsolutions/Autotask issue #92); the real
    server's body was not recorded. Reference: autotask-api.md §10.
    """
    host = request.host
    text = (
        "The HTTP request is unauthorized with client authentication scheme 'Basic'. The"
        f" authentication header received from the server was 'Basic Realm=\"{host}\"'."
    )
    response = Response(
        GENERIC_ERROR if _opaque() else text,
        status=401,
        content_type="text/plain; charset=utf-8",
    )
    response.headers["WWW-Authenticate"] = f'Basic Realm="{host}"'
    return response


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


def _entity(parent: etree._Element, soap: str, record: dict[str, Any]) -> None:
    """Append `<Entity xsi:type=…>`: id, UserDefinedFields, then the fields in WSDL order.

    Values are in the wire form (values.wire_record): an unset string is an empty element, as
    `<Resolution xsi:type="xsd:string"/>` in the real query fixtures; a null one is left out.
    """
    record = wire_record(REST_ENTITY[soap], record)
    element = _sub(parent, "Entity")
    element.set(XSI_TYPE, soap)
    _sub(element, "id", str(record["id"]))
    udfs = _sub(element, "UserDefinedFields")
    for udf in record.get("userDefinedFields") or []:
        item = _sub(udfs, "UserDefinedField")
        _sub(item, "Name", str(udf.get("name", "")))
        if udf.get("value") is not None:
            _sub(item, "Value", str(udf["value"]))
    kinds = REST_PROPERTIES[REST_ENTITY[soap]]
    for name in SOAP_FIELD_ORDER[soap]:
        prop = SOAP_TO_REST[soap].get(name)
        if prop is None or record.get(prop) is None:
            continue  # unset fields are left out, as in the real query fixtures
        xsd_type = FIELD_TYPES[soap][name]
        field = _sub(element, name, _format(kinds[prop], xsd_type, record[prop]))
        field.set(XSI_TYPE, xsd_type)


def _return_info(parent: etree._Element, entity_id: int, message: str | None = None) -> None:
    info = _sub(parent, "EntityReturnInfo")
    _sub(info, "EntityId", str(entity_id))
    # Real create and query answers both say DatabaseAction None (trepidity/autotask_ruby
    # create_response.xml and query fixtures). Reference: autotask-api.md §10.
    _sub(info, "DatabaseAction", "None")
    duplicate = _sub(info, "DuplicateStatus")
    _sub(duplicate, "Found", "false")
    _sub(duplicate, "Ignored", "false")
    if message is not None:
        _sub(info, "Message", message)


def atws_response(
    operation: str,
    *,
    soap: str | None = None,
    records: list[dict[str, Any]] | None = None,
    errors: list[str] | None = None,
    info_message: str | None = None,
) -> Response:
    """`<{op}Response><{op}Result>` holding an ATWSResponse (ReturnCode 1, or -1 with errors)."""
    if errors and _opaque():
        errors = [GENERIC_ERROR]
    wrapper = etree.Element(f"{{{ATWS_NS}}}{operation}Response", nsmap=_DEFAULT_NS)
    result = _sub(wrapper, f"{operation}Result")
    # Failures carry a ReturnCode other than 1; -1 is the sandbox's choice (the exact value is
    # unrecorded; python-atws treats any value other than 1 as failure). autotask-api.md §10.
    _sub(result, "ReturnCode", "-1" if errors else "1")
    results = _sub(result, "EntityResults")
    for record in records or []:
        _entity(results, soap or "", record)
    # EntityResultType is the lower-cased entity name ("ticket", "account" in real answers).
    _sub(result, "EntityResultType", soap.lower() if soap else None)
    errors_element = _sub(result, "Errors")
    for message in errors or []:
        _sub(_sub(errors_element, "ATWSError"), "Message", message)
    infos = _sub(result, "EntityReturnInfoResults")
    for record in records or []:
        _return_info(infos, int(record["id"]))
    if info_message is not None:
        _return_info(infos, 0, info_message)
    return _envelope(wrapper)


# -- entity values -----------------------------------------------------------------------------


def _read_entity(element: etree._Element, strict: bool) -> tuple[str, dict[str, Any]]:
    """Turn `<Entity xsi:type="Ticket">` into (SOAP entity, REST-named values)."""
    soap = _entity_type(element)
    if soap not in REST_ENTITY:
        raise SandboxError(f"The sandbox does not serve the entity type {soap} over SOAP.")
    rest = REST_ENTITY[soap]
    kinds = REST_PROPERTIES[rest]
    declared = set(SOAP_FIELD_ORDER[soap])
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for child in _elements(element):
        name = _local(child.tag)
        if _ns(child.tag) != ATWS_NS:
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
    for item in _elements(element):
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


# -- queryxml ----------------------------------------------------------------------------------


def parse_queryxml(queryxml: etree._Element) -> tuple[str, Group]:
    """Parse `<queryxml><entity>…</entity><query>…</query></queryxml>` into a condition tree."""
    if _local(queryxml.tag).lower() != "queryxml":
        raise SandboxError("The sXML document must be a <queryxml> element.")
    name = _query_entity_name(queryxml) or ""
    soap = {s.lower(): s for s in REST_ENTITY}.get(name.lower())
    if soap is None:
        raise SandboxError(f"The sandbox does not serve the entity type {name!r} over SOAP.")
    query = next((c for c in _elements(queryxml) if _local(c.tag).lower() == "query"), None)
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
    for child in _elements(element):
        tag = _local(child.tag).lower()
        if tag == "field":
            node = _field(soap, child)
            joiner = "and"
        elif tag == "condition":
            node = _container(soap, child)
            joiner = (child.get("operator") or "and").strip().lower()
            if joiner not in ("and", "or"):
                raise SandboxError(f"Invalid condition operator {child.get('operator')!r}.")
        else:
            raise SandboxError(f"Unexpected element <{_local(child.tag)}> in the query.")
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
    for expression in _elements(element):
        if _local(expression.tag).lower() != "expression":
            raise SandboxError(f"Unexpected element <{_local(expression.tag)}> in field {name}.")
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


# -- all-or-nothing batches --------------------------------------------------------------------


class _Overlay(SandboxState):
    """The sandbox's records behind a scratch layer: writes land in the layer only.

    A batch is first applied to an overlay so that one failing entity leaves the real records
    untouched ("one failing entity fails the whole batch", autotask-api.md §10), with exactly
    the validation the real write will run.
    """

    def __init__(self, base: SandboxState) -> None:
        super().__init__()
        self.base = base
        self.lock = base.lock
        self._layer: dict[tuple[str, int], dict[str, Any]] = {}
        self._scratch_id = 0

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        if (entity, record_id) in self._layer:
            return copy.deepcopy(self._layer[(entity, record_id)])
        return self.base.get(entity, record_id)

    def all(self, entity: str) -> list[dict[str, Any]]:
        records = {r["id"]: r for r in self.base.all(entity)}
        records.update({k[1]: copy.deepcopy(v) for k, v in self._layer.items() if k[0] == entity})
        return [records[k] for k in sorted(records)]

    def insert(self, entity: str, record: dict[str, Any]) -> int:
        self._scratch_id -= 1  # negative ids never collide with real ones
        self._layer[(entity, self._scratch_id)] = copy.deepcopy(record) | {"id": self._scratch_id}
        return self._scratch_id

    def replace(self, entity: str, record: dict[str, Any]) -> None:
        self._layer[(entity, record["id"])] = copy.deepcopy(record)


def _record_error(number: int, error: SandboxError) -> SandboxError:
    """Prefix each message with the failing entity's 1-based position in the batch.

    Real batch errors read "Error updating entity for record number [n]" (python-atws
    atws/wrapper.py parses the number). Reference: autotask-api.md §10.
    """
    prefix = f"Error updating entity for record number [{number}]."
    return SandboxError(*(f"{prefix} {m}" for m in error.messages), status=error.status)


def _apply_batch(
    service: SandboxService,
    operation: str,
    batch: list[tuple[str, dict[str, Any]]],
) -> list[int]:
    ids = []
    for number, (soap, values) in enumerate(batch, start=1):
        try:
            if operation == "create":
                ids.append(service.create(REST_ENTITY[soap], values))
            else:
                # SOAP update replaces: "all entity fields are updated unless they are ReadOnly
                # … if no value is provided … those fields are cleared" (OFFICIAL
                # UpdateCall.htm). Reference: autotask-api.md §10.
                ids.append(service.update(REST_ENTITY[soap], values, replace=True))
        except SandboxError as e:
            raise _record_error(number, e) from e
    return ids


# -- the endpoint ------------------------------------------------------------------------------


class _Handler:
    """One SOAP request's operation, answering ATWSResponse (or ATWSZoneInfo) envelopes."""

    def __init__(self, sandbox: Sandbox, call: Call, soap_request: SoapRequest) -> None:
        self.sandbox = sandbox
        self.service = sandbox.service
        self.call = call
        self.request = soap_request

    def __call__(self) -> Response:
        operation = self.request.operation
        handlers: dict[str, Callable[[], Response]] = {
            "create": self.write,
            "update": self.write,
            "query": self.query,
            "getZoneInfo": self.zone_info,
            "getThresholdAndUsageInfo": self.threshold,
            "GetEntityInfo": self.entity_info,
            "GetFieldInfo": self.field_info,
        }
        try:
            return handlers[operation]()
        except SoapFault as fault:
            return fault_response(fault.message, code=fault.code, status=fault.status)

    def write(self) -> Response:
        operation = self.request.operation
        soap: str | None = self.request.entity
        try:
            elements = _entity_elements(self.request.body)
            if len(elements) > MAX_BATCH:
                raise SandboxError(
                    f"Any batch call must be {MAX_BATCH} or less entities per call;"
                    f" this {operation} carries {len(elements)}."
                )
            strict = self.service.strict_properties
            batch = []
            for number, element in enumerate(elements, start=1):
                try:
                    entity, values = _read_entity(element, strict)
                    if entity not in WRITABLE:
                        raise SandboxError(f"The sandbox does not {operation} {entity} entities.")
                except SandboxError as e:
                    raise _record_error(number, e) from e
                batch.append((entity, values))
            with self.sandbox.state.lock:
                if len(batch) > 1:
                    scratch = SandboxService(
                        _Overlay(self.sandbox.state),
                        strict_properties=strict,
                        clock=self.service.clock,
                        rules=self.service.rules,
                    )
                    _apply_batch(scratch, operation, batch)
                ids = _apply_batch(self.service, operation, batch)
                records = [
                    self.service.get(REST_ENTITY[entity], new_id) or {"id": new_id}
                    for (entity, _), new_id in zip(batch, ids, strict=True)
                ]
        except SandboxError as e:
            return atws_response(operation, soap=soap, errors=e.messages)
        response = atws_response(operation, soap=soap, records=records)
        if operation == "create":
            for entity in dict.fromkeys(entity for entity, _ in batch):
                self.sandbox.after_create(REST_ENTITY[entity], self.call)
        return response

    def query(self) -> Response:
        queryxml = self.request.queryxml
        if queryxml is None:  # parse_request always sets it for query
            raise SoapFault("The query has no sXML.")
        try:
            soap, tree = parse_queryxml(queryxml)
            records, _ = self.service.query(REST_ENTITY[soap], tree, max_records=MAX_QUERY_RECORDS)
        except SandboxError as e:
            return atws_response("query", soap=self.request.entity, errors=e.messages)
        return atws_response("query", soap=soap, records=records)

    def zone_info(self) -> Response:
        user = (self.request.body.findtext(f"{{{ATWS_NS}}}UserName") or "").strip()
        wrapper = etree.Element(f"{{{ATWS_NS}}}getZoneInfoResponse", nsmap=_DEFAULT_NS)
        result = _sub(wrapper, "getZoneInfoResult")
        known = bool(user) and user.lower() == self.sandbox.config.user.username.lower()
        if known:
            _sub(result, "URL", f"{request.host_url}{SOAP_URL_PATH}")
        # "a negative ErrorCode" means the lookup failed (OFFICIAL GetZoneInfoCall.htm).
        # Reference: autotask-api.md §10.
        _sub(result, "ErrorCode", "0" if known else "-1")
        _sub(result, "DataBaseType", "Pro" if known else None)
        _sub(result, "CI", str(self.sandbox.config.ci if known else 0))
        if known:
            _sub(result, "WebUrl", f"{request.host_url}_sandbox/")
        return _envelope(wrapper)

    def threshold(self) -> Response:
        settings = self.sandbox.limits.settings
        # The wording of the real answer (trepidity/autotask_ruby fixture
        # threshold_and_usage_info_response.xml). Reference: autotask-api.md §10.
        message = (
            f"ThresholdOfExternalRequest: {settings.hourly_threshold};"
            f" TimeframeOfLimitation: {settings.timeframe_minutes};"
            f" numberOfExternalRequest: {self.sandbox.limits.usage()};"
        )
        return atws_response("getThresholdAndUsageInfo", info_message=message)

    def entity_info(self) -> Response:
        """getEntityInfo: an EntityInfo per entity the sandbox serves over SOAP (WSDL order)."""
        wrapper = etree.Element(f"{{{ATWS_NS}}}GetEntityInfoResponse", nsmap=_DEFAULT_NS)
        result = _sub(wrapper, "GetEntityInfoResult")
        for soap in sorted(REST_ENTITY):
            # The same answer as REST's {Entity}/entityInformation.
            info = entity_information(REST_ENTITY[soap])
            item = _sub(result, "EntityInfo")
            _sub(item, "Name", soap)
            for element, key in _ENTITY_INFO:
                _sub(item, element, _bool(info[key]))
        return _envelope(wrapper)

    def field_info(self) -> Response:
        """GetFieldInfo(psObjectType): the entity's Field list, picklists included.

        Built from the same getFieldInfo rows and picklists as REST's entityInformation/fields
        (entities.FIELD_INFO, entity_info.field_definitions), in the WSDL's Field order.
        Real answers leave Description and DefaultValue nil and give ReferenceEntityType and
        PicklistParentValueField as "" when empty (the getFieldInfo cache in
        tests/fixtures/autotask/specs/).
        """
        soap = self.request.entity or ""
        if soap not in REST_ENTITY:
            # Invented wording: the real answer to an unknown psObjectType was not found.
            raise SoapFault(
                f"Server was unable to process request. ---> The entity type {soap!r} is not"
                f" served by the sandbox over SOAP ({', '.join(sorted(REST_ENTITY))})."
            )
        rest = REST_ENTITY[soap]
        picklists = {
            definition["name"]: definition["picklistValues"] or []
            for definition in field_definitions(rest)
        }
        wrapper = etree.Element(f"{{{ATWS_NS}}}GetFieldInfoResponse", nsmap=_DEFAULT_NS)
        result = _sub(wrapper, "GetFieldInfoResult")
        for row in FIELD_INFO[rest]:
            item = _sub(result, "Field")
            _sub(item, "Name", str(row["name"]))
            _sub(item, "Label", str(row["label"]))
            _sub(item, "Type", str(row["type"]))
            _sub(item, "Length", str(row["length"]))
            _sub(item, "IsRequired", _bool(row["required"]))
            _sub(item, "IsReadOnly", _bool(row["read_only"]))
            _sub(item, "IsQueryable", _bool(row["queryable"]))
            _sub(item, "IsReference", _bool(bool(row["reference"])))
            _sub(item, "ReferenceEntityType", str(row["reference"]))
            _sub(item, "IsPickList", _bool(row["picklist"]))
            values = picklists.get(str(row["rest_name"]), []) if row["picklist"] else []
            if values:
                holder = _sub(item, "PicklistValues")
                for value in values:
                    entry = _sub(holder, "PickListValue")
                    _sub(entry, "Value", str(value["value"]))
                    _sub(entry, "Label", str(value["label"]))
                    _sub(entry, "IsDefaultValue", _bool(value["isDefaultValue"]))
                    _sub(entry, "SortOrder", str(value["sortOrder"]))
                    _sub(entry, "parentValue", str(value["parentValue"] or ""))
                    _sub(entry, "IsActive", _bool(value["isActive"]))
                    _sub(entry, "IsSystem", _bool(value["isSystem"]))
            _sub(item, "PicklistParentValueField", str(row["picklist_parent"]))
        return _envelope(wrapper)


#: EntityInfo elements in WSDL order → the entityInformation key holding their value.
_ENTITY_INFO = (
    ("CanUpdate", "canUpdate"),
    ("CanDelete", "canDelete"),
    ("CanCreate", "canCreate"),
    ("CanQuery", "canQuery"),
    ("HasUserDefinedFields", "hasUserDefinedFields"),
)


def _bool(value: object) -> str:
    return "true" if value else "false"


@cache
def _wsdl_text() -> str:
    # The vendored copy starts with a newline before its XML declaration, which XML allows only
    # at the very start of a document; served as the real service serves it, from the declaration.
    return WSDL_FILE.read_text(encoding="utf-8").lstrip()


def wsdl_response(base_url: str) -> Response:
    """The real ATWS 1.6 WSDL with its soap:address pointing at this sandbox."""
    text = _wsdl_text().replace(WSDL_ADDRESS, f"{base_url}{SOAP_URL_PATH}")
    return Response(text, status=200, content_type="text/xml; charset=utf-8")


def register(app: Flask, sandbox: Sandbox) -> None:
    """Mount the SOAP endpoint on `app`."""

    @app.get(SOAP_PATH)
    @app.get(SOAP_PATH.removesuffix(".asmx") + ".wsdl")
    def autotask_wsdl() -> Response:
        # ASMX serves its WSDL at atws.asmx?WSDL (any case); clients also ask for atws.wsdl
        # (python-atws replaces asmx by wsdl, autotask-api.md §10). No authentication: clients
        # fetch it before they have a zone (opendns/autotask-php #86).
        call = new_call("soap", "soap:wsdl", "wsdl")
        if request.path.endswith(".asmx") and "wsdl" not in {k.lower() for k in request.args}:
            # Real ASMX shows an HTML help page here; the sandbox has none (invented text).
            return sandbox.run(
                call,
                lambda: Response(
                    "The sandbox serves SOAP calls by POST and the WSDL at atws.asmx?WSDL.",
                    status=404,
                    content_type="text/plain; charset=utf-8",
                ),
                lambda e: _pipeline_error(sandbox, call, "", e),
                credentials=None,
            )
        return sandbox.run(
            call,
            lambda: wsdl_response(request.host_url),
            lambda e: _pipeline_error(sandbox, call, "", e),
            credentials=None,
        )

    @app.post(SOAP_PATH)
    def autotask_soap() -> Response:
        try:
            soap_request = parse_request(request.get_data())
        except RequestEntityTooLarge:
            return _refused(sandbox, SoapFault("The request is too large.", status=413))
        except SoapFault as fault:
            return _refused(sandbox, fault)
        operation = soap_request.operation
        if operation in ("getThresholdAndUsageInfo", "GetEntityInfo"):
            thread_key = f"soap:{operation}"
        else:
            thread_key = f"soap:{soap_request.entity or operation}"
        call = new_call("soap", thread_key, operation)

        def credentials() -> tuple[str | None, str | None, str | None]:
            return (*_basic(), soap_request.integration_code)

        return sandbox.run(
            call,
            _Handler(sandbox, call, soap_request),
            lambda e: _pipeline_error(sandbox, call, operation, e),
            # getZoneInfo "does not require authentication or a tracking identifier"
            # (OFFICIAL GetZoneInfoCall.htm), so it skips auth and limits. autotask-api.md §10.
            credentials=None if operation == "getZoneInfo" else credentials,
        )


def _refused(sandbox: Sandbox, fault: SoapFault) -> Response:
    """Answer a request the SOAP stack cannot read with a Fault, through the pipeline.

    IIS checks HTTP Basic before ASP.NET reads the body, so only Basic applies; the integration
    code is checked by the web method, which an unreadable request never reaches.
    """
    call = new_call("soap", "soap", "invalid")

    def credentials() -> tuple[str | None, str | None, str | None]:
        return (*_basic(), sandbox.config.user.integration_code)

    return sandbox.run(
        call,
        lambda: fault_response(fault.message, code=fault.code, status=fault.status),
        lambda e: _pipeline_error(sandbox, call, "", e),
        credentials=credentials,
    )


def _pipeline_error(sandbox: Sandbox, call: Call, operation: str, error: SandboxError) -> Response:
    """Map a refusal from Sandbox.run (faults, limits, authentication) to the SOAP shapes."""
    if call.fault:
        # Injected faults: a Fault with the status the plan chose.
        code = "Client" if error.status < 500 else "Server"
        return fault_response("; ".join(error.messages), code=code, status=error.status)
    if error.status == 429:
        # The thread limit and the hourly threshold. ASMX answers a refusal with a soap:Server
        # Fault and HTTP 500, not a 429; how real ATWS words and codes these is not recorded
        # (autotask-api.md §8, §10 and §14 cover REST only), so this is the sandbox's choice,
        # with the real REST wording as faultstring.
        return fault_response("; ".join(error.messages), code="Server", status=500)
    if error.status not in (401, 500):
        code = "Client" if error.status < 500 else "Server"
        return fault_response("; ".join(error.messages), code=code, status=error.status)
    if not operation:  # unreadable request: only Basic was checked, so this is a 401 anyway
        return unauthorized_response()
    username, secret = _basic()
    try:
        sandbox.authenticate(username, secret, sandbox.config.user.integration_code)
    except SandboxError:
        # Wrong secret or unknown user: IIS refuses HTTP Basic with a 401 (autotask-api.md §10).
        return unauthorized_response()
    # Basic passed, so the AutotaskIntegrations code is what failed: an ATWSResponse error
    # (MattParr/python-atws issue #64). Reference: autotask-api.md §10. getEntityInfo and
    # GetFieldInfo answer other types (ArrayOfEntityInfo, ArrayOfField) that cannot carry an
    # error, so for them the same text comes as a Fault (the sandbox's choice; not recorded).
    if operation in ("GetEntityInfo", "GetFieldInfo"):
        return fault_response("IntegrationCode is invalid.", code="Client")
    return atws_response(operation, errors=["IntegrationCode is invalid."])
