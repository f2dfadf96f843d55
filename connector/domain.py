"""The connector's domain: alerts as sources report them, tickets as the planner sees them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from connector.errors import PayloadError


class AlertStatus(StrEnum):
    """Where an alert is in its lifecycle."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    CLEARED = "cleared"


class Severity(StrEnum):
    """How bad an alert is, on the connector's own four-step scale."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: info 0 … critical 3."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


class SeverityChanges(StrEnum):
    """What a change of an open alert's severity does to its ticket's priority."""

    #: The priority follows the severity both ways.
    FOLLOW = "follow"
    #: The priority follows a worse severity; a milder one changes nothing.
    ESCALATE = "escalate"
    #: The priority stays as the ticket was created.
    NEVER = "never"


#: Autotask's standard ticket priorities (picklist values of Tickets.priority in a new tenant).
DEFAULT_PRIORITY_LABELS = {1: "High", 2: "Medium", 3: "Low", 4: "Critical"}


@dataclass(frozen=True)
class IncomingAlert:
    """One alert event as a source adapter normalizes it; no I/O went into making it."""

    source: str
    fingerprint: str
    status: AlertStatus
    severity: Severity
    title: str
    message: str = ""
    host: str = ""
    tenant: str = ""
    monitor: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    #: When the source says this event happened; with fingerprint and status it identifies a repeat.
    occurred_at: datetime | None = None
    note: str = ""
    actor: str = ""
    #: The sender's own severity word (LogicMonitor's level, Datto RMM's priority, the
    #: Alertmanager severity label …) as it came, for the integration's per-source severity maps;
    #: "" when the sender gave none.
    raw_severity: str = ""


class TicketState(StrEnum):
    """The connector's knowledge of an alert's ticket."""

    #: A create was (or may have been) sent; its outcome is unknown until the marker is looked up.
    PENDING_CREATE = "pending_create"
    OPEN = "open"
    COMPLETED = "completed"
    #: A person completed or deleted the ticket in the ticket system (its webhook said so): the
    #: connector writes nothing more to it; the alert's next fire after a clear opens a new one.
    CLOSED_REMOTELY = "closed_remotely"


class TicketChangeAction(StrEnum):
    """What a ticket system's webhook says happened to a ticket."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    #: Not about a ticket: the ticket system switched the webhook itself off.
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class TicketChange:
    """One verified webhook callout of the ticket system about one of its tickets."""

    action: TicketChangeAction
    #: The ticket's id (None for a deactivation).
    ticket_id: int | None
    #: The ticket's status after the change, when the callout carries it.
    status: int | None = None
    #: When the change happened, as the ticket system says.
    occurred_at: datetime | None = None
    #: Who made it (the ticket system's person id), when it says.
    person: str | None = None
    #: The callout's own id, for the log.
    event_id: str = ""


@dataclass(frozen=True)
class TicketSnapshot:
    """What the planner knows of the alert's current ticket (from the TicketLink)."""

    state: TicketState
    ticket_id: int | None = None
    #: The alert status last applied to the ticket.
    applied_status: AlertStatus | None = None
    completed_at: datetime | None = None
    last_note_at: datetime | None = None
    #: When the ticket was created (the episode began): repeat notes count their interval from
    #: here until the first note.
    opened_at: datetime | None = None
    #: The severity the ticket's priority reflects; None when not known (older tickets).
    applied_severity: Severity | None = None
    #: The priority the connector last gave the ticket.
    priority: int | None = None


