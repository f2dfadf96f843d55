"""The contracts adapters implement. The core depends on these, never on a vendor module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from connector.domain import ApiCallRecord, OutboundRequest, TargetResponse, TicketRef

#: Receives every call a target makes, successful or not.
CallRecorder = Callable[[ApiCallRecord], None]


class TicketTarget(Protocol):
    """A ticket system (Autotask REST or SOAP) as the worker drives it.

    The worker renders each step's delivery request; the target authenticates, sends and reads
    it. Every method raises only `connector.errors.TargetError` subclasses; `retryable` on the
    error says whether trying again may help.
    """

    def endpoint_url(self) -> str:
        """The API user's zone address (looked up once and cached): `##ZONEURL##` in requests."""
        ...

    def send(self, request: OutboundRequest) -> TargetResponse:
        """Send a rendered request with the integration's credentials; a non-success is raised.

        The URL must be on an allowed Autotask host. An UPDATE that the API applies as a whole
        entity (SOAP) is merged onto the ticket's current fields first, so fields the request
        leaves out keep their values; `TargetResponse.sent` is what went over the wire.
        """
        ...

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose correlation marker (externalID) is `marker`, or None.

        Used to resolve a create whose outcome is unknown before creating again.
        """
        ...

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        """Return the ticket's current id, number and status, or None if it does not exist."""
        ...
