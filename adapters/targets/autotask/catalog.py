"""What Autotask tells an admin setting an integration up, for both API flavours.

`AutotaskCatalog` implements `connector.ports.TicketSystemCatalog`: the connection check step by
step, every failure in an admin's words, and Autotask's own lists (ticket picklists, work types,
companies) read through the API. The flavours (`rest.catalog`, `soap.catalog`) say how each call
is made and read SOAP's answers into REST's shapes; this base runs the steps, words what failed and
reads the lists alike. Every call goes through the core's `CallGate`. References are sections of
../shared/reference/autotask-api.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from adapters.targets.autotask.errors import UnexplainedRefusal
from adapters.targets.autotask.http import AutotaskHttpClient
from adapters.targets.autotask.profile import PERMISSION_MARKERS, refusal_of
from connector.domain import (
    CheckName,
    Choice,
    CompanyChoice,
    ConnectionCheck,
    ConnectionReport,
    TicketPicklists,
)
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRefusal,
    TargetRejected,
    TargetUnavailable,
)
from connector.ports import CallGate

T = TypeVar("T")

#: The endpoints calls count against in Autotask's thread limit, per (tracking identifier,
#: object endpoint) (§8): the gate's keys, named as REST names them for both flavours, as the
#: worker's calls are (profile.endpoint_of).
ZONE_INFORMATION = "ZoneInformation"
THRESHOLD_INFORMATION = "ThresholdInformation"
TICKETS = "Tickets"
TICKET_NOTES = "TicketNotes"
COMPANIES = "Companies"
BILLING_CODES = "BillingCodes"
#: SOAP's getEntityInfo answers for every entity at once: an endpoint of its own.
ENTITY_INFORMATION = "EntityInformation"

#: What each check asks Autotask to allow, in words ("The API user may not …").
_ACTIONS = {
    CheckName.READ_TICKETS: "read tickets",
    CheckName.CREATE_TICKETS: "create tickets",
    CheckName.UPDATE_TICKETS: "update tickets",
    CheckName.READ_COMPANIES: "read companies",
    CheckName.CREATE_NOTES: "add notes to tickets",
}

#: The access checks: (entity, action as entityInformation names it) per check.
_ACCESS = {
    CheckName.CREATE_TICKETS: (TICKETS, "create"),
    CheckName.UPDATE_TICKETS: (TICKETS, "update"),
    CheckName.CREATE_NOTES: (TICKET_NOTES, "create"),
}

#: The check order of the report (CheckName's order).
_ORDER = list(CheckName)


@dataclass(frozen=True)
class Access:
    """What Autotask says of one action on one entity.

    `api`: the API allows the action on the entity at all (entityInformation can…). `user`: this
    API user's security level allows it (userAccessFor…), or None when the answer does not say.
    """

    api: bool
    user: bool | None = None


#: Per entity (REST name) and action (create, update): what Autotask says of it.
AccessMap = Mapping[str, Mapping[str, Access]]


def user_access(value: object) -> bool | None:
    """An entityInformation userAccessFor… value: "None" is no access, any other some; absent
    (SOAP's EntityInfo has none): unknown. Values seen: "All", "None" (§6, FIELDINFO)."""
    if value is None or value == "":
        return None
    return str(value).strip().lower() != "none"


@contextmanager
def _ungated(endpoint: str, *, limited: bool = True) -> Iterator[None]:
    """The gate of a catalog built without one (tests, the CLI): every call goes."""
    yield None


class AutotaskCatalog:
    """Autotask's connection check and lists over one API user's client (either flavour)."""

    #: Ticket and note field → the TicketPicklists list it fills, as the flavour names fields.
    TICKET_PICKLISTS: Mapping[str, str] = {}
    NOTE_PICKLISTS: Mapping[str, str] = {}

    def __init__(self, client: AutotaskHttpClient, gate: CallGate | None = None) -> None:
        self.client = client
        self.gate: CallGate = gate or _ungated
        self._zone_url: str | None = None

    # -- what each flavour says: how a call is made -------------------------------------------

    def _lookup_zone(self, *, refresh: bool) -> str:
        """The zone's API address (a fresh zone lookup when `refresh`)."""
        raise NotImplementedError

    def _read(self, entity: str) -> None:
        """Query one record (or none) of `entity` (Tickets or Companies): can it be read?"""
        raise NotImplementedError

    def _access_calls(self) -> Sequence[tuple[str, Callable[[], AccessMap]]]:
        """(endpoint, call) whose answers say what the API user may do with tickets and notes."""
        raise NotImplementedError

    def _fields(self, entity: str) -> list[dict[str, Any]]:
        """Tickets' or TicketNotes' field definitions, shaped as REST's entityInformation/fields."""
        raise NotImplementedError

    def _work_types(self) -> list[Choice]:
        """The billing codes of use type 1, the work types a ticket's billingCodeID takes."""
        raise NotImplementedError

    def _companies(self, text: str, limit: int) -> list[CompanyChoice]:
        """Up to `limit` companies whose name contains `text` ("" for any), in id order."""
        raise NotImplementedError

    # -- the port ------------------------------------------------------------------------------

    def check_connection(self) -> ConnectionReport:
        """Check, step by step, what the connector needs of Autotask (see the port)."""
        checks: dict[CheckName, ConnectionCheck] = {}
        username = self.client.username
        zone, error = self._attempt(
            ZONE_INFORMATION, lambda: self._lookup_zone(refresh=True), limited=False
        )
        if error is not None or zone is None:
            checks[CheckName.ZONE_LOOKUP] = self._failed(CheckName.ZONE_LOOKUP, error)
            return self._report(checks, "not checked: the zone lookup failed")
        self._zone_url = zone
        checks[CheckName.ZONE_LOOKUP] = ConnectionCheck(
            CheckName.ZONE_LOOKUP,
            True,
            f"Autotask knows the API user {username!r}; its database is in the zone at"
            f" {_host(zone)}.",
        )
        _, error = self._attempt(THRESHOLD_INFORMATION, self.client.check_credentials)
        if error is not None:
            checks[CheckName.CREDENTIALS] = self._failed(CheckName.CREDENTIALS, error)
            return self._report(checks, "not checked: Autotask did not accept the credentials")
        checks[CheckName.CREDENTIALS] = ConnectionCheck(
            CheckName.CREDENTIALS,
            True,
            "Autotask accepted the API user's username, secret and API tracking identifier.",
        )
        for name, entity in (
            (CheckName.READ_TICKETS, TICKETS),
            (CheckName.READ_COMPANIES, COMPANIES),
        ):
            _, error = self._attempt(entity, partial(self._read, entity))
            checks[name] = (
                self._failed(name, error)
                if error is not None
                else ConnectionCheck(name, True, f"The API user may {_ACTIONS[name]}.")
            )
        access: dict[str, Mapping[str, Access]] = {}
        errors: dict[str, TargetError] = {}
        for endpoint, call in self._access_calls():
            answer, error = self._attempt(endpoint, call)
            if error is not None:
                errors[endpoint] = error
            else:
                access.update(answer or {})
        for name, (entity, action) in _ACCESS.items():
            found = access.get(entity, {}).get(action)
            error = errors.get(entity) or next(iter(errors.values()), None)
            checks[name] = (
                self._access_check(name, found) if found is not None else self._failed(name, error)
            )
        return self._report(checks, "")

    def picklists(self) -> TicketPicklists:
        """Autotask's ticket and note picklists and its work types (see the port)."""
        self._zone()
        lists: dict[str, tuple[Choice, ...]] = {}
        for entity, wanted in (
            (TICKETS, self.TICKET_PICKLISTS),
            (TICKET_NOTES, self.NOTE_PICKLISTS),
        ):
            with self.gate(entity):
                # Field names are case-insensitive in Autotask's REST API (§4).
                fields = {str(f.get("name")).lower(): f for f in self._fields(entity)}
            for field_name, list_name in wanted.items():
                found = fields.get(field_name.lower())
                lists[list_name] = (
                    _choices(found, parents=list_name == "sub_issue_types") if found else ()
                )
        with self.gate(BILLING_CODES):
            work_types = self._work_types()
        lists["work_types"] = tuple(sorted(work_types, key=lambda c: (c.label.casefold(), c.id)))
        return TicketPicklists(**lists)

    def search_companies(self, text: str, limit: int) -> list[CompanyChoice]:
        """Up to `limit` companies whose name contains `text`, by name (see the port)."""
        self._zone()
        with self.gate(COMPANIES):
            found = self._companies(text.strip(), limit)
        return sorted(found, key=lambda c: (c.name.casefold(), c.id))[:limit]

    def explain(self, error: TargetError) -> str:
        """Words for an admin: why a call failed and what to do about it."""
        return self._words(error, None)

    # -- steps ---------------------------------------------------------------------------------

    def _zone(self) -> str:
        """The zone (looked up once per client, through the gate like every call)."""
        with self.gate(ZONE_INFORMATION, limited=False):
            self._zone_url = self._lookup_zone(refresh=False)
        return self._zone_url

    def _attempt(
        self, endpoint: str, call: Callable[[], T], *, limited: bool = True
    ) -> tuple[T | None, TargetError | None]:
        """(answer, None), or (None, the call's error); a refusal of the gate itself is raised.

        The call's error leaves the gate's block, so the gate accounts for it (a 429 pauses …).
        """
        entered = False
        try:
            with self.gate(endpoint, limited=limited):
                entered = True
                return call(), None
        except TargetError as e:
            if not entered:
                raise
            return None, e

    def _report(self, checks: dict[CheckName, ConnectionCheck], skipped: str) -> ConnectionReport:
        """Every check in order; those not run are skipped, with `skipped` as their reason."""
        ordered = [
            checks.get(name) or ConnectionCheck(name, False, skipped, skipped=True)
            for name in _ORDER
        ]
        return ConnectionReport(tuple(ordered), self._zone_url)

    def _failed(self, name: CheckName, error: TargetError | None) -> ConnectionCheck:
        words = self._words(error, name) if error is not None else "Autotask gave no answer."
        return ConnectionCheck(name, False, words)

    def _access_check(self, name: CheckName, access: Access) -> ConnectionCheck:
        action = _ACTIONS[name]
        if not access.api and access.user is None:
            # SOAP's getEntityInfo has one flag for both (WSDL EntityInfo): it cannot tell
            # the database's rule from the API user's security level.
            return ConnectionCheck(
                name,
                False,
                f"Autotask does not let the API user {action}: most likely its security level"
                f" does not allow it to {action}. Give the API user a security level that does"
                " (in Autotask, Admin › Account Settings & Users › Security Levels).",
            )
        if not access.api:
            return ConnectionCheck(
                name, False, f"Autotask does not allow API users to {action} in this database."
            )
        if access.user is False:
            return ConnectionCheck(
                name,
                False,
                f"The API user's security level does not allow it to {action}: give the API"
                f" user a security level that does (in Autotask, Admin › Account Settings &"
                f" Users › Security Levels).",
            )
        if access.user is None:
            return ConnectionCheck(
                name,
                True,
                f"Autotask allows API users to {action}; it does not say whether this API"
                f" user's security level does (the first delivery will).",
            )
        return ConnectionCheck(name, True, f"The API user may {action}.")

    # -- words ---------------------------------------------------------------------------------

    def _words(self, error: TargetError, step: CheckName | None) -> str:
        """What failed, in words, for a failure at `step` (None: a catalog read)."""
        text = str(error)
        status = (error.response or {}).get("status")
        lowered = text.lower()
        username = self.client.username
        refusal = refusal_of(error)
        if refusal is TargetRefusal.ADDRESS_NOT_ALLOWED:
            return (
                f"The connector does not send the API user's credentials there: {text} Add the"
                " host to the integration's allowed zone hosts only if it is Autotask's."
            )
        if step is CheckName.ZONE_LOOKUP and isinstance(error, TargetAuthError):
            return (
                f"Autotask does not know the API user {username!r}: its zone lookup found no"
                " database for it. Check the username: it is the API user's, which looks like"
                " an email address."
            )
        if refusal is TargetRefusal.UNKNOWN_USER:
            return f"Autotask does not know the API user {username!r}: check the username."
        if isinstance(error, TargetRateLimited):
            return (
                "Autotask asked the connector to slow down (its thread or hourly threshold):"
                f" try again in a minute. Autotask's answer: {text}"
            )
        if status == 401 or refusal is TargetRefusal.CREDENTIALS:
            return (
                f"Autotask knows the API user {username!r} but refused its secret (HTTP 401):"
                " check the secret, and that the API user is active."
            )
        action = _ACTIONS.get(step) if step is not None else None
        permission = status == 403 or any(marker in lowered for marker in PERMISSION_MARKERS)
        if permission:
            what = f"to {action}" if action else "what the connector asked"
            return (
                f"The API user's security level does not allow it {what}: give the API user a"
                " security level that does (in Autotask, Admin › Account Settings & Users ›"
                f" Security Levels). Autotask's answer: {text}"
            )
        if isinstance(error, UnexplainedRefusal):
            # Autotask answers an unknown tracking identifier with a bare refusal: HTTP 500
            # "Something went wrong" over REST (§2, apigrate/autotask-restapi #19).
            if step is CheckName.CREDENTIALS:
                return (
                    "Autotask did not refuse the secret (that would be HTTP 401) but refused"
                    " the call without saying why, which is how it answers an API tracking"
                    " identifier it does not know: check the tracking identifier (on the API"
                    " user's record in Autotask, under API Tracking Identifier). Autotask's"
                    f" answer: {text}"
                )
            if action:
                return (
                    f"Autotask refused to let the API user {action} without saying why; a"
                    f" missing permission is the usual reason. Autotask's answer: {text}"
                )
            return (
                "Autotask refused the call without saying why: the connection check tells"
                " whether the tracking identifier or a permission is wrong. Autotask's answer:"
                f" {text}"
            )
        if isinstance(error, TargetAuthError):
            return (
                "Autotask refused the API tracking identifier: check that it is this API"
                f" user's. Autotask's answer: {text}"
            )
        if isinstance(error, TargetUnavailable):
            return self._unavailable_words(error, step)
        if isinstance(error, TargetRejected) and action:
            return f"Autotask refused to let the API user {action}. Autotask's answer: {text}"
        return text

    def _unavailable_words(self, error: TargetError, step: CheckName | None) -> str:
        """No usable answer: the connection's failure (DNS, refused, TLS, timeout) or Autotask's."""
        url = self.client.zone_lookup_url
        if step is not CheckName.ZONE_LOOKUP and self._zone_url:
            url = self._zone_url
        host = _host(url)
        text = str(error)
        cause = error.__cause__
        connect, read = self.client.timeout
        # requests' exception tree: SSLError and ConnectTimeout are ConnectionErrors, ReadTimeout
        # a Timeout (https://requests.readthedocs.io/en/latest/api/#exceptions).
        if isinstance(cause, requests.exceptions.SSLError):
            return (
                f"The secure (TLS) connection to {host} failed: its certificate is not trusted"
                f" here, or something between intercepts the connection. ({text})"
            )
        if isinstance(cause, requests.ConnectTimeout):
            return (
                f"{host} did not accept a connection within {connect:g} s: a firewall or proxy"
                f" may block it. ({text})"
            )
        if isinstance(cause, requests.Timeout):
            return f"{host} did not answer within {read:g} s; try again later. ({text})"
        if isinstance(cause, requests.ConnectionError):
            return (
                f"The connector could not connect to {host}: the name does not resolve, or the"
                f" connection is refused or blocked. ({text})"
            )
        return f"Autotask gave no usable answer; it may be down, try again later. ({text})"


def _host(url: str) -> str:
    """The host (and port, if any) of `url`, for words."""
    return urlsplit(url).netloc or url


def _choices(field: Mapping[str, Any], *, parents: bool) -> tuple[Choice, ...]:
    """A picklist field's values as choices, in Autotask's sort order."""
    values = [v for v in field.get("picklistValues") or [] if isinstance(v, Mapping)]
    choices = []
    for value in sorted(
        values, key=lambda v: (_number(v.get("sortOrder")) or 0, str(v.get("label")))
    ):
        choice_id = _number(value.get("value"))
        if choice_id is None:
            # Picklist values are strings on the wire ("1", §6); a setting holds a number, so a
            # value that is none cannot be picked.
            continue
        parent = _number(value.get("parentValue")) if parents else None
        choices.append(
            Choice(
                id=choice_id,
                label=str(value.get("label") or choice_id),
                active=value.get("isActive") is not False,
                parent_id=parent,
                default=value.get("isDefaultValue") is True,
            )
        )
    return tuple(choices)


def _number(value: object) -> int | None:
    """An int from a number or its text ("12", " -1 "); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip() if value is not None else ""
    try:
        return int(text)
    except ValueError:
        return None
