"""Autotask over REST as a `connector.ports.TicketTarget`: the worker's ticket operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.targets.autotask.errors import AutotaskUnavailable
from adapters.targets.autotask.rest.client import AutotaskRestClient
from connector.domain import OutboundRequest, TargetResponse, TicketRef

if TYPE_CHECKING:
    from connector.ports import TicketTarget


class AutotaskRestTarget:
    """Tickets and ticket notes in Autotask through its REST API."""

    def __init__(self, client: AutotaskRestClient) -> None:
        self.client = client

    def endpoint_url(self) -> str:
        """The zone's REST base URL, ending in `v1.0/` (`##ZONEURL##`)."""
        return self.client.base_url()

    def send(self, request: OutboundRequest) -> TargetResponse:
        """Send the rendered request as it is, with the API user's auth headers."""
        return self.client.send(request)

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose externalID is `marker` (the lowest id if several), or None."""
        items = self.client.query_tickets(
            [{"op": "eq", "field": "externalID", "value": marker}],
            include_fields=["id", "ticketNumber", "status"],
        )
        refs = [_ref(item) for item in items]
        return min(refs, key=lambda ref: ref.ticket_id) if refs else None

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
