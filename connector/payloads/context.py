"""The render context: everything a payload template can read for one alert event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from connector.domain import IncomingAlert, Step, StepKind, TicketDraft, TicketRef
from connector.integrations.settings import IntegrationSettings
from connector.payloads.text import describe_alert
from connector.payloads.tokens import TOKENS

#: The hidden variables `##…##` tokens are rewritten to look up.
TOKENS_TABLE = "__connector_tokens__"
PROPERTIES_TABLE = "__connector_properties__"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def wire_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a Z; a naive datetime is taken as UTC (Autotask stores UTC, §3)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The steps whose update sets the ticket's status.
_STATUS_CHANGES = frozenset({StepKind.SET_STATUS, StepKind.COMPLETE, StepKind.REOPEN})
#: The steps whose update may set the ticket's priority: a status change carries a severity
#: change's new priority in the same update (one call, not two).
_PRIORITY_CHANGES = frozenset({StepKind.SET_PRIORITY, StepKind.SET_STATUS, StepKind.REOPEN})


@dataclass(frozen=True)
class MappedValues:
    """The Autotask values the integration's mappings chose for one alert event."""

    company_id: int | None = None
    priority: int | None = None
    status: int | None = None
    queue_id: int | None = None
    due_at: datetime | None = None
    issue_type: int | None = None
    sub_issue_type: int | None = None
    work_type: int | None = None
    ticket_category: int | None = None
    ticket_type: int | None = None
    source: int | None = None
    note_type: int | None = None
    publish: int | None = None
    zone_url: str = ""


@dataclass(frozen=True)
class RenderContext:
    """Everything a payload template can read for one alert event."""

    alert: IncomingAlert
    mapped: MappedValues = field(default_factory=MappedValues)
    ticket_id: int | None = None
    ticket_number: str = ""
    marker: str = ""
    description: str = ""
    note_title: str = ""
    note_text: str = ""
    #: What an update changes: the ticket's status, its priority (a severity change), or both;
    #: None for what it leaves alone, and for creates and notes.
    change_status: int | None = None
    change_priority: int | None = None

    @classmethod
    def build(
        cls,
        alert: IncomingAlert,
        *,
        settings: IntegrationSettings | None = None,
        draft: TicketDraft | None = None,
        step: Step | None = None,
        ticket: TicketRef | None = None,
        marker: str = "",
        zone_url: str = "",
    ) -> RenderContext:
        """The context for `alert`: mapped values from `draft`, status from `step`, note text."""
        status: int | None = None
        if step is not None and step.status is not None:
            status = step.status
        elif draft is not None:
            status = draft.status
        elif settings is not None:
            status = settings.status_map.get(alert.status)
        priority = draft.priority if draft else None
        if step is not None and step.priority is not None:
            priority = step.priority
        mapped = MappedValues(
            company_id=draft.company_id if draft else None,
            priority=priority,
            status=status,
            queue_id=draft.queue_id if draft else None,
            due_at=draft.due_at if draft else None,
            issue_type=draft.issue_type if draft else None,
            sub_issue_type=draft.sub_issue_type if draft else None,
            work_type=draft.work_type if draft else None,
            ticket_category=draft.ticket_category if draft else None,
            ticket_type=draft.ticket_type if draft else None,
            source=draft.source if draft else None,
            note_type=settings.note_type if settings else None,
            publish=settings.publish if settings else None,
            zone_url=zone_url,
        )
        return cls(
            alert=alert,
            mapped=mapped,
            ticket_id=ticket.ticket_id if ticket else None,
            ticket_number=(ticket.ticket_number or "") if ticket else "",
            marker=marker or (draft.marker if draft else ""),
            description=draft.description if draft else describe_alert(alert, alert.started_at),
            note_title=step.title if step else "",
            note_text=step.text if step else "",
            change_status=step.status if step and step.kind in _STATUS_CHANGES else None,
            change_priority=step.priority if step and step.kind in _PRIORITY_CHANGES else None,
        )

    def variables(self) -> dict[str, object]:
        """The Jinja variables (see the package docstring); fresh containers on every call."""
        a = self.alert
        props = dict(a.properties)
        m = self.mapped
        alert: dict[str, object] = {
            "id": a.fingerprint,
            "fingerprint": a.fingerprint,
            "status": a.status.value,
            "type": props.get("alert.type") or a.source,
            "source": a.source,
            "level": a.severity.value,
            "severity": a.severity.value,
            "title": a.title,
            "message": a.message,
            "host": a.host,
            "tenant": a.tenant,
            "datasource": a.monitor,
            "monitor": a.monitor,
            "instance": props.get("instance", ""),
            "datapoint": props.get("datapoint", ""),
            "value": props.get("value", ""),
            "threshold": props.get("threshold", ""),
            "start": _iso(a.started_at),
            "occurred": _iso(a.occurred_at),
            "note": a.note,
            "admin": a.actor,
            "actor": a.actor,
            "properties": props,
        }
        ticket: dict[str, object] = {
            "id": self.ticket_id,
            "number": self.ticket_number,
            "marker": self.marker,
            "description": self.description,
        }
        note: dict[str, object] = {"title": self.note_title, "text": self.note_text}
        autotask: dict[str, object] = {
            "company_id": m.company_id,
            "account_id": m.company_id,
            "priority": m.priority,
            "status": m.status,
            "queue_id": m.queue_id,
            "due_date": wire_datetime(m.due_at) if m.due_at is not None else None,
            "issue_type": m.issue_type,
            "sub_issue_type": m.sub_issue_type,
            "work_type": m.work_type,
            "ticket_category": m.ticket_category,
            "ticket_type": m.ticket_type,
            "source": m.source,
            "note_type": m.note_type,
            "publish": m.publish,
            # Always blank: no template ever sees the tracking identifier (a filter could show
            # it in a preview, issue 15). The targets add it after rendering: the REST header,
            # and SOAP's AutotaskIntegrations/IntegrationCode when the envelope leaves it empty.
            "integration_code": "",
            "zone_url": m.zone_url,
        }
        change: dict[str, object] = {
            "status": self.change_status,
            "priority": self.change_priority,
        }
        groups: dict[str, dict[str, object]] = {
            "alert": alert,
            "ticket": ticket,
            "note": note,
            "autotask": autotask,
            "change": change,
        }
        tokens: dict[str, object] = {}
        for spec in TOKENS:
            group, key = spec.variable.split(".")
            tokens[spec.name] = groups[group][key]
        return {
            **groups,
            "properties": dict(props),
            "tokens": tokens,
            TOKENS_TABLE: dict(tokens),
            PROPERTIES_TABLE: _LenientProperties(props),
        }


class _LenientProperties(dict[str, str]):
    """Alert properties for `##name##` tokens: a property the alert lacks renders empty."""

    def __missing__(self, key: str) -> str:
        return ""
