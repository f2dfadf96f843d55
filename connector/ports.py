"""The contracts adapters implement. The core depends on these, never on a vendor module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from connector.domain import ApiCallRecord, TicketDraft, TicketRef

#: Receives every call a target makes, successful or not.
CallRecorder = Callable[[ApiCallRecord], None]


class TicketTarget(Protocol):
    """A ticket system (Autotask REST or SOAP) as the worker drives it.

    Every method raises only `connector.errors.TargetError` subclasses; `retryable` on the error
    says whether trying again may help.
    """

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose correlation marker (externalID) is `marker`, or None.

        Used to resolve a create whose outcome is unknown before creating again.
        """
        ...

    def create_ticket(self, draft: TicketDraft) -> TicketRef:
        """Create a ticket and return its id (and number when the system reports it)."""
        ...

    def add_note(self, ticket_id: int, title: str, text: str) -> int:
        """Add a note to the ticket; return the note's id."""
        ...

    def set_status(self, ticket_id: int, status: int, *, resolution: str | None = None) -> None:
        """Change only the ticket's status (and resolution, when given)."""
        ...

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        """Return the ticket's current id, number and status, or None if it does not exist."""
        ...
