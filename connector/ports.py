"""The contracts adapters implement. The core depends on these, never on a vendor module."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from connector.domain import (
    AlertStatus,
    ApiCallRecord,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketRef,
)
from connector.errors import TargetError, TargetRefusal

#: Receives every call a target makes, successful or not.
CallRecorder = Callable[[ApiCallRecord], None]


@dataclass(frozen=True)
class TargetProfile:
    """What the core must know of one API flavour of a ticket system; its adapter supplies it."""

    #: The flavour's name, as integrations store it (`api_flavour`).
    flavour: str
    #: The format of request bodies and of answers.
    body_format: Literal["json", "xml"]
    #: The one method requests may use, when the API has only one; None: any.
    only_method: str | None
    #: A zone address for save-time checks and previews (the real one is looked up).
    sample_zone_url: str
    #: Where a create's answer carries the new ticket's id (JSONPath or XPath), and the XPath's
    #: namespace prefixes.
    id_path: str
    namespaces: Mapping[str, str]
    #: Field lengths the API accepts, per element/member name: of tickets, and of notes.
    ticket_limits: Mapping[str, int]
    note_limits: Mapping[str, int]
    #: Headers the target sets itself (its credentials); a request may not set them.
    target_headers: tuple[str, ...]
    #: The default requests: (method, URL, template file in payload_templates/) per action, or
    #: per (status, action) where a status needs its own.
    default_requests: Mapping[
        RequestAction | tuple[AlertStatus, RequestAction], tuple[str, str, str]
    ]
    #: The endpoint a request counts against in the API's per-endpoint thread limit.
    endpoint_of: Callable[[OutboundRequest], str]
    #: What a failed call says was refused, read from the API's own words; None: nothing known.
    refusal_of: Callable[[TargetError], TargetRefusal | None]
    #: Refuses (TargetRejected, saying why) a zone lookup URL credentials must not be sent to,
    #: given an integration's allowed hosts (empty: the adapter's own); checked when an
    #: integration is saved. None: the target checks addresses only when it calls.
    check_zone_lookup_url: Callable[[str, Sequence[str]], None] | None = None

    def limits_for(self, action: RequestAction) -> Mapping[str, int]:
        """The field limits of what `action` writes: a note's, or a ticket's."""
        return self.note_limits if action is RequestAction.NOTE else self.ticket_limits


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
