"""The contracts adapters implement. The core depends on these, never on a vendor module."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from connector.domain import (
    AlertStatus,
    ApiCallRecord,
    ApiUsage,
    CompanyChoice,
    ConnectionReport,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketChange,
    TicketPicklists,
    TicketRef,
    ZoneAnswer,
)
from connector.errors import TargetError, TargetRefusal

#: Receives every call a target makes, successful or not.
CallRecorder = Callable[[ApiCallRecord], None]

#: Receives every answer a target's own zone lookup gives (the zone address and the database's
#: id), to keep it beyond the process (a target built later starts from it and skips the
#: lookup; the governor counts the calls of integrations of one database together). Must not
#: raise.
ZoneListener = Callable[[ZoneAnswer], None]


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
    #: Where the ticket system's own zone lookup is asked: the admin form's default.
    default_zone_lookup_url: str = ""
    #: An update of a ticket costs a read of it first (the API's update replaces the whole
    #: record): each status change costs two calls, so an acknowledgement leaves the status
    #: alone unless the integration says otherwise (settings `status_on_acknowledge`).
    update_reads_ticket: bool = False

    def limits_for(self, action: RequestAction) -> Mapping[str, int]:
        """The field limits of what `action` writes: a note's, or a ticket's."""
        return self.note_limits if action is RequestAction.NOTE else self.ticket_limits


@dataclass(frozen=True)
class MailMessage:
    """One plain-text mail: its recipients, subject and body."""

    to: tuple[str, ...]
    subject: str
    body: str


class MailSender(Protocol):
    """Sends mail for the connector (the emergency contact's mails), e.g. through SMTP."""

    def send(self, message: MailMessage) -> None:
        """Send `message` now.

        Raises:
            MailError: it could not be sent; the message says why in words (no connection,
                login refused, recipient refused …), never with the server's password.
        """
        ...


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


@runtime_checkable
class ApiUsageReporter(Protocol):
    """A ticket target that can tell how much of its database's hourly API threshold is used."""

    def api_usage(self) -> ApiUsage:
        """The database's reported usage (one call, counted by the ticket system like any)."""
        ...


@runtime_checkable
class TicketStatusReader(Protocol):
    """A ticket target that can read many tickets' statuses in one call (reconciliation)."""

    #: The most ticket ids one call may ask about.
    status_batch: int

    def ticket_statuses(self, ticket_ids: Sequence[int]) -> dict[int, int | None]:
        """The status of each of `ticket_ids` that exists (absent: deleted or never there)."""
        ...


class CallGate(Protocol):
    """Admits one call to the ticket system (the core's governor), around the call.

    A catalog enters it around each call it makes, naming the endpoint the call counts against in
    the API's thread limit; `limited=False` for a call the ticket system neither counts nor
    thread-limits (a zone lookup). Entering raises a `TargetError` when the call may not go now
    (budget used, paused, breaker open); that error is the gate's, so the catalog lets it through.
    The call's own error must leave the block, so the gate can account for it.
    """

    def __call__(self, endpoint: str, *, limited: bool = True) -> AbstractContextManager[object]:
        """The context the call runs in."""
        ...


class TicketSystemCatalog(Protocol):
    """What a ticket system tells an admin setting an integration up: whether the connection
    works, and its own lists, so that settings are picked by name and never typed as ids.

    Each flavour's catalog is built by the composition root as `Catalog(client, gate)`, over the
    same client its TicketTarget uses, and passes every call it makes through the `CallGate`.
    """

    def check_connection(self) -> ConnectionReport:
        """Check, step by step, what the connector needs of the ticket system.

        The zone lookup, then a call that needs nothing but the credentials, then whether the API
        user may read tickets and companies, create and update tickets and add notes. A step
        that fails is a check with `ok` False and the reason in words (wrong secret, unknown
        user, wrong tracking identifier, a missing permission, no connection, a zone host not
        allowed); the steps that need it are skipped.

        Raises:
            TargetError: only the gate's, when a call may not go now.
        """
        ...

    def picklists(self) -> TicketPicklists:
        """The ticket system's lists the ticket settings pick from, read through its API.

        Raises:
            TargetError: a call failed (`explain` words it) or the gate held one back.
        """
        ...

    def search_companies(self, text: str, limit: int) -> list[CompanyChoice]:
        """Up to `limit` companies whose name contains `text` (any case; "" for any), by name.

        Raises:
            TargetError: the call failed (`explain` words it) or the gate held it back.
        """
        ...

    def explain(self, error: TargetError) -> str:
        """Words for an admin: why one of this catalog's calls failed and what to do about it."""
        ...


class TicketCallouts(Protocol):
    """The ticket system's webhook callouts about its tickets: how they are signed and read."""

    #: The request header that carries the callout's signature.
    signature_header: str

    def verify(self, body: bytes, signature: str | None, secret: str) -> None:
        """Check `signature` (the header's value, None when absent) over the raw `body`.

        Raises:
            AuthError: the signature is missing, malformed or does not match; the message says
                which, never the secret nor the expected value.
        """
        ...

    def read(self, body: bytes) -> TicketChange:
        """Read a verified callout's body.

        Raises:
            PayloadError: the body is no callout about a ticket (the message says why).
        """
        ...


@dataclass(frozen=True)
class RegisteredWebhook:
    """A ticket webhook the ticket system now has: its id and the resource it excludes."""

    remote_id: int
    excluded_resource_id: int | None


@runtime_checkable
class TicketWebhookRegistrar(Protocol):
    """Registers the connector's ticket webhook with the ticket system through its API."""

    def register_ticket_webhook(self, name: str, url: str, secret: str) -> RegisteredWebhook:
        """Create an active webhook that calls `url` signed with `secret` on ticket updates and
        deletes, carrying the ticket's status; the API user's own changes are excluded.

        Raises:
            TargetError: a call failed (its message says which and why).
        """
        ...
