"""Autotask over SOAP (ATWS 1.6) as a `connector.ports.TicketTarget`: the worker's operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lxml import etree

from adapters.targets.autotask.answers import api_usage
from adapters.targets.autotask.soap.answers import ticket_of
from adapters.targets.autotask.soap.atws import SoapEntity
from adapters.targets.autotask.soap.client import AutotaskSoapClient
from adapters.targets.autotask.soap.envelopes import (
    build_id_queryxml,
    build_queryxml,
    entity_id,
    entity_type,
    merge_entity,
    parse_envelope,
    replace_entity,
)
from connector.domain import ApiUsage, OutboundRequest, RequestAction, TargetResponse, TicketRef
from connector.errors import TargetRejected

if TYPE_CHECKING:
    from connector.ports import ApiUsageReporter, TicketTarget


class AutotaskSoapTarget:
    """Tickets and ticket notes in Autotask through its SOAP API (ATWS 1.6)."""

    def __init__(self, client: AutotaskSoapClient) -> None:
        self.client = client

    def endpoint_url(self) -> str:
        """The zone's SOAP endpoint, the `atws.asmx` address (`##ZONEURL##`)."""
        return self.client.zone_url()

    def send(self, request: OutboundRequest) -> TargetResponse:
        """Send the rendered envelope; a Ticket update is merged onto the ticket as it is first."""
        envelope = parse_envelope(request.body)  # an unusable one is refused before any call
        self.client.check_request_url(request.url)
        if request.action is RequestAction.UPDATE and envelope.name == "update":
            for element in envelope.entities():
                if entity_type(element) == "Ticket":
                    self._merge(element)
        return self.client.send_envelope(request, envelope)

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        """Return the ticket whose ExternalID is `marker` (the lowest id if several), or None."""
        tickets = self.client.query(build_queryxml("Ticket", [("ExternalID", "equals", marker)]))
        refs = [ticket_of(ticket) for ticket in tickets]
        return min(refs, key=lambda ref: ref.ticket_id) if refs else None

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        """Return the ticket's id, number and status, or None if it does not exist."""
        ticket = self._read(ticket_id)
        return ticket_of(ticket) if ticket is not None else None

    #: Ids per query: one OR condition each, far below QueryXML's 500 ORs and 500 entities per
    #: answer (autotask-api.md §8, §10).
    status_batch = 200

    def ticket_statuses(self, ticket_ids: Sequence[int]) -> dict[int, int | None]:
        """One query, its ids OR-ed: each existing ticket's status (connector.ports)."""
        if not ticket_ids:
            return {}
        tickets = self.client.query(build_id_queryxml("Ticket", [int(i) for i in ticket_ids]))
        return {ref.ticket_id: ref.status for ref in (ticket_of(ticket) for ticket in tickets)}

    def api_usage(self) -> ApiUsage:
        """getThresholdAndUsageInfo: the database's hourly threshold, timeframe and count."""
        # Its message reads "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60;
        # numberOfExternalRequest: 0;" (trepidity fixture, autotask-api.md §10).
        usage = self.client.threshold_and_usage()
        return api_usage(
            usage.get("ThresholdOfExternalRequest"),
            usage.get("TimeframeOfLimitation"),
            usage.get("numberOfExternalRequest"),
        )

    def _merge(self, element: etree._Element) -> None:
        """Replace a template's `<Entity xsi:type="Ticket">` by the ticket with its fields applied.

        SOAP update replaces the entity: "if no value is provided for non-ReadOnly fields, those
        fields are cleared" (OFFICIAL UpdateCall.htm, autotask-api.md §10). So the ticket is
        queried and sent back whole, every field with the type it came with, and the fields the
        template writes win: a queue or priority an engineer changed survives the update.

        The read is made here, right before the write, every time; it is never replaced by an
        earlier answer (the create's entity, the last update's): whatever it returns is written
        back, so an older copy would undo what an engineer changed since. It costs one call per
        update (payload_templates/README.md "Calls per alert").
        """
        ticket_id = entity_id(element)
        current = self._read(ticket_id)
        if current is None:
            raise TargetRejected(f"Autotask has no Ticket with id {ticket_id} to update.")
        replace_entity(element, merge_entity(current, element))

    def _read(self, ticket_id: int) -> SoapEntity | None:
        tickets = self.client.query(build_queryxml("Ticket", [("id", "equals", int(ticket_id))]))
        return next((t for t in tickets if t.get("id") == ticket_id), None)


if TYPE_CHECKING:

    def _satisfies_ticket_target(target: AutotaskSoapTarget) -> TicketTarget:
        """mypy checks here that the class structurally implements the port."""
        return target

    def _reports_api_usage(target: AutotaskSoapTarget) -> ApiUsageReporter:
        """mypy checks here that the class reports the database's API usage."""
        return target
