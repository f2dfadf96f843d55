"""Shared by the payload tests: alerts, settings and render contexts as the worker builds them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.targets.autotask.profile import TICKET_LIMITS
from connector.domain import AlertStatus, IncomingAlert, Severity, Step, StepKind, TicketRef
from connector.integrations.settings import IntegrationSettings
from connector.payloads.context import MappedValues, RenderContext
from connector.payloads.formats import Format
from connector.payloads.samples import SAMPLE_CONTEXT
from connector.payloads.templates import compile_template
from connector.payloads.text import describe_alert
from connector.pipeline.routing import build_draft
from tests.adapters.sandbox.test_soap import ATWS, SOAP_ENV

TEMPLATES = Path(__file__).parents[3] / "payload_templates"
CONTOSO = 29683414
START = datetime(2024, 3, 21, 9, 30, tzinfo=UTC)
MARKER = "generic:fp-1:1"


def alert(**fields: Any) -> IncomingAlert:
    """A generic-source alert; `fields` override."""
    values: dict[str, Any] = {
        "source": "generic",
        "fingerprint": "fp-1",
        "status": AlertStatus.ACTIVE,
        "severity": Severity.ERROR,
        "title": "Disk full on srv01",
        "message": "/var is at 97 %",
        "host": "srv01",
        "tenant": "contoso",
        "monitor": "disk",
        "properties": {"instance": "/var", "value": "97", "threshold": "95"},
        "started_at": START,
        "occurred_at": START,
        "note": "",
        "actor": "",
    }
    values.update(fields)
    return IncomingAlert(**values)


SETTINGS = IntegrationSettings(
    default_company_id=CONTOSO,
    queue_id=29682833,
    issue_type=2,
    sub_issue_type=201,
    work_type=29682801,
    ticket_category=4,
    ticket_type=5,
    source=8,
    note_type=1,
    publish=1,
)


def context_for(
    event: IncomingAlert,
    *,
    ticket_id: int | None = 4242,
    settings: IntegrationSettings = SETTINGS,
) -> RenderContext:
    """A context the way the worker builds one: a draft, the event's note step, the ticket."""
    draft = build_draft(
        event,
        company_id=CONTOSO,
        status=settings.status_map[event.status],
        marker=MARKER,
        settings=settings,
        received_at=START,
        limits=TICKET_LIMITS,
    )
    # The draft's description is already cut to 8000; render the full one to test the cut here.
    draft = replace(draft, description=describe_alert(event, event.started_at or START))
    step = Step(
        StepKind.NOTE,
        title=f"{event.title} — {event.status.value}",
        text=f"Alert {event.status.value}.\nBy: {event.actor}\nNote: {event.note}",
    )
    ticket = TicketRef(ticket_id, "T20240321.0001") if ticket_id is not None else None
    return RenderContext.build(
        event,
        settings=settings,
        draft=draft,
        step=step,
        ticket=ticket,
    )


def render(source: str, fmt: Format = "json", context: RenderContext = SAMPLE_CONTEXT) -> str:
    return compile_template(source, fmt).render(context)


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def xml_children(payload: str) -> dict[str, str]:
    """{local name: text} of the Entity in a rendered SOAP envelope."""
    root = etree.fromstring(payload.encode("utf-8"))
    entity = root.find(f".//{{{ATWS}}}Entity")
    assert entity is not None, payload
    return {etree.QName(child).localname: child.text or "" for child in entity}


def soap_body_content(payload: str) -> etree._Element:
    root = etree.fromstring(payload.encode("utf-8"))
    body = root.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None and len(body) == 1
    return body[0]


def carried(text: str, fmt: Format) -> str:
    """What a payload can carry of `text`: lone surrogates become U+FFFD; XML drops controls."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    if fmt == "xml":
        text = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "", text)
    return text


TOKEN_ALERT = alert(
    fingerprint="LMD777",
    status=AlertStatus.ACKNOWLEDGED,
    severity=Severity.CRITICAL,
    title="CPU busy",
    message="CPU at 99 %",
    host="srv02",
    tenant="fabrikam",
    monitor="CPU",
    properties={
        "alert.type": "dataSourceAlert",
        "instance": "cpu1",
        "datapoint": "CPUBusyPercent",
        "value": "99",
        "threshold": "> 90",
        "autotask.accountid": "29683999",
    },
    started_at=datetime(2024, 3, 21, 9, 30, tzinfo=UTC),
    occurred_at=datetime(2024, 3, 21, 10, 0, tzinfo=UTC),
    note="on it",
    actor="jane",
)
TOKEN_CONTEXT = RenderContext(
    alert=TOKEN_ALERT,
    mapped=MappedValues(
        company_id=29683414,
        priority=4,
        status=13,
        queue_id=29682833,
        due_at=datetime(2024, 3, 22, 11, 30, tzinfo=UTC),
        issue_type=2,
        sub_issue_type=203,
        work_type=29682805,
        ticket_category=4,
        ticket_type=5,
        source=8,
        note_type=3,
        publish=2,
        zone_url="https://webservices2.autotask.net/ATServicesRest/V1.0/",
    ),
    ticket_id=128926,
    ticket_number="T20240321.0042",
    marker="lm:LMD777:1",
    description="CPU at 99 %\nHost: srv02",
    note_title="CPU busy — acknowledged",
    note_text="Alert acknowledged.\nBy: jane",
)

#: Every documented token and what it renders for TOKEN_CONTEXT.


def with_integration_code(envelope: str, code: str) -> bytes:
    """The rendered envelope with the tracking identifier, as the SOAP client adds it."""
    from lxml import etree

    from adapters.targets.autotask.soap.envelopes import add_integration_code

    root = etree.fromstring(envelope.encode("utf-8"))
    add_integration_code(root, code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
