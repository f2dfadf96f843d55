"""SOAP requests: envelopes and queryxml built, and rendered envelopes read and merged.

Reference: autotask-api.md §10 (OFFICIAL QueryXML.htm, UpdateCall.htm; the WSDL).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from lxml import etree

from adapters.targets.autotask.profile import ATWS_NS
from adapters.targets.autotask.soap.atws import (
    ATWS_DEFAULT_NSMAP,
    SOAP_ENV_NS,
    XSD_NS,
    XSI_NIL,
    XSI_NS,
    XSI_TYPE,
    SoapEntity,
    Unreadable,
    XsdValue,
    atws_children,
    child_elements,
    find_atws,
    parse,
    qname,
    sub_element,
    write_entity,
    xml_text,
    xsd_local,
)
from connector.errors import TargetRejected
from connector.safe_xml import parse_untrusted


class Envelope(NamedTuple):
    """A rendered SOAP request, parsed: the envelope and the operation inside its Body."""

    root: etree._Element
    operation: etree._Element

    @property
    def name(self) -> str:
        """The operation's name: create, update, query …"""
        return str(etree.QName(self.operation).localname)

    def entities(self) -> list[etree._Element]:
        """The `<Entity>` elements of a create or update (none for other operations)."""
        return atws_children(find_atws(self.operation, "Entities"), "Entity")

    def entity(self) -> str:
        """The entity the call is about, for the activity log: "Ticket", "TicketNote" …"""
        if self.name == "query":
            try:
                document = parse((self.operation.findtext(qname("sXML")) or "").strip().encode())
            except Unreadable:
                return ""
            return (document.findtext("entity") or "").strip()
        return ",".join(dict.fromkeys(entity_type(e) for e in self.entities()))


def build_queryxml(entity: str, conditions: Iterable[tuple[str, str, object]]) -> str:
    """A `<queryxml>` document: entity, then one `<field>Name<expression op=…>value</…>` each.

    Values are element text, escaped by lxml; the fields are AND-ed (OFFICIAL QueryXML.htm,
    autotask-api.md §10).
    """
    root = etree.Element("queryxml")
    etree.SubElement(root, "entity").text = entity
    query = etree.SubElement(root, "query")
    for name, op, value in conditions:
        field = etree.SubElement(query, "field")
        field.text = name
        expression = etree.SubElement(field, "expression", op=op)
        if value is not None:
            expression.text = xml_text(str(value))
    return etree.tostring(root, encoding="unicode")


def build_id_queryxml(entity: str, ids: Iterable[int]) -> str:
    """A `<queryxml>` for the entities with any of `ids`: one `<condition>` per id, every one
    after the first with operator="OR" (OFFICIAL QueryXML.htm, autotask-api.md §10)."""
    root = etree.Element("queryxml")
    etree.SubElement(root, "entity").text = entity
    query = etree.SubElement(root, "query")
    for index, entity_id in enumerate(ids):
        condition = etree.SubElement(query, "condition")
        if index:
            condition.set("operator", "OR")
        field = etree.SubElement(condition, "field")
        field.text = "id"
        etree.SubElement(field, "expression", op="equals").text = str(int(entity_id))
    return etree.tostring(root, encoding="unicode")


def parse_queryxml(queryxml: str) -> etree._Element:
    try:
        document = parse(queryxml.encode("utf-8"))
    except Unreadable as e:
        raise TargetRejected(f"The queryxml is not usable: {e}") from e
    if document.tag != "queryxml" or document.find("query") is None:
        raise TargetRejected("The queryxml must be <queryxml> with <entity> and <query>.")
    if not (document.findtext("entity") or "").strip():
        raise TargetRejected("The queryxml names no entity.")
    return document


def after_id(document: etree._Element, after: int) -> etree._Element:
    """The same query AND-ed with `id > after`: the next page (OFFICIAL QueryXML.htm, §10).

    The original conditions move into one `<condition>`, so a top-level OR in them cannot
    swallow the id filter.
    """
    page = parse_untrusted(etree.tostring(document))
    query = page.find("query")
    if query is None:  # parse_queryxml checked it
        raise TargetRejected("The queryxml has no <query>.")
    group = etree.Element("condition")
    for child in list(query):
        group.append(child)
    query.text = None
    query.append(group)
    field = etree.SubElement(query, "field")
    field.text = "id"
    etree.SubElement(field, "expression", op="greaterthan").text = str(after)
    return page


def parse_envelope(body: str) -> Envelope:
    """Read a rendered SOAP request with the hardened parser; TargetRejected if it is not one."""
    try:
        root = parse(body.strip().encode("utf-8"))
    except Unreadable as e:
        raise TargetRejected(f"The SOAP request is not usable: {e}.") from e
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise TargetRejected("The SOAP request is not a SOAP 1.1 envelope (soap:Envelope).")
    body_element = root.find(f"{{{SOAP_ENV_NS}}}Body")
    operation = next(child_elements(body_element), None) if body_element is not None else None
    if operation is None:
        raise TargetRejected("The SOAP request's Body holds no operation.")
    if etree.QName(operation).namespace != ATWS_NS:
        raise TargetRejected(
            f"The SOAP operation {etree.QName(operation).localname} is not in the ATWS"
            f" namespace {ATWS_NS}."
        )
    return Envelope(root, operation)


