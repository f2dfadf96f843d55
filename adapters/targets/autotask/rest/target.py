"""Autotask over REST as a `connector.ports.TicketTarget`: the worker's ticket operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.targets.autotask.answers import api_usage, ticket_ref
from adapters.targets.autotask.rest.client import AutotaskRestClient
from connector.domain import ApiUsage, OutboundRequest, TargetResponse, TicketRef
from connector.errors import TargetRejected
from connector.ports import RegisteredWebhook

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

    #: Ids per Tickets/query: one page (500 records at most, autotask-api.md §6).
    status_batch = 200

    def ticket_statuses(self, ticket_ids: Sequence[int]) -> dict[int, int | None]:
        """One Tickets/query (`id in […]`): each existing ticket's status (connector.ports)."""
        if not ticket_ids:
            return {}
        items = self.client.query_tickets(
            [{"op": "in", "field": "id", "value": [int(i) for i in ticket_ids]}],
            include_fields=["id", "ticketNumber", "status"],
        )
        return {ref.ticket_id: ref.status for ref in (_ref(item) for item in items)}

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

    def register_ticket_webhook(self, name: str, url: str, secret: str) -> RegisteredWebhook:
        """Create an active TicketWebhook on updates and deletes, carrying the ticket's status and
        externalID, that leaves out the API user's own changes (connector.ports).

        TicketWebhookModel, TicketWebhookFieldModel and TicketWebhookExcludedResourceModel of the
        Swagger; the API user's resource is found by its userName (Resources query), the fields'
        ids in the fieldID picklist of TicketWebhookFields (autotask-api.md §14, Webhooks). The
        security level needs "Can create WebHooks" (Webhooks_Creating.htm).
        """
        resource_id = self._api_user_resource_id()
        field_ids = self._webhook_field_ids()
        missing = [label for label in ("status", "externalid") if label not in field_ids]
        if missing:
            raise TargetRejected(
                "Autotask's TicketWebhookFields fieldID picklist has no "
                + " or ".join(missing)
                + " field: the webhook could not say which tickets were completed."
            )
        # The integration log keeps every call's body: the secret must not be kept with it.
        self.client.redact_also(secret)
        webhook_id = self.client.create_entity(
            "TicketWebhooks",
            "TicketWebhooks",
            {
                "name": name,
                "webhookUrl": url,
                # Autotask calls it when it deactivates the webhook; the body says Deactivated.
                "deactivationUrl": url,
                "secretKey": secret,
                "isActive": True,
                "isSubscribedToCreateEvents": False,
                "isSubscribedToUpdateEvents": True,
                "isSubscribedToDeleteEvents": True,
                "sendThresholdExceededNotification": False,
            },
        )
        fields_path = f"TicketWebhooks/{webhook_id}/Fields"
        for label, subscribed in (("status", True), ("externalid", False)):
            self.client.create_entity(
                "TicketWebhookFields",
                fields_path,
                {
                    "webhookID": webhook_id,
                    "fieldID": field_ids[label],
                    "isSubscribedField": subscribed,
                    "isDisplayAlwaysField": True,
                },
            )
        if resource_id is not None:
            self.client.create_entity(
                "TicketWebhookExcludedResources",
                f"TicketWebhooks/{webhook_id}/ExcludedResources",
                {"webhookID": webhook_id, "resourceID": resource_id},
            )
        return RegisteredWebhook(webhook_id, resource_id)

    def _api_user_resource_id(self) -> int | None:
        """The API user's own resource id (the resource whose userName is the API username)."""
        items = self.client.query(
            "Resources",
            [{"op": "eq", "field": "userName", "value": self.client.username}],
            include_fields=["id"],
            all_pages=False,
        )
        ids = [item["id"] for item in items if isinstance(item.get("id"), int)]
        return min(ids) if ids else None

    def _webhook_field_ids(self) -> dict[str, int]:
        """The fieldID picklist of TicketWebhookFields: label (lower case, no spaces) → id."""
        found: dict[str, int] = {}
        for definition in self.client.entity_fields("TicketWebhookFields"):
            if str(definition.get("name", "")).lower() != "fieldid":
                continue
            for value in definition.get("picklistValues") or []:
                label = str(value.get("label", "")).lower().replace(" ", "")
                if str(value.get("value", "")).isdigit():
                    found.setdefault(label, int(value["value"]))
        return found


def _ref(item: dict[str, Any]) -> TicketRef:
    """A TicketRef from a Tickets item (TicketModel: id, ticketNumber, status)."""
    return ticket_ref(item.get("id"), item.get("ticketNumber"), item.get("status"))
