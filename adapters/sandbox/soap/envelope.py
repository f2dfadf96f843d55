"""The SOAP 1.1 envelope both ways: ATWS's namespaces, untrusted XML parsed into the call it
carries, and the envelopes, Faults and 401 the sandbox answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request
from lxml import etree

from adapters.sandbox.core import GENERIC_ERROR, Sandbox
from adapters.sandbox.entities import SOAP_ENTITY
from connector.safe_xml import DoctypeRefused, XmlRefused, parse_untrusted

ATWS_NS = "http://autotask.net/ATWS/v1_6/"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = f"{{{XSI_NS}}}type"
XSI_NIL = f"{{{XSI_NS}}}nil"

#: Responses declare ATWS as the default namespace, as the real ones do, so `xsi:type="Ticket"`
#: resolves to the WSDL type. (lxml-stubs types nsmap keys as str; lxml takes None.)
ATWS_NSMAP: Any = {None: ATWS_NS}

#: SOAP entity → REST entity, for the entities the sandbox serves over SOAP.
REST_ENTITY = {soap: rest for rest, soap in SOAP_ENTITY.items()}
_SERVED_ENTITIES = {soap.lower(): soap for soap in REST_ENTITY}

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

#: Characters XML 1.0 cannot carry; lxml refuses them, so they are replaced in answers.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def served_entity(name: str) -> str | None:
    """The SOAP entity the sandbox serves under `name`, whatever its casing, or None."""
    return _SERVED_ENTITIES.get(name.lower())


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


def child_elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (no comments)."""
    for child in parent:
        if isinstance(child.tag, str):
            yield child


def local_name(tag: str) -> str:
    """The tag's name without its namespace."""
    return etree.QName(tag).localname


def namespace_of(tag: str) -> str | None:
    """The tag's namespace URI, or None."""
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
    if local_name(envelope.tag) != "Envelope":
        raise SoapFault("The request is not a SOAP envelope.")
    if namespace_of(envelope.tag) != SOAP_ENV_NS:
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
    operation_element = next(child_elements(body), None)
    if operation_element is None:
        raise SoapFault("The SOAP Body is empty.")
    operation = local_name(operation_element.tag)
    # The operation is the Body element; SOAPAction is not checked, as clients differ in how
    # they quote it (the WSDL's value is http://autotask.net/ATWS/v1_6/{op}, autotask-api.md §10).
    if namespace_of(operation_element.tag) != ATWS_NS or operation not in OPERATIONS:
        raise SoapFault(
            "Server did not recognize the request element"
            f" {{{namespace_of(operation_element.tag) or ''}}}{operation}; the sandbox serves"
            f" {', '.join(sorted(OPERATIONS))} in {ATWS_NS}."
        )
    code = None
    if header is not None:
        integrations = header.find(f"{{{ATWS_NS}}}AutotaskIntegrations")
        if integrations is not None:
            code = integrations.findtext(f"{{{ATWS_NS}}}IntegrationCode")
    soap_request = SoapRequest(operation, operation_element, code and code.strip())
    if operation in ("create", "update"):
        first = next(iter(entity_elements(operation_element)), None)
        if first is not None:
            soap_request.entity = entity_type(first)
    elif operation == "GetFieldInfo":
        object_type = (operation_element.findtext(f"{{{ATWS_NS}}}psObjectType") or "").strip()
        soap_request.entity = served_entity(object_type) or object_type
    elif operation == "query":
        sxml = operation_element.findtext(f"{{{ATWS_NS}}}sXML")
        if not sxml or not sxml.strip():
            raise SoapFault("The query has no sXML.")
        # The queryxml inside sXML is untrusted XML too: same parser, same DOCTYPE refusal.
        soap_request.queryxml = parse_xml(sxml.strip().encode("utf-8"), "sXML")
        name = query_entity_name(soap_request.queryxml)
        soap_request.entity = served_entity(name or "") or name
    return soap_request


def entity_elements(operation: etree._Element) -> list[etree._Element]:
    """The `<Entity>` elements a create or update carries."""
    entities = operation.find(f"{{{ATWS_NS}}}Entities")
    if entities is None:
        return []
    return [e for e in child_elements(entities) if e.tag == f"{{{ATWS_NS}}}Entity"]


def entity_type(element: etree._Element) -> str:
    """The SOAP entity an `<Entity xsi:type="…">` carries (prefix dropped)."""
    xsi_type = element.get(XSI_TYPE)
    if not xsi_type:
        # Entity is abstract in the WSDL: without xsi:type ASMX cannot deserialize it.
        raise SoapFault("Server was unable to read request: an Entity has no xsi:type.")
    return xsi_type.rsplit(":", 1)[-1].strip()


def query_entity_name(queryxml: etree._Element) -> str | None:
    """The entity a queryxml document names, as written."""
    for child in child_elements(queryxml):
        if local_name(child.tag).lower() == "entity":
            return (child.text or "").strip()
    return None


# -- responses ---------------------------------------------------------------------------------


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def add_element(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    """Append an ATWS element, with `text` made safe for XML 1.0 if given."""
    element = etree.SubElement(parent, f"{{{ATWS_NS}}}{name}")
    if text is not None:
        element.text = _text(text)
    return element


def soap_envelope(content: etree._Element, status: int = 200) -> Response:
    """Answer `content` inside a SOAP 1.1 envelope."""
    envelope = etree.Element(
        f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS, "xsi": XSI_NS, "xsd": XSD_NS}
    )
    etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body").append(content)
    body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def opaque_errors() -> bool:
    """Whether the sandbox answering this request is in opaque-errors mode."""
    sandbox: Sandbox = current_app.extensions["sandbox"]
    return bool(sandbox.opaque_errors)


def fault_response(message: str, *, code: str = "Client", status: int = 500) -> Response:
    """A SOAP 1.1 Fault (HTTP 500 unless the pipeline chose another status)."""
    fault = etree.Element(f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = _text(
        GENERIC_ERROR if opaque_errors() else message
    )
    etree.SubElement(fault, "detail")
    return soap_envelope(fault, status)


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
        GENERIC_ERROR if opaque_errors() else text,
        status=401,
        content_type="text/plain; charset=utf-8",
    )
    response.headers["WWW-Authenticate"] = f'Basic Realm="{host}"'
    return response