def entity_type(element: etree._Element) -> str:
    """The concrete type an `<Entity xsi:type="Ticket">` names ("Ticket")."""
    # xsi:type="Ticket" names a type of the ATWS namespace (the default namespace there).
    return (element.get(XSI_TYPE) or "").rpartition(":")[2].strip()


def entity_id(element: etree._Element) -> int:
    """The `<id>` of an `<Entity>`; TargetRejected when it has none that names a record."""
    text = (element.findtext(qname("id")) or "").strip()
    if not text.isdigit() or int(text) <= 0:
        raise TargetRejected(
            f"The {entity_type(element) or 'entity'} to update has no usable id ({text!r})."
        )
    return int(text)


def merge_entity(current: SoapEntity, element: etree._Element) -> SoapEntity:
    """`current` with the fields an `<Entity>` element writes applied over it (theirs win)."""
    # SOAP update replaces the whole entity (OFFICIAL UpdateCall.htm, autotask-api.md §10), so
    # every field the element leaves out keeps its queried value. A field keeps the xsi:type
    # Autotask answered it with; one Autotask did not send keeps the element's type, or none, as
    # the element wrote it. `xsi:nil="true"` clears a field.
    merged = SoapEntity(current.entity_type, current, xsd_types=current.xsd_types)
    for child in child_elements(element):
        name = etree.QName(child).localname
        if name in ("id", "Fields"):
            continue  # the id picks the record; Fields is metadata, never data
        if name == "UserDefinedFields":
            udfs = dict(merged.get("UserDefinedFields") or {})
            udfs.update(
                (udf.findtext(qname("Name")) or "", udf.findtext(qname("Value")))
                for udf in atws_children(child, "UserDefinedField")
            )
            merged["UserDefinedFields"] = udfs
            continue
        merged.xsd_types.pop(name, None)
        if child.get(XSI_NIL, "").strip().lower() in ("true", "1"):
            merged[name] = None
            continue
        was = current.get(name)
        declared = xsd_local(child, child.get(XSI_TYPE))
        xsd_type = (
            current.xsd_types.get(name)
            or (was.xsd_type if isinstance(was, XsdValue) else None)
            or (f"xsd:{declared}" if declared else "")
        )
        text = child.text or ""
        merged[name] = XsdValue(text if xsd_type in ("", "xsd:string") else text.strip(), xsd_type)
    return merged


def replace_entity(element: etree._Element, entity: SoapEntity) -> None:
    """Put `entity`, written in WSDL order with its types, where the `<Entity>` element is."""
    parent = element.getparent()
    if parent is None:
        raise TargetRejected("The entity to replace is not inside an <Entities> element.")
    # The field types are written as "xsd:int": declare the prefixes if the envelope does not.
    missing = {p: ns for p, ns in (("xsi", XSI_NS), ("xsd", XSD_NS)) if parent.nsmap.get(p) != ns}
    written = write_entity(parent, entity, nsmap=missing)
    written.tail = element.tail
    element.addprevious(written)
    parent.remove(element)


def build_envelope(operation: etree._Element, *, integration_code: str | None) -> bytes:
    """soap:Envelope with the AutotaskIntegrations header (autotask-api.md §10) and the Body.

    Without an `integration_code` there is no header: getZoneInfo needs none.
    """
    envelope = etree.Element(
        f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS, "xsi": XSI_NS, "xsd": XSD_NS}
    )
    if integration_code is not None:
        header = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
        integrations = etree.SubElement(
            header, qname("AutotaskIntegrations"), nsmap=ATWS_DEFAULT_NSMAP
        )
        # The API tracking identifier; without it ATWS answers "IntegrationCode is invalid."
        # (python-atws #64) or "Integration code required" (autotask-php #174).
        sub_element(integrations, "IntegrationCode", integration_code)
    etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body").append(operation)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def add_integration_code(root: etree._Element, integration_code: str) -> None:
    """Give an envelope without an IntegrationCode the API user's tracking identifier.

    Without one ATWS answers "IntegrationCode is invalid." (python-atws #64) or
    "Integration code required" (autotask-php #174); autotask-api.md §10.
    """
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    if header is None:
        header = etree.Element(f"{{{SOAP_ENV_NS}}}Header")
        root.insert(0, header)
    integrations = header.find(qname("AutotaskIntegrations"))
    if integrations is None:
        integrations = etree.SubElement(
            header, qname("AutotaskIntegrations"), nsmap=ATWS_DEFAULT_NSMAP
        )
    code = integrations.find(qname("IntegrationCode"))
    if code is None:
        code = etree.Element(qname("IntegrationCode"))
        # The WSDL's AutotaskIntegrations is a sequence: PartnerID?, IntegrationCode?,
        # ImpersonateAsResourceID? (autotask-api.md §10).
        partner = integrations.find(qname("PartnerID"))
        if partner is not None:
            partner.addnext(code)
        else:
            integrations.insert(0, code)
    if not (code.text or "").strip():
        code.text = integration_code
