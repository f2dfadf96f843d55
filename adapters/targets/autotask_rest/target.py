"""Autotask over REST as a `connector.ports.TicketTarget`: the worker's ticket operations."""

from __future__ import annotations

import logging
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
from adapters.targets.autotask_rest.client import AutotaskRestClient
from connector.domain import TicketDraft, TicketRef
from connector.errors import TargetError, TargetRejected

if TYPE_CHECKING:
    from connector.ports import TicketTarget

logger = logging.getLogger(__name__)


def wire_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a Z; a naive datetime is taken as UTC (Autotask stores UTC, §3)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AutotaskRestTarget:
    """Tickets and ticket notes in Autotask through its REST API."""

    def __init__(self, client: AutotaskRestClient, *, note_type: int = 1, publish: int = 1) -> None:
        self.client = client
        # NoteType and Publish are tenant picklists; 1/1 is what the official samples send
        # (autotask-api.md §5).
        self.note_type = note_type
        self.publish = publish

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose externalID is `marker` (the lowest id if several), or None."""
        items = self.client.query_tickets(
            [{"op": "eq", "field": "externalID", "value": marker}],
            include_fields=["id", "ticketNumber", "status"],
        )
        refs = [_ref(item) for item in items]
        return min(refs, key=lambda ref: ref.ticket_id) if refs else None

    def create_ticket(self, draft: TicketDraft) -> TicketRef:
        """Create the ticket with externalID = marker; then read back its number and status."""
        if len(draft.marker) > EXTERNAL_ID_MAX:
            # Cutting the marker would break the lookup that keeps creates idempotent.
            raise TargetRejected(
                f"The ticket marker is {len(draft.marker)} characters long; Autotask's externalID"
                f" holds at most {EXTERNAL_ID_MAX}."
            )
        body: dict[str, Any] = {
            "companyID": draft.company_id,
            "title": truncate(draft.title, TITLE_MAX),
            "description": truncate(draft.description, DESCRIPTION_MAX),
            "status": draft.status,
            "priority": draft.priority,
            "queueID": draft.queue_id,
            "dueDateTime": wire_datetime(draft.due_at) if draft.due_at is not None else None,
            "ticketCategory": draft.ticket_category,
            "ticketType": draft.ticket_type,
            "issueType": draft.issue_type,
            "subIssueType": draft.sub_issue_type,
            "source": draft.source,
            "externalID": draft.marker,
        }
        ticket_id = self.client.create_ticket(body)
        # The ticket exists now: failing here would make the worker retry a committed create,
        # so a failed read-back only costs the ticket number.
        try:
            item = self.client.get_ticket(ticket_id)
        except TargetError as e:
            logger.warning(
                "autotask.ticket.read_back_failed", extra={"ticket_id": ticket_id, "error": str(e)}
            )
            return TicketRef(ticket_id)
        if item is None:
            return TicketRef(ticket_id)
        ref = _ref(item)
        return TicketRef(ticket_id, ref.ticket_number, ref.status)

    def add_note(self, ticket_id: int, title: str, text: str) -> int:
        """Add a note (noteType and publish from the constructor); return the note's id."""
        body: dict[str, Any] = {
            "description": truncate(text, NOTE_DESCRIPTION_MAX),
            "noteType": self.note_type,
            "publish": self.publish,
            # An empty title is left out: whether titles are required is a ticket category
            # setting (TicketNotesEntity.htm, autotask-api.md §5).
            "title": truncate(title, NOTE_TITLE_MAX) if title else None,
        }
        return self.client.create_note(ticket_id, body)

    def set_status(self, ticket_id: int, status: int, *, resolution: str | None = None) -> None:
        """PATCH only the status (and the resolution, when given)."""
        self.client.patch_ticket(
            {
                "id": ticket_id,
                "status": status,
                "resolution": truncate(resolution, RESOLUTION_MAX) if resolution else None,
            }
        )

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        """Return the ticket's id, number and status, or None if it does not exist."""
        item = self.client.get_ticket(ticket_id)
        return _ref(item) if item is not None else None


def _ref(item: dict[str, Any]) -> TicketRef:
    """A TicketRef from a Tickets item (TicketModel: id, ticketNumber, status)."""
    try:
        ticket_id = int(item["id"])
        status = item.get("status")
        number = item.get("ticketNumber")
        return TicketRef(
            ticket_id=ticket_id,
            ticket_number=str(number) if number is not None else None,
            status=int(status) if status is not None else None,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise AutotaskUnavailable(
            f"Autotask answered a ticket without a usable id or status: {e}", ambiguous=False
        ) from e


if TYPE_CHECKING:

    def _satisfies_ticket_target(target: AutotaskRestTarget) -> TicketTarget:
        """mypy checks here that the class structurally implements the port."""
        return target
