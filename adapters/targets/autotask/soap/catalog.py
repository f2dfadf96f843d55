"""Autotask over SOAP (ATWS 1.6) as a `connector.ports.TicketSystemCatalog`: the calls the checks
and lists make (getEntityInfo, GetFieldInfo, queries), on the SOAP client the target uses.

SOAP facts and their sources: ../shared/reference/autotask-api.md §10 and the vendored WSDL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.targets.autotask.catalog import (
    ENTITY_INFORMATION,
    TICKET_NOTES,
    TICKETS,
    Access,
    AccessMap,
    AutotaskCatalog,
)
from adapters.targets.autotask.profile import WORK_TYPE_USE_TYPE
from adapters.targets.autotask.soap.atws import XsdValue
from adapters.targets.autotask.soap.client import AutotaskSoapClient
from adapters.targets.autotask.soap.envelopes import build_queryxml
from connector.domain import Choice, CompanyChoice
from connector.ports import CallGate

if TYPE_CHECKING:
    from connector.ports import TicketSystemCatalog

#: The SOAP entity of each REST entity the catalog reads (§9: Account was renamed Company).
_SOAP_ENTITY = {
    TICKETS: "Ticket",
    TICKET_NOTES: "TicketNote",
    "Companies": "Account",
    "BillingCodes": "AllocationCode",
}


class AutotaskSoapCatalog(AutotaskCatalog):
    """Autotask's connection check and lists through its SOAP API (ATWS 1.6)."""

    #: Ticket fields (WSDL Ticket) whose picklists the ticket settings pick from (§3).
    TICKET_PICKLISTS = {
        "QueueID": "queues",
        "Status": "statuses",
        "Priority": "priorities",
        "TicketCategory": "ticket_categories",
        "IssueType": "issue_types",
        "SubIssueType": "sub_issue_types",
        "Source": "sources",
        "TicketType": "ticket_types",
    }
    #: Note fields (WSDL TicketNote) whose picklists the note settings pick from (§5).
    NOTE_PICKLISTS = {"NoteType": "note_types", "Publish": "note_publish"}

    def __init__(self, client: AutotaskSoapClient, gate: CallGate | None = None) -> None:
        super().__init__(client, gate)
        self.soap = client

    def _lookup_zone(self, *, refresh: bool) -> str:
        return self.soap.zone_url(refresh=refresh)

    def _read(self, entity: str) -> None:
        # id 0 matches no ticket, and the MSP's own company (§9): only a refusal matters.
        self.soap.query(build_queryxml(_SOAP_ENTITY[entity], [("id", "equals", 0)]), limit=1)

    def _access_calls(self) -> list[tuple[str, Callable[[], AccessMap]]]:
        return [(ENTITY_INFORMATION, self._access)]

    def _access(self) -> AccessMap:
        """getEntityInfo: one answer for every entity; its EntityInfo has no user access (WSDL)."""
        infos = self.soap.entity_info()
        found: dict[str, dict[str, Access]] = {}
        for entity in (TICKETS, TICKET_NOTES):
            info = infos.get(_SOAP_ENTITY[entity])
            if info is not None:
                found[entity] = {
                    "create": Access(api=info["canCreate"]),
                    "update": Access(api=info["canUpdate"]),
                }
        return found

    def _fields(self, entity: str) -> list[dict[str, Any]]:
        return self.soap.field_info(_SOAP_ENTITY[entity])

    def _work_types(self) -> list[Choice]:
        codes = self.soap.query(
            build_queryxml("AllocationCode", [("UseType", "equals", WORK_TYPE_USE_TYPE)])
        )
        return [
            Choice(
                id=int(code["id"]),
                label=_text(code.get("Name")) or str(code["id"]),
                active=_flag(code.get("Active")),
            )
            for code in codes
        ]

    def _companies(self, text: str, limit: int) -> list[CompanyChoice]:
        # QueryXML's Contains (§10); no text: any company (ids start at 0, the MSP's own).
        condition = ("AccountName", "contains", text) if text else ("id", "greaterthanorequals", 0)
        accounts = self.soap.query(build_queryxml("Account", [condition]), limit=limit)
        return [
            CompanyChoice(
                id=int(account["id"]),
                name=_text(account.get("AccountName")) or str(account["id"]),
                active=_flag(account.get("Active")),
            )
            for account in accounts
        ]


def _text(value: object) -> str:
    """A field's text, whether read as a Python value or kept as an XsdValue."""
    if isinstance(value, XsdValue):
        return value.text
    return "" if value is None else str(value)


def _flag(value: object) -> bool:
    """An xs:boolean field; absent: active (Autotask sends Active for every record)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    return _text(value).strip().lower() in ("true", "1")


if TYPE_CHECKING:

    def _satisfies_the_port(catalog: AutotaskSoapCatalog) -> TicketSystemCatalog:
        """mypy checks here that the class structurally implements the port."""
        return catalog