@dataclass(frozen=True)
class LifecyclePolicy:
    """How alert statuses drive the ticket; from the integration's settings."""

    status_map: Mapping[AlertStatus, int]
    complete_status: int = 5
    complete_on_clear: bool = True
    #: An acknowledgement sets the ticket's status (status_map); off, it only adds its note
    #: (and a new priority, when the severity changed). Escalations always set it.
    status_on_acknowledge: bool = True
    #: A clear also adds its text as a note: the update that completes the ticket does not
    #: carry it as the resolution (its request was edited so). Off: one update says it all.
    note_on_clear: bool = False
    #: Note a repeat of an active alert at most this often; None: never.
    repeat_note_interval: timedelta | None = timedelta(hours=1)
    #: A completed ticket is reopened when its alert fires again within this time after completion.
    reopen_window: timedelta = timedelta(hours=24)
    #: The statuses whose deliveries are switched on; events of the others change nothing.
    delivered: frozenset[AlertStatus] = frozenset(AlertStatus)
    #: What a severity change of an open alert does to its ticket's priority.
    severity_changes: SeverityChanges = SeverityChanges.FOLLOW
    #: The ticket priority per severity, and per monitor where an override fixes it.
    priority_map: Mapping[Severity, int] = field(default_factory=dict)
    monitor_priorities: Mapping[str, int] = field(default_factory=dict)
    #: Priority ids by name, for notes ("Priority changed from Critical to Medium").
    priority_labels: Mapping[int, str] = field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_LABELS)
    )

    def priority_of(self, event: IncomingAlert) -> int | None:
        """The priority the event's ticket should have; None when the map names none."""
        if event.monitor and event.monitor in self.monitor_priorities:
            return self.monitor_priorities[event.monitor]
        return self.priority_map.get(event.severity)

    def priority_label(self, priority: int | None) -> str:
        """A priority's name, or its id when it has no known name."""
        if priority is None:
            return "unknown"
        return self.priority_labels.get(priority) or str(priority)


class StepKind(StrEnum):
    """One change to make in the ticket system."""

    CREATE = "create"
    NOTE = "note"
    SET_STATUS = "set_status"
    SET_PRIORITY = "set_priority"
    COMPLETE = "complete"
    REOPEN = "reopen"


class Outcome(StrEnum):
    """What handling an event did to the ticket, for the record and for tests."""

    CREATED = "created"
    NOTED = "noted"
    UPDATED = "updated"
    COMPLETED = "completed"
    REOPENED = "reopened"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Step:
    """A single ticket operation; `status` for create/set_status/complete/reopen, `priority` for
    create/set_priority (and set_status/reopen when the severity changed too), text for notes."""

    kind: StepKind
    status: int | None = None
    title: str = ""
    text: str = ""
    priority: int | None = None


@dataclass(frozen=True)
class Plan:
    """The planner's decision for one event."""

    outcome: Outcome
    steps: tuple[Step, ...] = ()
    reason: str = ""
    #: The steps start a new ticket episode (the previous ticket is completed and stays so).
    new_episode: bool = False
    #: Once done, the ticket's priority reflects the event's severity (a create, a priority
    #: change, or a severity change that keeps the priority).
    applies_severity: bool = False


@dataclass(frozen=True)
class TicketDraft:
    """Everything needed to create a ticket, already mapped to Autotask ids."""

    company_id: int
    title: str
    description: str
    status: int
    priority: int
    #: The correlation marker (the ticket's externalID) that makes creates idempotent.
    marker: str
    queue_id: int | None = None
    due_at: datetime | None = None
    ticket_category: int | None = None
    ticket_type: int | None = None
    issue_type: int | None = None
    sub_issue_type: int | None = None
    #: The work type: Autotask's billing (allocation) code, REST billingCodeID, SOAP
    #: AllocationCodeID.
    work_type: int | None = None
    source: int | None = None


class RequestAction(StrEnum):
    """What a delivery request does to the ticket."""

    #: Open the ticket (the Active status only); the answer carries the new ticket's id.
    CREATE = "create"
    #: Change the ticket (its status, and on Cleared its completion).
    UPDATE = "update"
    #: Add a note to the ticket.
    NOTE = "note"


@dataclass(frozen=True)
class OutboundRequest:
    """One rendered delivery request, ready for the target to authenticate and send."""

    action: RequestAction
    method: str
    url: str
    body: str
    #: "json" or "xml": how the body is written and how the answer is read.
    body_format: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetResponse:
    """What the ticket system answered to an OutboundRequest, and the request as it was sent."""

    status: int
    body: str
    #: The request as sent: method, url, headers and body, with every secret redacted.
    sent: Mapping[str, object]
    #: The ticket the answer describes, when the target can read it natively (SOAP entities).
    ticket: TicketRef | None = None


