"""Autotask over REST as a `connector.ports.TicketTarget`: the worker's ticket operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.targets.autotask.answers import api_usage, ticket_ref
from adapters.targets.autotask.rest.client import AutotaskRestClient
from connector.domain import ApiUsage, OutboundRequest, TargetResponse, TicketRef

if TYPE_CHECKING:
    pass


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

    def api_usage(self) -> ApiUsage:
        """ThresholdInformation: the database's hourly threshold, timeframe and count."""
        # ThresholdStatusResultModel: {"externalRequestThreshold", "requestThresholdTimeframe",
        # "currentTimeframeRequestCount"} (SPEC, autotask-api.md §8).
        answer = self.client.threshold_information()
        return api_usage(
            answer.get("externalRequestThreshold"),
            answer.get("requestThresholdTimeframe"),
            answer.get("currentTimeframeRequestCount"),
        )


def _ref(item: dict[str, Any]) -> TicketRef:
    """A TicketRef from a Tickets item (TicketModel: id, ticketNumber, status)."""
    return ticket_ref(item.get("id"), item.get("ticketNumber"), item.get("status"))
