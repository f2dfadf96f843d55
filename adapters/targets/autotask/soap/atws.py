"""ATWS 1.6 XML: namespaces, element helpers, and entities with their typed values, both ways.

Written with lxml, never by pasting values into strings; read with the one hardened parser
(../shared/reference/reliability-security.md §4.6). Reference: autotask-api.md §10.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from lxml import etree

from adapters.targets.autotask.profile import ATWS_NS
from adapters.targets.autotask.soap.fields import FIELD_ORDER
from connector.errors import TargetRejected
from connector.safe_xml import XmlRefused, parse_untrusted

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = f"{{{XSI_NS}}}type"
XSI_NIL = f"{{{XSI_NS}}}nil"

#: Elements of the ATWS namespace are written unprefixed, as the official samples do
#: (autotask-api.md §10). lxml-stubs types nsmap keys as str; lxml takes None for the default.
ATWS_DEFAULT_NSMAP: Any = {None: ATWS_NS}


#: Characters XML 1.0 cannot carry (lxml refuses them); alert text may hold any of them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


_INT_TYPES = frozenset(
    {
        "int",
        "long",
        "short",
        "byte",
        "integer",
        "unsignedByte",
        "unsignedShort",
        "unsignedInt",
        "unsignedLong",
    }
)


class XsdValue(NamedTuple):
    """A field value kept exactly as Autotask sent it: its text and its xsi:type."""

    text: str
    xsd_type: str


class SoapEntity(dict[str, Any]):
    """One ATWS entity: `id`, WSDL field names → values, and `UserDefinedFields` (name → value).

    Values are Python values (int, str, bool, Decimal, float, datetime) or an `XsdValue`. An
    entity read from Autotask remembers the xsi:type each field came with, so sending it back
    (the full-entity update SOAP needs) repeats those types exactly.
    """

    def __init__(
        self,
        entity_type: str,
        fields: Mapping[str, Any] | None = None,
        *,
        xsd_types: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(fields or {})
        self.entity_type = entity_type
        self.xsd_types: dict[str, str] = dict(xsd_types or {})

    def __repr__(self) -> str:
        return f"SoapEntity({self.entity_type!r}, {dict(self)!r})"


class Unreadable(Exception):
    """An answer that is not the XML we can read (malformed, a DOCTYPE, no SOAP Body)."""


def parse(data: bytes) -> etree._Element:
    """Parse untrusted XML with the one hardened parser; Unreadable if malformed or a DOCTYPE."""
    try:
        return parse_untrusted(data)
    except XmlRefused as e:
        raise Unreadable(str(e)) from e


def qname(name: str) -> str:
    return f"{{{ATWS_NS}}}{name}"


def xml_text(value: str) -> str:
    """Replace what XML 1.0 cannot carry (lxml would refuse the whole envelope)."""
    return _NOT_XML.sub("\ufffd", value)


def operation_element(name: str) -> etree._Element:
    return etree.Element(qname(name), nsmap=ATWS_DEFAULT_NSMAP)


def sub_element(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, qname(name))
    if text is not None:
        element.text = xml_text(text)
    return element


def child_elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (no comments)."""
    return (child for child in parent if isinstance(child.tag, str))


def find_atws(parent: etree._Element | None, name: str) -> etree._Element | None:
    """The ATWS child element `name`, or None."""
    return parent.find(qname(name)) if parent is not None else None


def required_child(parent: etree._Element, name: str) -> etree._Element:
    """The ATWS child element `name`; an answer without it is unreadable."""
    element = find_atws(parent, name)
    if element is None:
        raise Unreadable(f"the answer has no {name}")
    return element


def atws_children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if parent is None else list(parent.iterfind(qname(name)))


def required_text(parent: etree._Element | None, name: str) -> str:
    element = find_atws(parent, name)
    if element is None or element.text is None:
        raise Unreadable(f"the answer has no {name}")
    return element.text


def wsdl_order(entity_type: str, names: Iterable[str]) -> list[str]:
    """`names` in the entity's WSDL sequence order (`FIELD_ORDER`).

    A name the vendored WSDL does not list (a field a newer Autotask returned) keeps its place
    right after the known field it followed, so a read entity goes back as it came.
    """
    order = {name: index for index, name in enumerate(FIELD_ORDER.get(entity_type, ()))}
    keyed = []
    previous = -1
    for position, name in enumerate(names):
        previous = order.get(name, previous)
        keyed.append(((previous, position), name))
    return [name for _, name in sorted(keyed)]


