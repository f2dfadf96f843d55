"""Entity operations shared by the sandbox's REST and SOAP faces: create, update, read, query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.sandbox.entities import REST_PROPERTIES
from adapters.sandbox.entity_info import PARENTS, WRITABLE, is_writable
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.permissions import SecurityLevel
from adapters.sandbox.query import Group, matches
from adapters.sandbox.seed import API_USER_RESOURCE_ID, STATUS_COMPLETE
from adapters.sandbox.state import SandboxState
from adapters.sandbox.tenant import TenantRules
from adapters.sandbox.validation import RecordValidator, coerce_values
from adapters.sandbox.values import format_datetime

#: Autotask returns at most 500 records per page. Reference: autotask-api.md §4 (paging).
MAX_PAGE = 500


class SandboxService:
    """Validates and applies creates, updates and queries the way Autotask does."""

    def __init__(
        self,
        state: SandboxState,
        *,
        strict_properties: bool = True,
        clock: Callable[[], datetime] | None = None,
        rules: TenantRules | None = None,
        security: SecurityLevel | None = None,
    ) -> None:
        self.state = state
        self.strict_properties = strict_properties
        self.rules = rules or TenantRules()
        #: What the API user may do; checked before anything else of a call (permissions.py).
        self.security = security or SecurityLevel()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._ticket_numbers: dict[str, int] = {}
        #: Told of every ticket created, updated or deleted: (action, before, after, person id);
        #: the sandbox's ticket webhooks listen here (webhooks.py).
        self.on_ticket_change: Callable[[str, dict[str, Any] | None, dict[str, Any], int], object]
        self.on_ticket_change = lambda action, before, after, person: None

    # -- writes ---------------------------------------------------------------------------------

    def create(self, entity: str, values: dict[str, Any], *, parent_id: int | None = None) -> int:
        """Create a record from REST-named values and return its new id."""
        self.security.check(entity, "create")
        self._check_writable(entity)
        if values.get("id") not in (None, 0):
            # invented wording: no public source
            raise SandboxError(f"A new {entity} record cannot carry an id ({values['id']}).")
        values = {k: v for k, v in values.items() if k != "id"}
        values = self._with_parent(entity, values, parent_id)
        if entity == "Tickets":
            values = self._with_category_defaults(values)
        clean = coerce_values(entity, values, nulls_allowed=False)
        record: dict[str, Any] = dict.fromkeys(REST_PROPERTIES[entity])
        record["userDefinedFields"] = []
        record.update(clean)
        given = {k for k, v in record.items() if v is not None}
        RecordValidator(self.state, self.rules).check(entity, record, given=given)
        with self.state.lock:
            now = self.clock()
            self._stamp_create(entity, record, now)
            new_id = self.state.insert(entity, record)
            self._touch_parent(entity, record, now)
            if entity == "Tickets":
                self.on_ticket_change("Create", None, record | {"id": new_id}, API_USER_RESOURCE_ID)
            return new_id

    def update(
        self,
        entity: str,
        values: dict[str, Any],
        *,
        replace: bool,
        parent_id: int | None = None,
        person_id: int = API_USER_RESOURCE_ID,
    ) -> int:
        """PATCH (`replace=False`: only the values given change) or PUT (every writable field).

        `person_id` is the resource making the change: the API user, unless a test acts as a
        technician in the web UI (PATCH /_sandbox/tickets/<id>), whom the API user's security
        level does not concern.
        """
        if person_id == API_USER_RESOURCE_ID:
            self.security.check(entity, "update")
        self._check_writable(entity)
        record_id = values.get("id")
        if record_id is None:
            # invented wording: no public source
            raise SandboxError(f"The {entity} update needs the id of the record to change.")
        try:
            record_id = int(record_id)
        except (TypeError, ValueError) as e:
            # invented wording: no public source
            raise SandboxError(f"Invalid value {record_id!r} for field id.") from e
        values = self._with_parent(entity, values, parent_id)
        with self.state.lock:
            current = self.state.get(entity, record_id)
            if current is None or (
                parent_id is not None and current.get(PARENTS[entity][1]) != parent_id
            ):
                # "No matching records found" is real (django-autotask reads it, autotask-api.md
                # §7); the rest of the sentence is the sandbox's.
                raise SandboxError(f"No matching records found for {entity} id {record_id}.")
            changes = {k: v for k, v in values.items() if k != "id"}
            given = set(changes)
            if replace:
                # PUT nulls every writable field it does not carry. Reference: autotask-api.md §4.
                blank = {p: None for p in REST_PROPERTIES[entity] if is_writable(entity, p)}
                changes = blank | changes
            clean = coerce_values(entity, changes, nulls_allowed=True)
            record = current | clean
            validator = RecordValidator(self.state, self.rules)
            validator.check(entity, record, given=given, before=current)
            self._stamp_update(entity, current, record, self.clock())
            self.state.replace(entity, record)
            self._touch_parent(entity, record, self.clock())
            if entity == "Tickets":
                self.on_ticket_change("Update", current, record, person_id)
            return record_id

    def delete_ticket(self, ticket_id: int, person_id: int) -> dict[str, Any]:
        """Delete a ticket and its notes as a person in the web UI would; return the ticket.

        The REST API has no DELETE on Tickets (autotask-api.md §3 and §7): only the sandbox's
        control endpoint calls this.
        """
        with self.state.lock:
            record = self.state.get("Tickets", ticket_id)
            if record is None:
                raise SandboxError(
                    f"No matching records found for Tickets id {ticket_id}.", status=404
                )
            self.state.delete("Tickets", ticket_id)
            for note in self.state.all("TicketNotes"):
                if note["ticketID"] == ticket_id:
                    self.state.delete("TicketNotes", note["id"])
            self.on_ticket_change("Delete", record, record, person_id)
            return record

    def _with_category_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """Put a new ticket in the API-only category, if one is set, and apply its defaults.

        API-only categories are "only used when … tickets … are created via the API" and set
        "the default value, and the Required setting of fields" (autotask.net help
        API_only_Ticket_Categories.htm, autotask-api.md §14). A ticket created without a category
        gets it, as from the API user's default ticket category (resources have one, same page);
        that is inferred: how a tenant attaches the category to its API user is not public.
        """
        category = self.rules.api_ticket_category
        if category is None:
            return values
        values = {"ticketCategory": category.id} | values
        if str(values["ticketCategory"]) != str(category.id):
            return values  # the client chose another category: its rules do not apply
        return category.defaults | values

    def _check_writable(self, entity: str) -> None:
        if entity not in WRITABLE:
            # invented wording: no public source
            raise SandboxError(f"The sandbox does not create or update {entity}.")

    @staticmethod
    def _with_parent(entity: str, values: dict[str, Any], parent_id: int | None) -> dict[str, Any]:
        if parent_id is None or entity not in PARENTS:
            return values
        key = PARENTS[entity][1]
        given = values.get(key)
        if given is not None and str(given) != str(parent_id):
            # invented wording: no public source
            raise SandboxError(
                f"{key} {given} does not match the parent id {parent_id} in the URL."
            )
        return values | {key: parent_id}

    def _stamp_create(self, entity: str, record: dict[str, Any], now: datetime) -> None:
        stamp = format_datetime(now)
        record["creatorResourceID"] = API_USER_RESOURCE_ID
        record["lastActivityDate"] = stamp
        if entity == "Tickets":
            record["createDate"] = stamp
            record["creatorType"] = 1
            record["lastTrackedModificationDateTime"] = stamp
            record["ticketNumber"] = self._next_ticket_number(now)
            if record.get("status") == STATUS_COMPLETE:
                record["completedDate"] = stamp
        elif entity == "TicketNotes":
            record["createDateTime"] = stamp

    def _stamp_update(
        self, entity: str, before: dict[str, Any], record: dict[str, Any], now: datetime
    ) -> None:
        stamp = format_datetime(now)
        record["lastActivityDate"] = stamp
        if entity != "Tickets":
            return
        record["lastTrackedModificationDateTime"] = stamp
        # Autotask sets completedDate itself when a ticket reaches Complete (read-only field,
        # autotask-api.md §3) and clears it when the ticket is reopened.
        if record.get("status") == STATUS_COMPLETE and before.get("status") != STATUS_COMPLETE:
            record["completedDate"] = stamp
        elif record.get("status") != STATUS_COMPLETE:
            record["completedDate"] = None

    def _touch_parent(self, entity: str, record: dict[str, Any], now: datetime) -> None:
        if entity not in PARENTS:
            return
        parent, key = PARENTS[entity]
        parent_record = self.state.get(parent, record[key])
        if parent_record is not None:
            parent_record["lastActivityDate"] = format_datetime(now)
            self.state.replace(parent, parent_record)

    def _next_ticket_number(self, now: datetime) -> str:
        """Ticket numbers look like T20180724.0001 (trepidity/autotask_ruby query fixture)."""
        day = now.strftime("%Y%m%d")
        if day not in self._ticket_numbers:
            # Continue after the tickets a state file already holds for the day.
            prefix = f"T{day}."
            self._ticket_numbers[day] = max(
                (
                    int(number.removeprefix(prefix))
                    for ticket in self.state.all("Tickets")
                    if isinstance(number := ticket.get("ticketNumber"), str)
                    and number.startswith(prefix)
                    and number.removeprefix(prefix).isdigit()
                ),
                default=0,
            )
        self._ticket_numbers[day] += 1
        return f"T{day}.{self._ticket_numbers[day]:04d}"

    # -- reads ---------------------------------------------------------------------------------

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        """Return one record with every model property (null where unset), or None."""
        self.security.check(entity, "query")
        return self.record(entity, record_id)

    def record(self, entity: str, record_id: int) -> dict[str, Any] | None:
        """`get` without the API user's permission check (the sandbox's own reads)."""
        record = self.state.get(entity, record_id)
        return self._full(entity, record) if record is not None else None

    @staticmethod
    def _full(entity: str, record: dict[str, Any]) -> dict[str, Any]:
        full = dict.fromkeys(REST_PROPERTIES[entity])
        full.update({k: v for k, v in record.items() if k in full})
        if "userDefinedFields" in full and full["userDefinedFields"] is None:
            full["userDefinedFields"] = []
        return full

    def query(
        self,
        entity: str,
        tree: Group,
        *,
        max_records: int = MAX_PAGE,
        after_id: int = -1,
        parent_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of matching records ordered by id, and whether more follow."""
        self.security.check(entity, "query")
        found = [
            self._full(entity, record)
            for record in self.state.all(entity)
            if record["id"] > after_id
            and (parent_id is None or record.get(PARENTS[entity][1]) == parent_id)
            and matches(record, tree)
        ]
        return found[:max_records], len(found) > max_records

    def count(self, entity: str, tree: Group) -> int:
        """Return how many records match."""
        self.security.check(entity, "query")
        return sum(1 for record in self.state.all(entity) if matches(record, tree))
