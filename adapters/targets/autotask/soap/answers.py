"""SOAP answers: the Body of an ATWS answer read into entities, messages or a typed refusal.

Reference: autotask-api.md §10 (ATWSResponse, ReturnCode, EntityResults, Errors; getZoneInfo).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from lxml import etree

from adapters.targets.autotask.answers import database_id_of, ticket_ref
from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.soap.atws import (
    SOAP_ENV_NS,
    SoapEntity,
    Unreadable,
    XsdValue,
    atws_children,
    child_elements,
    find_atws,
    parse,
    qname,
    read_entity,
    required_child,
    required_text,
)
from connector.domain import TicketRef, ZoneAnswer

#: "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60; numberOfExternalRequest: 0;"
#: (trepidity/autotask_ruby threshold_and_usage_info_response.xml, autotask-api.md §10).
_USAGE_PAIR = re.compile(r"\s*([A-Za-z]+)\s*:\s*(-?\d+)\s*;?")


def usage_figures(messages: Sequence[str]) -> dict[str, int]:
    """The "Name: number;" pairs of getThresholdAndUsageInfo's messages, by name."""
    usage: dict[str, int] = {}
    for message in messages:
        usage.update((name, int(value)) for name, value in _USAGE_PAIR.findall(message))
    return usage


class Answer(NamedTuple):
    """A successful ATWSResponse (ReturnCode 1): its entities and EntityReturnInfo messages."""

    entities: list[SoapEntity]
    info_messages: list[str]


class ZoneRefused(Exception):
    """getZoneInfo answered with a negative ErrorCode."""


class Refused(Exception):
    """An ATWSResponse with a ReturnCode other than 1, and its ATWSError messages."""

    def __init__(self, return_code: int, messages: list[str]) -> None:
        super().__init__(f"ReturnCode {return_code}")
        self.return_code = return_code
        self.messages = messages


def body_content(data: bytes) -> etree._Element:
    """The element inside soap:Body: `{op}Response` or soap:Fault."""
    if not data.strip():
        raise Unreadable("the answer is empty")
    envelope = parse(data.strip())
    if envelope.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise Unreadable("the answer is not a SOAP 1.1 envelope")
    body = envelope.find(f"{{{SOAP_ENV_NS}}}Body")
    content = next(child_elements(body), None) if body is not None else None
    if content is None:
        raise Unreadable("the SOAP Body is empty")
    return content


def read_fault(content: etree._Element) -> tuple[str | None, list[str]]:
    """(faultcode, [faultstring]) of a SOAP 1.1 Fault (unqualified children, SOAP 1.1 §4.4)."""
    code = (content.findtext("faultcode") or "").strip() or None
    message = (content.findtext("faultstring") or "").strip()
    return code, [message] if message else []


def text_messages(text: str) -> list[str]:
    """A non-SOAP error body (401 plain text, a proxy's page) as one short message."""
    text = text.strip()
    return [text[:300]] if text else []


def atws_answer(content: etree._Element) -> tuple[Answer, int | None]:
    """`<{op}Response><{op}Result>` holding an ATWSResponse (WSDL type ATWSResponse)."""
    result = next(child_elements(content), None)
    if result is None:
        raise Unreadable(f"{etree.QName(content).localname} holds no result")
    return_code = int(required_text(result, "ReturnCode"))
    entities = [
        read_entity(element)
        for element in atws_children(find_atws(result, "EntityResults"), "Entity")
    ]
    errors = [
        (error.findtext(qname("Message")) or "").strip()
        for error in atws_children(find_atws(result, "Errors"), "ATWSError")
    ]
    infos = [
        info.findtext(qname("Message")) or ""
        for info in atws_children(find_atws(result, "EntityReturnInfoResults"), "EntityReturnInfo")
    ]
    if return_code != 1:
        # python-atws treats any ReturnCode other than 1 as failure (autotask-api.md §10).
        raise Refused(return_code, [e for e in errors if e])
    return Answer(entities, infos), len(entities)


