"""The built-in `##NAME##` tokens and the token grammar, shared by templates, URLs and headers.

`##NAME##` is a built-in token (any case) or an alert property by its exact name; a name shaped
like a built-in (capitals, no dot) that is not one is refused as misspelt. `TOKENS` lists each
built-in with its Jinja variable and meaning; payload_templates/README.md is the admins' copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenSpec:
    """One built-in `##NAME##` token: its Jinja variable and what it means."""

    name: str
    variable: str
    meaning: str


TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("ALERTID", "alert.id", "The source's id for the alert (its fingerprint)."),
    TokenSpec("ALERTSTATUS", "alert.status", "active, acknowledged, escalated or cleared."),
    TokenSpec("ALERTTYPE", "alert.type", "The alert's `alert.type` property, else the source."),
    TokenSpec("ALERTSOURCE", "alert.source", "The source adapter's slug, e.g. `generic`."),
    TokenSpec("LEVEL", "alert.level", "The severity: critical, error, warning or info."),
    TokenSpec("TITLE", "alert.title", "The alert's title (cut to 255 characters in tickets)."),
    TokenSpec("MESSAGE", "alert.message", "The alert's message text."),
    TokenSpec("HOST", "alert.host", "The host (device, resource) the alert is about."),
    TokenSpec("TENANT", "alert.tenant", "The source's tenant, site or organization."),
    TokenSpec("DATASOURCE", "alert.datasource", "The monitor, check or datasource."),
    TokenSpec("INSTANCE", "alert.instance", "The alert's `instance` property."),
    TokenSpec("DATAPOINT", "alert.datapoint", "The alert's `datapoint` property."),
    TokenSpec("VALUE", "alert.value", "The alert's `value` property (the measured value)."),
    TokenSpec("THRESHOLD", "alert.threshold", "The alert's `threshold` property."),
    TokenSpec("START", "alert.start", "When the alert started, ISO 8601; empty if unknown."),
    TokenSpec("OCCURRED", "alert.occurred", "When this event happened, ISO 8601; may be empty."),
    TokenSpec("NOTE", "alert.note", "The note or comment that came with the event."),
    TokenSpec("ADMIN", "alert.admin", "Who acknowledged, escalated or cleared the alert."),
    TokenSpec(
        "DESCRIPTION",
        "ticket.description",
        "The ticket description the connector composes: message, host, monitor, severity,"
        " start and source.",
    ),
    TokenSpec(
        "EXTERNALTICKETID",
        "ticket.id",
        "The Autotask ticket id stored for the alert; empty before the ticket exists.",
    ),
    TokenSpec("TICKETNUMBER", "ticket.number", "The ticket number (T20240101.0001), if known."),
    TokenSpec(
        "MARKER", "ticket.marker", "The correlation marker sent as the ticket's external id."
    ),
    TokenSpec("NOTETITLE", "note.title", "The title of the note the connector composed."),
    TokenSpec("NOTETEXT", "note.text", "The text of the note the connector composed."),
    TokenSpec("ACCOUNTID", "autotask.company_id", "The Autotask company (account) id."),
    TokenSpec("COMPANYID", "autotask.company_id", "Same as ACCOUNTID."),
    TokenSpec("PRIORITY", "autotask.priority", "The ticket priority mapped from the severity."),
    TokenSpec("STATUS", "autotask.status", "The ticket status mapped from the alert status."),
    TokenSpec("QUEUEID", "autotask.queue_id", "The queue id; unset if none is configured."),
    TokenSpec(
        "DUEDATE",
        "autotask.due_date",
        "The due date, UTC, as Autotask reads it (2024-01-01T09:00:00Z).",
    ),
    TokenSpec("ISSUETYPE", "autotask.issue_type", "The issue type id; may be unset."),
    TokenSpec("SUBISSUETYPE", "autotask.sub_issue_type", "The sub-issue type id; may be unset."),
    TokenSpec(
        "WORKTYPE",
        "autotask.work_type",
        "The work type id (the ticket's billing code); may be unset.",
    ),
    TokenSpec(
        "TICKETCATEGORY", "autotask.ticket_category", "The ticket category id; may be unset."
    ),
    TokenSpec("TICKETTYPE", "autotask.ticket_type", "The ticket type id; may be unset."),
    TokenSpec("SOURCE", "autotask.source", "The ticket source picklist id; may be unset."),
    TokenSpec("NOTETYPE", "autotask.note_type", "The note type picklist id."),
    TokenSpec("PUBLISH", "autotask.publish", "The note publish picklist id."),
    TokenSpec(
        "INTEGRATIONCODE",
        "autotask.integration_code",
        "Always blank: the connector adds the API tracking identifier itself after rendering"
        " (the REST header; an empty SOAP IntegrationCode is filled in).",
    ),
    TokenSpec(
        "ZONEURL",
        "autotask.zone_url",
        "The API user's zone address as the zone lookup gives it (payload_templates/README.md"
        " shows it per API flavour); for request URLs.",
    ),
)
TOKEN_NAMES = frozenset(spec.name for spec in TOKENS)

#: `##NAME##`: a built-in token (any case) or an alert property by its exact name.
TOKEN_PATTERN = re.compile(r"##([A-Za-z0-9_][A-Za-z0-9_.:\-]*)##")
#: A name shaped like a built-in token; one that is not built in is refused as misspelt.
_BUILTIN_SHAPE = re.compile(r"[A-Z][A-Z0-9_]*")


class UnknownToken(ValueError):
    """A `##NAME##` shaped like a built-in token that is none: a misspelt token."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown token ##{name}##")
        self.name = name


def builtin_token(name: str) -> str | None:
    """The built-in token `name` spells (in any case), or None for an alert property's name.

    UnknownToken if `name` looks like a built-in token but is none.
    """
    upper = name.upper()
    if upper in TOKEN_NAMES:
        return upper
    if _BUILTIN_SHAPE.fullmatch(name):
        raise UnknownToken(name)
    return None
