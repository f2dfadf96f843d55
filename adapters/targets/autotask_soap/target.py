"""Autotask over SOAP (ATWS 1.6) as a `connector.ports.TicketTarget`: the worker's operations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.targets.autotask_common import (
    DESCRIPTION_MAX,
    EXTERNAL_ID_MAX,
    NOTE_DESCRIPTION_MAX,
    NOTE_TITLE_MAX,
    RESOLUTION_MAX,
    TITLE_MAX,
    AutotaskUnavailable,
    truncate,
)
from adapters.targets.autotask_soap.client import (
    AutotaskSoapClient,
    SoapEntity,
    build_queryxml,
)
from connector.domain import TicketDraft, TicketRef
from connector.errors import TargetRejected

if TYPE_CHECKING:
    from connector.ports import TicketTarget


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (Autotask stores UTC, §3 and §10)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class AutotaskSoapTarget:
    """Tickets and ticket notes in Autotask through its SOAP API (ATWS 1.6)."""

    def __init__(self, client: AutotaskSoapClient, *, note_type: int = 1, publish: int = 1) -> None:
        self.client = client
        # NoteType and Publish are tenant picklists; 1/1 is what the official samples send
        # (autotask-api.md §5).
        self.note_type = note_type
        self.publish = publish

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose ExternalID is `marker` (the lowest id if several), or None."""
        tickets = self.client.query(build_queryxml("Ticket", [("ExternalID", "equals", marker)]))
        refs = [_ref(ticket) for ticket in tickets]
        return min(refs, key=lambda ref: ref.ticket_id) if refs else None

    def create_ticket(self, draft: TicketDraft) -> TicketRef:
        """Create the ticket with ExternalID = marker; the answer carries its number and status."""
        if len(draft.marker) > EXTERNAL_ID_MAX:
            # Cutting the marker would break the lookup that keeps creates idempotent.
            raise TargetRejected(
                f"The ticket marker is {len(draft.marker)} characters long; Autotask's ExternalID"
                f" holds at most {EXTERNAL_ID_MAX}."
            )
        fields: dict[str, Any] = {
            "AccountID": draft.company_id,
            "Title": truncate(draft.title, TITLE_MAX),
            "Description": truncate(draft.description, DESCRIPTION_MAX),
            "Status": draft.status,
            "Priority": draft.priority,
            "QueueID": draft.queue_id,
            "DueDateTime": utc(draft.due_at) if draft.due_at is not None else None,
            "TicketCategory": draft.ticket_category,
            "TicketType": draft.ticket_type,
            "IssueType": draft.issue_type,
            "SubIssueType": draft.sub_issue_type,
            "Source": draft.source,
            "ExternalID": draft.marker,
        }
        # The client writes set fields in WSDL order and leaves the unset (None) ones out.
        [created] = self.client.create([SoapEntity("Ticket", fields)])
        return _ref(created)

    def add_note(self, ticket_id: int, title: str, text: str) -> int:
        """Add a TicketNote (NoteType and Publish from the constructor); return its id."""
        fields: dict[str, Any] = {
            "TicketID": ticket_id,
            # An empty title is left out: whether titles are required is a ticket category
            # setting (TicketNotesEntity.htm, autotask-api.md §5).
            "Title": truncate(title, NOTE_TITLE_MAX) if title else None,
            "Description": truncate(text, NOTE_DESCRIPTION_MAX),
            "NoteType": self.note_type,
            "Publish": self.publish,
        }
        [created] = self.client.create([SoapEntity("TicketNote", fields)])
        return int(created["id"])

    def set_status(self, ticket_id: int, status: int, *, resolution: str | None = None) -> None:
        """Change the status (and the resolution, when given) by sending the whole ticket back.

        SOAP update replaces the entity: "if no value is provided for non-ReadOnly fields, those
        fields are cleared" — so query first, then send the full entity (OFFICIAL
        UpdateCall.htm, autotask-api.md §10). Every field read, TicketNumber included, goes back
        with the type it came with; only Status (and Resolution) change.
        """
        ticket = self._read(ticket_id)
        if ticket is None:
            raise TargetRejected(f"Autotask has no Ticket with id {ticket_id} to update.")
        ticket["Status"] = status
        if resolution:
            ticket["Resolution"] = truncate(resolution, RESOLUTION_MAX)
        self.client.update([ticket])

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        """Return the ticket's id, number and status, or None if it does not exist."""
        ticket = self._read(ticket_id)
        return _ref(ticket) if ticket is not None else None

    def _read(self, ticket_id: int) -> SoapEntity | None:
        tickets = self.client.query(build_queryxml("Ticket", [("id", "equals", int(ticket_id))]))
        return next((t for t in tickets if t.get("id") == ticket_id), None)


def _ref(ticket: SoapEntity) -> TicketRef:
    """A TicketRef from a Ticket entity (id, TicketNumber, Status)."""
    try:
        status = ticket.get("Status")
        number = ticket.get("TicketNumber")
        return TicketRef(
            ticket_id=int(ticket["id"]),
            ticket_number=str(number) if number is not None else None,
            status=int(status) if status is not None else None,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise AutotaskUnavailable(
            f"Autotask answered a ticket without a usable id or status: {e}", ambiguous=False
        ) from e


if TYPE_CHECKING:

    def _satisfies_ticket_target(target: AutotaskSoapTarget) -> TicketTarget:
        """mypy checks here that the class structurally implements the port."""
        return target