@dataclass(frozen=True)
class TicketRef:
    """A ticket as the target knows it."""

    ticket_id: int
    ticket_number: str | None = None
    status: int | None = None


@dataclass(frozen=True)
class ApiCallRecord:
    """One HTTP call to the ticket system, for the activity log."""

    at: datetime
    method: str
    entity: str
    http_status: int | None
    execution_ms: float
    records: int | None = None
    error: str | None = None
    #: The call as sent, {"url", "headers", "body"}, and as answered, {"status", "headers",
    #: "body"}: secrets redacted and bodies cut by the adapter; None when not known (no answer).
    request: Mapping[str, Any] | None = None
    response: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ZoneAnswer:
    """What a zone lookup answered: the zone's API address, and which database of the ticket
    system the API user is in (None when the answer does not say)."""

    url: str
    database_id: str | None = None


@dataclass(frozen=True)
class ApiUsage:
    """What the ticket system reports of a database's API usage: calls counted in its current
    timeframe (every integration and tool of the tenant), its threshold, the timeframe's length."""

    count: int
    threshold: int
    timeframe_minutes: int


@dataclass(frozen=True)
class ParsedAlert:
    """One item of a webhook that became an alert, with its place in the webhook's list."""

    index: int
    alert: IncomingAlert


#: Where a SenderSnippet's `where` or `text` leaves room for the sender's webhook token; the
#: admin form puts a newly issued token there.
WEBHOOK_TOKEN_PLACEHOLDER = "<webhook token>"  # noqa: S105 (a placeholder, not a secret)


@dataclass(frozen=True)
class SenderSnippet:
    """What to paste on the sending side: where it goes, and the text, filled for this service."""

    title: str
    #: Where it goes, in the sender's own words (menu path, field).
    where: str
    text: str
    #: The content type to choose there, if the sender asks for one.
    content_type: str | None = None


@dataclass(frozen=True)
class RefusedAlert:
    """One item of a webhook that could not become an alert, and why.

    `webhook` is that item alone as a webhook body of its own (JSON-able: for Alertmanager with
    the group's fields), kept so that it can be looked at and replayed without the others.
    """

    index: int
    message: str
    #: The fields refused, by path ("alerts.2.title"), as a 400 would name them.
    details: Mapping[str, Any]
    webhook: Any


@dataclass(frozen=True)
class ParsedWebhook:
    """A webhook judged item by item: the alerts that could be read, the items that could not."""

    alerts: tuple[ParsedAlert, ...] = ()
    refused: tuple[RefusedAlert, ...] = ()

    def refusal(self) -> PayloadError:
        """One 400 naming every bad field of every refused item (when no item could be read)."""
        errors: dict[str, Any] = {}
        for item in self.refused:
            errors.update(item.details)
        return PayloadError.naming(errors)

    def all_or_nothing(self) -> list[IncomingAlert]:
        """Every alert, or the refusal naming every bad field when any item was refused."""
        if self.refused:
            raise self.refusal()
        return [parsed.alert for parsed in self.alerts]


# -- what a ticket system tells an admin setting an integration up -------------------------------


class CheckName(StrEnum):
    """The steps of a connection check, in the order they run."""

    #: The zone lookup: does the ticket system know the API user, and where does it live?
    ZONE_LOOKUP = "zone_lookup"
    #: A call that needs nothing but the credentials (username, secret, tracking identifier).
    CREDENTIALS = "credentials"
    READ_TICKETS = "read_tickets"
    CREATE_TICKETS = "create_tickets"
    UPDATE_TICKETS = "update_tickets"
    READ_COMPANIES = "read_companies"
    CREATE_NOTES = "create_notes"


#: What each check is called on a page.
CHECK_LABELS: Mapping[CheckName, str] = {
    CheckName.ZONE_LOOKUP: "Zone lookup",
    CheckName.CREDENTIALS: "Username, secret and tracking identifier",
    CheckName.READ_TICKETS: "Read tickets",
    CheckName.CREATE_TICKETS: "Create tickets",
    CheckName.UPDATE_TICKETS: "Update tickets",
    CheckName.READ_COMPANIES: "Read companies",
    CheckName.CREATE_NOTES: "Add ticket notes",
}