def write_entity(
    parent: etree._Element, entity: SoapEntity, *, nsmap: Mapping[str, str] | None = None
) -> etree._Element:
    """`<Entity xsi:type="…">`: id, UserDefinedFields, then the set fields in WSDL order.

    Entity is abstract in the WSDL, so xsi:type names the concrete type; the Entity base's
    sequence is Fields?, id, UserDefinedFields? and the concrete type's fields follow. Unset
    (None) fields are left out; `nsmap` declares prefixes on the element.
    """
    element = etree.SubElement(parent, qname("Entity"), nsmap=dict(nsmap) if nsmap else None)
    element.set(XSI_TYPE, entity.entity_type)
    entity_id = entity.get("id")
    sub_element(element, "id", str(int(entity_id)) if entity_id is not None else "0")
    udfs = entity.get("UserDefinedFields")
    if udfs:
        holder = sub_element(element, "UserDefinedFields")
        for name, value in dict(udfs).items():
            udf = sub_element(holder, "UserDefinedField")
            sub_element(udf, "Name", str(name))
            if value is not None:
                sub_element(udf, "Value", str(value))
    names = [k for k, v in entity.items() if k not in ("id", "UserDefinedFields") and v is not None]
    for name in wsdl_order(entity.entity_type, names):
        text, xsd_type = _wire_value(entity[name], entity.xsd_types.get(name))
        field = sub_element(element, name, text)
        # Entity fields are untyped (xs:anyType) in the WSDL, so each value says its type, as the
        # real answers do: <AccountID xsi:type="xsd:int"> (autotask-api.md §10, trepidity
        # query_ticket_9137_response.xml). A value a template wrote untyped stays untyped.
        if xsd_type:
            field.set(XSI_TYPE, xsd_type)
    return element


def _wire_value(value: Any, remembered: str | None) -> tuple[str, str]:
    """(text, xsi:type) for a field value; a type read with the value is kept when it fits."""
    if isinstance(value, XsdValue):
        return value.text, value.xsd_type
    local = remembered.split(":", 1)[1] if remembered and ":" in remembered else None
    if isinstance(value, bool):
        return ("true" if value else "false"), "xsd:boolean"
    if isinstance(value, int):
        if local in _INT_TYPES:
            return str(value), f"xsd:{local}"
        return str(value), "xsd:int" if -(2**31) <= value < 2**31 else "xsd:long"
    if isinstance(value, Decimal):
        return format(value, "f"), "xsd:decimal"
    if isinstance(value, float):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "INF" if value > 0 else "-INF"
        else:
            text = repr(value)
        return text, f"xsd:{local}" if local in ("double", "float") else "xsd:double"
    if isinstance(value, datetime):
        return _wire_datetime(value), "xsd:dateTime"
    if isinstance(value, str):
        return value, "xsd:string"
    raise TargetRejected(f"Cannot send a {type(value).__name__} value to Autotask SOAP.")


def _wire_datetime(value: datetime) -> str:
    """xsd:dateTime: an aware time in UTC with a Z; a naive one as it is (as it was read)."""
    if value.tzinfo is None:
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"


def read_entity(element: etree._Element) -> SoapEntity:
    """`<Entity xsi:type="Ticket">` → SoapEntity; values converted by their xsi:type."""
    # xsi:type="Ticket" names a type of the ATWS namespace (the answer's default namespace).
    entity = SoapEntity((element.get(XSI_TYPE) or "").rpartition(":")[2].strip())
    for child in child_elements(element):
        name = etree.QName(child).localname
        if name == "Fields":
            continue  # field metadata, never data
        if name == "id":
            entity["id"] = int((child.text or "").strip())
        elif name == "UserDefinedFields":
            entity["UserDefinedFields"] = {
                udf.findtext(qname("Name")) or "": udf.findtext(qname("Value"))
                for udf in atws_children(child, "UserDefinedField")
            }
        elif child.get(XSI_NIL, "").strip().lower() not in ("true", "1"):
            value, xsd_type = _read_value(child)
            entity[name] = value
            if xsd_type:
                entity.xsd_types[name] = xsd_type
    if "id" not in entity:
        raise Unreadable("an entity has no id")
    return entity


def xsd_local(element: etree._Element, qname: str | None) -> str | None:
    """The XML Schema type an xsi:type names (e.g. "int"), or None for another namespace."""
    if not qname:
        return None
    prefix, _, local = qname.strip().rpartition(":")
    if element.nsmap.get(prefix or None) != XSD_NS:
        return None
    return local


def _read_value(element: etree._Element) -> tuple[Any, str | None]:
    """(Python value, remembered "xsd:…" type) of a field element."""
    text = element.text or ""
    local = xsd_local(element, element.get(XSI_TYPE))
    if local is None or local == "string":
        return text, ("xsd:string" if local else None)
    xsd_type = f"xsd:{local}"
    stripped = text.strip()
    try:
        if local in _INT_TYPES:
            return int(stripped), xsd_type
        if local == "boolean":
            if stripped.lower() in ("true", "1"):
                return True, xsd_type
            if stripped.lower() in ("false", "0"):
                return False, xsd_type
        elif local == "decimal":
            return Decimal(stripped), xsd_type
        elif local in ("double", "float"):
            return float({"INF": "inf", "-INF": "-inf"}.get(stripped, stripped)), xsd_type
        elif local == "dateTime":
            return datetime.fromisoformat(stripped.replace("Z", "+00:00")), xsd_type
    except (ValueError, InvalidOperation):
        pass
    # A type we do not convert, or text we cannot: keep it exactly, to send back as it came.
    return XsdValue(text, xsd_type), None