def zone_answer(content: etree._Element, *, username: str) -> tuple[ZoneAnswer, int | None]:
    """ATWSZoneInfo: URL, ErrorCode (negative: lookup failed), DataBaseType, CI, WebUrl; CI
    names the database (autotask-api.md §10)."""
    result = required_child(content, "getZoneInfoResult")
    code = int(required_text(result, "ErrorCode"))
    if code < 0:
        # "a negative ErrorCode" means the lookup failed (OFFICIAL GetZoneInfoCall.htm,
        # autotask-api.md §10): Autotask knows no such API user.
        raise ZoneRefused(
            f"Autotask getZoneInfo found no zone for user {username!r} (ErrorCode {code})."
        )
    url = required_text(result, "URL").strip()
    return ZoneAnswer(url, database_id_of(_text_of(find_atws(result, "CI")))), None


def _text_of(element: etree._Element | None) -> str | None:
    return element.text if element is not None else None


def ticket_of(ticket: SoapEntity) -> TicketRef:
    """A TicketRef from a Ticket entity (id, TicketNumber, Status)."""
    status = ticket.get("Status")
    number = ticket.get("TicketNumber")
    return ticket_ref(
        ticket.get("id"),
        number.text if isinstance(number, XsdValue) else number,
        status.text if isinstance(status, XsdValue) else status,
    )


def answered_ticket(entities: Sequence[SoapEntity]) -> TicketRef | None:
    """The first Ticket an answer carries, or None (a note's answer, or an unusable Ticket)."""
    ticket = next((e for e in entities if e.entity_type == "Ticket"), None)
    try:
        return ticket_of(ticket) if ticket is not None else None
    except AutotaskUnavailable:
        # The write was applied: an odd Status must not turn it into a failure. The worker
        # reads the id with its XPath and can read the ticket back.
        return None


def _flag(parent: etree._Element, name: str) -> bool:
    """An xs:boolean child ("true"/"1"); absent or anything else: False."""
    return (parent.findtext(qname(name)) or "").strip().lower() in ("true", "1")


def entity_infos(content: etree._Element) -> tuple[dict[str, dict[str, bool]], int | None]:
    """GetEntityInfoResponse: per entity Name, its canCreate, canQuery, canUpdate (WSDL EntityInfo).

    Named as REST's entityInformation names them, so both flavours' answers read alike.
    """
    result = required_child(content, "GetEntityInfoResult")
    infos = {
        (info.findtext(qname("Name")) or "").strip(): {
            "canCreate": _flag(info, "CanCreate"),
            "canQuery": _flag(info, "CanQuery"),
            "canUpdate": _flag(info, "CanUpdate"),
        }
        for info in atws_children(result, "EntityInfo")
    }
    return infos, len(infos)


def field_infos(content: etree._Element) -> tuple[list[dict[str, object]], int | None]:
    """GetFieldInfoResponse: the entity's Fields (WSDL Field, PickListValue).

    Shaped as REST's entityInformation/fields rows (name, isPickList, picklistValues with value,
    label, isDefaultValue, sortOrder, parentValue, isActive), so both flavours read alike.
    """
    result = required_child(content, "GetFieldInfoResult")
    fields: list[dict[str, object]] = []
    for field in atws_children(result, "Field"):
        values = [
            {
                "value": (value.findtext(qname("Value")) or "").strip(),
                "label": value.findtext(qname("Label")) or "",
                "isDefaultValue": _flag(value, "IsDefaultValue"),
                "sortOrder": int((value.findtext(qname("SortOrder")) or "0").strip() or 0),
                # The WSDL spells this one element in lower camel case.
                "parentValue": (value.findtext(qname("parentValue")) or "").strip(),
                # minOccurs 0: a value that does not say is taken as active.
                "isActive": value.find(qname("IsActive")) is None or _flag(value, "IsActive"),
            }
            for value in atws_children(find_atws(field, "PicklistValues"), "PickListValue")
        ]
        fields.append(
            {
                "name": (field.findtext(qname("Name")) or "").strip(),
                "isPickList": _flag(field, "IsPickList"),
                "picklistValues": values,
            }
        )
    return fields, len(fields)
