"""Autotask over REST as a `connector.ports.TicketSystemCatalog`: the calls the checks and lists
make (entityInformation, queries), on the REST client the target uses.

REST facts and their sources: ../shared/reference/autotask-api.md §1, §4, §6 and §9.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from adapters.targets.autotask.catalog import (
    BILLING_CODES,
    COMPANIES,
    TICKET_NOTES,
    TICKETS,
    Access,
    AccessMap,
    AutotaskCatalog,
    user_access,
)
from adapters.targets.autotask.profile import WORK_TYPE_USE_TYPE
from adapters.targets.autotask.rest.client import AutotaskRestClient
from connector.domain import Choice, CompanyChoice
from connector.ports import CallGate

if TYPE_CHECKING:
    from connector.ports import TicketSystemCatalog

#: A filter no record matches and every API user may run: the connection check only needs to
#: know whether the query is refused. id 0 is the MSP's own company among Companies (§9), which
#: proves as much.
_ID_ZERO = [{"op": "eq", "field": "id", "value": 0}]


class AutotaskRestCatalog(AutotaskCatalog):
    """Autotask's connection check and lists through its REST API."""

    #: Ticket fields (TicketModel) whose picklists the ticket settings pick from (§3, §6).
    TICKET_PICKLISTS = {
        "queueID": "queues",
        "status": "statuses",
        "priority": "priorities",
        "ticketCategory": "ticket_categories",
        "issueType": "issue_types",
        "subIssueType": "sub_issue_types",
        "source": "sources",
        "ticketType": "ticket_types",
    }
    #: Note fields (TicketNoteModel) whose picklists the note settings pick from (§5).
    NOTE_PICKLISTS = {"noteType": "note_types", "publish": "note_publish"}

    def __init__(self, client: AutotaskRestClient, gate: CallGate | None = None) -> None:
        super().__init__(client, gate)
        self.rest = client

    def _lookup_zone(self, *, refresh: bool) -> str:
        return self.rest.base_url(refresh=refresh)

    def _read(self, entity: str) -> None:
        self.rest.query(entity, _ID_ZERO, include_fields=["id"], max_records=1, all_pages=False)

    def _access_calls(self) -> list[tuple[str, Callable[[], AccessMap]]]:
        return [(entity, partial(self._access, entity)) for entity in (TICKETS, TICKET_NOTES)]

    def _access(self, entity: str) -> AccessMap:
        """entityInformation: `can…` is what the API allows, `userAccessFor…` the user's (§6)."""
        info = self.rest.entity_information(entity)
        return {
            entity: {
                action: Access(
                    api=info.get(f"can{action.title()}") is True,
                    user=user_access(info.get(f"userAccessFor{action.title()}")),
                )
                for action in ("create", "update")
            }
        }

    def _fields(self, entity: str) -> list[dict[str, Any]]:
        return self.rest.entity_fields(entity)

    def _work_types(self) -> list[Choice]:
        items = self.rest.query(
            BILLING_CODES,
            [{"op": "eq", "field": "useType", "value": WORK_TYPE_USE_TYPE}],
            include_fields=["id", "name", "isActive"],
        )
        return [
            Choice(
                id=int(item["id"]),
                label=str(item.get("name") or item["id"]),
                active=item.get("isActive") is not False,
            )
            for item in items
        ]

    def _companies(self, text: str, limit: int) -> list[CompanyChoice]:
        # "contains" is one of the REST filter operators (§4); no text: any company.
        filters = (
            [{"op": "contains", "field": "companyName", "value": text}]
            if text
            else [{"op": "exist", "field": "id"}]
        )
        items = self.rest.query(
            COMPANIES,
            filters,
            include_fields=["id", "companyName", "isActive"],
            max_records=limit,
            all_pages=False,
        )
        return [
            CompanyChoice(
                id=int(item["id"]),
                name=str(item.get("companyName") or item["id"]),
                active=item.get("isActive") is not False,
            )
            for item in items
        ]


if TYPE_CHECKING:

    def _satisfies_the_port(catalog: AutotaskRestCatalog) -> TicketSystemCatalog:
        """mypy checks here that the class structurally implements the port."""
        return catalog