@dataclass(frozen=True)
class ConnectionCheck:
    """One step of a connection check: whether it passed, and why in an admin's words."""

    name: CheckName
    ok: bool
    #: What passed, or what is wrong and what to do about it.
    message: str
    #: Not run, because an earlier check it needs failed (`ok` is then False).
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        """The check as the JSON API answers it."""
        return {
            "name": self.name.value,
            "label": CHECK_LABELS[self.name],
            "ok": self.ok,
            "skipped": self.skipped,
            "message": self.message,
        }


@dataclass(frozen=True)
class ConnectionReport:
    """Every step of a connection check; a failed one is data, not an error."""

    checks: tuple[ConnectionCheck, ...]
    #: The address the zone lookup gave, when it answered.
    zone_url: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON API answers it."""
        return {
            "ok": self.ok,
            "zone_url": self.zone_url,
            "checks": [check.to_json() for check in self.checks],
        }


@dataclass(frozen=True)
class Choice:
    """One value of a ticket system's own list (a queue, a status …) an admin picks by name."""

    id: int
    label: str
    active: bool = True
    #: The value of the parent list it belongs to (a sub-issue type's issue type), if any.
    parent_id: int | None = None
    #: The ticket system's default of the list.
    default: bool = False

    def to_json(self) -> dict[str, Any]:
        """The choice as the JSON API answers it."""
        return {
            "id": self.id,
            "label": self.label,
            "active": self.active,
            "parent_id": self.parent_id,
            "default": self.default,
        }


@dataclass(frozen=True)
class TicketPicklists:
    """The ticket system's own lists an integration's ticket settings pick from."""

    queues: tuple[Choice, ...] = ()
    statuses: tuple[Choice, ...] = ()
    priorities: tuple[Choice, ...] = ()
    ticket_categories: tuple[Choice, ...] = ()
    issue_types: tuple[Choice, ...] = ()
    #: Each with its issue type as `parent_id`.
    sub_issue_types: tuple[Choice, ...] = ()
    sources: tuple[Choice, ...] = ()
    ticket_types: tuple[Choice, ...] = ()
    work_types: tuple[Choice, ...] = ()
    note_types: tuple[Choice, ...] = ()
    #: Who sees a note (all users, internal only …).
    note_publish: tuple[Choice, ...] = ()

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """Every list by name, as the JSON API answers them."""
        return {
            name: [choice.to_json() for choice in getattr(self, name)]
            for name in self.__dataclass_fields__
        }


@dataclass(frozen=True)
class CompanyChoice:
    """A company of the ticket system an admin picks by name."""

    id: int
    name: str
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        """The company as the JSON API answers it."""
        return {"id": self.id, "name": self.name, "active": self.active}


# -- redaction: the one way a secret is kept out of what is shown, stored or logged -------------

#: Stands in for a secret wherever one would otherwise appear.
REDACTED = "<redacted>"


def secret_forms(*secrets: str) -> tuple[str, ...]:
    """Each secret as text may carry it: as is, XML-escaped and JSON-escaped; longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update({secret, xml_escape(secret), json.dumps(secret)[1:-1]})
    return tuple(sorted(forms, key=len, reverse=True))


def redact_text(text: str, forms: Sequence[str], marker: str = REDACTED) -> str:
    """`text` with every form of every secret (`secret_forms`) replaced by `marker`."""
    for form in forms:
        text = text.replace(form, marker)
    return text


def redact(value: Any, secrets: Sequence[str]) -> Any:
    """`value` (text, or JSON-like containers of it) with every form of every secret redacted."""
    return _redact(value, secret_forms(*secrets))


def _redact(value: Any, forms: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, forms)
    if isinstance(value, Mapping):
        return {_redact(k, forms): _redact(v, forms) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, forms) for item in value]
    return value
