"""Autotask's ticket webhooks as the sandbox simulates them: registration and signed callouts.

Registration follows the Swagger's TicketWebhookModel, TicketWebhookFieldModel and
TicketWebhookExcludedResourceModel (shared/specs/autotask-rest-swagger-v1.0.SergLGP-2022.json);
the callout's body `{Action, Guid, EntityType, Id, Fields, EventTime, SequenceNumber, PersonID}`
and its `X-Hook-Signature: sha1=<base64 HMAC-SHA1(secret, body)>` header follow
../shared/reference/autotask-api.md §14 "Webhooks" (unconfirmed there, from n8n-nodes-autotask
types/webhook.ts and helpers/webhook/signature.ts). Delivery: 10 s per attempt, 5 attempts with
a pause between them (30 s in Autotask, Webhooks_Error_Handling.htm; configurable here so tests
are fast), in order per webhook, from a background thread so the change that fired it answers at
once. Webhooks live in memory only (a state file keeps tickets, not webhooks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from adapters.sandbox.errors import SandboxError
from adapters.sandbox.values import format_datetime

logger = logging.getLogger(__name__)

#: The writable properties of TicketWebhookModel (id, isReady and webhookGUID are the server's).
WEBHOOK_PROPERTIES = {
    "deactivationUrl": str,
    "isActive": bool,
    "isSubscribedToCreateEvents": bool,
    "isSubscribedToDeleteEvents": bool,
    "isSubscribedToUpdateEvents": bool,
    "name": str,
    "notificationEmailAddress": str,
    "ownerResourceID": int,
    "secretKey": str,
    "sendThresholdExceededNotification": bool,
    "webhookUrl": str,
}

#: SecretKey holds at most 64 characters (autotask-api.md §14, Webhooks).
SECRET_KEY_MAX = 64

#: The ticket fields a webhook can subscribe to, by the sandbox's fieldID. Real fieldIDs come
#: from the fieldID picklist of TicketWebhookFields/entityInformation/fields; these numbers are
#: the sandbox's own (invented), the labels are the ticket fields' REST names.
TICKET_WEBHOOK_FIELDS = {
    1: "status",
    2: "priority",
    3: "title",
    4: "description",
    5: "externalID",
    6: "assignedResourceID",
    7: "queueID",
    8: "completedDate",
    9: "ticketNumber",
}

#: Autotask's per-attempt timeout for a callout (Webhooks_Error_Handling.htm).
CALLOUT_TIMEOUT_SECONDS = 10.0
#: Attempts per event before it is dropped (Webhooks_Error_Handling.htm).
CALLOUT_ATTEMPTS = 5
#: Autotask's pause between attempts; tests set a shorter one (`TicketWebhooks.retry_seconds`).
CALLOUT_RETRY_SECONDS = 30.0


def signature(secret: str, body: bytes) -> str:
    """The X-Hook-Signature value of `body`: `sha1=` and the base64 HMAC-SHA1 with `secret`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode()


@dataclass
class Webhook:
    """One TicketWebhook with its subscribed fields and excluded resources."""

    record: dict[str, Any]
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    excluded: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        """The webhook's id."""
        return int(self.record["id"])

    def public(self) -> dict[str, Any]:
        """The TicketWebhookModel as the API answers it (the secret is write-only)."""
        return {**self.record, "secretKey": None}


@dataclass(frozen=True)
class Callout:
    """One event on its way to one webhook: the URL, the signed body and its secret."""

    webhook_id: int
    url: str
    body: bytes
    secret: str


class TicketWebhooks:
    """The database's ticket webhooks and the thread that delivers their callouts."""

    def __init__(
        self,
        *,
        retry_seconds: float = CALLOUT_RETRY_SECONDS,
        attempts: int = CALLOUT_ATTEMPTS,
        timeout: float = CALLOUT_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.retry_seconds = retry_seconds
        self.attempts = attempts
        self.timeout = timeout
        self.clock = clock
        self.lock = threading.RLock()
        self._webhooks: dict[int, Webhook] = {}
        self._next_ids = {"webhook": 1, "field": 1, "excluded": 1}
        self._sequence = 0
        #: Every attempt made: webhook id, URL, action, ticket id, attempt, HTTP status or error.
        self.log: list[dict[str, Any]] = []
        self._queue: queue.Queue[Callout] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def reset(self) -> None:
        """Forget every webhook and the callout log (callouts queued still go)."""
        with self.lock:
            self._webhooks.clear()
            self._next_ids = {"webhook": 1, "field": 1, "excluded": 1}
            self.log.clear()

    # -- registration (the REST API's TicketWebhooks and its child entities) --------------------

    def create(self, values: Mapping[str, Any]) -> int:
        """Create a TicketWebhook from REST-named values; return its id."""
        record = _webhook_values(values, creating=True)
        with self.lock:
            new_id = self._next_ids["webhook"]
            self._next_ids["webhook"] += 1
            record = {
                "id": new_id,
                "isReady": True,
                "webhookGUID": str(uuid.uuid4()),
                **dict.fromkeys(WEBHOOK_PROPERTIES),
                **record,
            }
            self._webhooks[new_id] = Webhook(record)
            return new_id

    def update(self, values: Mapping[str, Any]) -> int:
        """PATCH a TicketWebhook: only the values given change."""
        webhook = self._webhook(values.get("id"))
        changes = _webhook_values({k: v for k, v in values.items() if k != "id"}, creating=False)
        with self.lock:
            webhook.record.update(changes)
        return webhook.id

    def delete(self, webhook_id: int) -> None:
        """Delete a TicketWebhook and its children."""
        with self.lock:
            if self._webhooks.pop(webhook_id, None) is None:
                raise SandboxError(f"No matching records found for TicketWebhooks id {webhook_id}.")

    def get(self, webhook_id: int) -> dict[str, Any] | None:
        """One TicketWebhookModel, or None."""
        with self.lock:
            webhook = self._webhooks.get(webhook_id)
            return webhook.public() if webhook else None

    def all(self) -> list[dict[str, Any]]:
        """Every TicketWebhookModel, by id."""
        with self.lock:
            return [self._webhooks[k].public() for k in sorted(self._webhooks)]

    def add_field(self, parent_id: int, values: Mapping[str, Any]) -> int:
        """Subscribe a webhook to a ticket field (TicketWebhookFieldModel); return its id."""
        webhook = self._webhook(parent_id)
        field_id = values.get("fieldID")
        if isinstance(field_id, bool) or not isinstance(field_id, int):
            raise SandboxError(f"Invalid value {field_id!r} for field fieldID.")
        if field_id not in TICKET_WEBHOOK_FIELDS:
            raise SandboxError(f"Invalid fieldID {field_id}: no such ticket webhook field.")
        with self.lock:
            new_id = self._next_ids["field"]
            self._next_ids["field"] += 1
            webhook.fields[new_id] = {
                "id": new_id,
                "webhookID": parent_id,
                "fieldID": field_id,
                "isDisplayAlwaysField": bool(values.get("isDisplayAlwaysField", False)),
                "isSubscribedField": bool(values.get("isSubscribedField", True)),
            }
            return new_id

    def add_excluded_resource(self, parent_id: int, values: Mapping[str, Any]) -> int:
        """Exclude a resource's changes from a webhook (TicketWebhookExcludedResourceModel)."""
        webhook = self._webhook(parent_id)
        resource_id = values.get("resourceID")
        if isinstance(resource_id, bool) or not isinstance(resource_id, int):
            raise SandboxError(f"Invalid value {resource_id!r} for field resourceID.")
        with self.lock:
            new_id = self._next_ids["excluded"]
            self._next_ids["excluded"] += 1
            webhook.excluded[new_id] = {
                "id": new_id,
                "webhookID": parent_id,
                "resourceID": resource_id,
            }
            return new_id

    def fields_of(self, parent_id: int) -> list[dict[str, Any]]:
        """A webhook's TicketWebhookFieldModels."""
        with self.lock:
            return list(self._webhook(parent_id).fields.values())

    def excluded_resources_of(self, parent_id: int) -> list[dict[str, Any]]:
        """A webhook's TicketWebhookExcludedResourceModels."""
        with self.lock:
            return list(self._webhook(parent_id).excluded.values())

    def _webhook(self, webhook_id: Any) -> Webhook:
        try:
            key = int(webhook_id)
        except (TypeError, ValueError) as e:
            raise SandboxError(f"Invalid value {webhook_id!r} for field id.") from e
        with self.lock:
            webhook = self._webhooks.get(key)
        if webhook is None:
            raise SandboxError(f"No matching records found for TicketWebhooks id {key}.")
        return webhook

    # -- callouts --------------------------------------------------------------------------------

    def ticket_changed(
        self,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        person_id: int,
    ) -> int:
        """Queue a callout to every active webhook the change concerns; return how many.

        `action` is Create, Update or Delete. An update reaches a webhook only when a field it
        subscribed to changed (any field when it subscribed to none); the body's Fields are the
        changed subscribed fields plus its display-always fields. A change made by an excluded
        resource reaches nobody: that is what ExcludedResources are for (autotask-api.md §14).
        """
        changed = {
            name
            for name in TICKET_WEBHOOK_FIELDS.values()
            if before is None or before.get(name) != after.get(name)
        }
        queued = 0
        with self.lock:
            webhooks = [self._webhooks[k] for k in sorted(self._webhooks)]
            for webhook in webhooks:
                fields = self._fields_for(webhook, action, changed, person_id)
                if fields is None:
                    continue
                self._sequence += 1
                body = {
                    "Action": action,
                    "Guid": str(uuid.uuid4()),
                    "EntityType": "Ticket",
                    "Id": after["id"],
                    "Fields": {name: after.get(name) for name in fields},
                    "EventTime": format_datetime(self.clock()),
                    "SequenceNumber": self._sequence,
                    "PersonID": person_id,
                }
                self._queue.put(
                    Callout(
                        webhook.id,
                        str(webhook.record["webhookUrl"]),
                        json.dumps(body, separators=(",", ":")).encode(),
                        str(webhook.record.get("secretKey") or ""),
                    )
                )
                queued += 1
            if queued:
                self._start()
        return queued

    def _fields_for(
        self, webhook: Webhook, action: str, changed: set[str], person_id: int
    ) -> list[str] | None:
        """The Fields a webhook's callout carries, or None when the change does not reach it."""
        record = webhook.record
        subscribed_to = {
            "Create": record.get("isSubscribedToCreateEvents"),
            "Update": record.get("isSubscribedToUpdateEvents"),
            "Delete": record.get("isSubscribedToDeleteEvents"),
        }
        if not record.get("isActive") or not subscribed_to.get(action) or not record["webhookUrl"]:
            return None
        if any(e["resourceID"] == person_id for e in webhook.excluded.values()):
            return None
        names = {f["fieldID"]: TICKET_WEBHOOK_FIELDS[f["fieldID"]] for f in webhook.fields.values()}
        subscribed = [
            TICKET_WEBHOOK_FIELDS[f["fieldID"]]
            for f in webhook.fields.values()
            if f["isSubscribedField"]
        ]
        always = [
            TICKET_WEBHOOK_FIELDS[f["fieldID"]]
            for f in webhook.fields.values()
            if f["isDisplayAlwaysField"]
        ]
        if action == "Update":
            hit = [n for n in subscribed if n in changed] if subscribed else sorted(changed)
            if not hit:
                return None
        else:
            hit = subscribed or sorted(set(names.values()))
        return list(dict.fromkeys([*hit, *always]))

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._deliver_forever, name="sandbox-webhooks", daemon=True
            )
            self._thread.start()

    def _deliver_forever(self) -> None:
        """Deliver queued callouts one at a time, in order (a retry holds the later ones)."""
        while True:
            callout = self._queue.get()
            try:
                self._deliver(callout)
            except Exception:  # a bug must not stop every later callout
                logger.exception("sandbox.webhook_delivery_failed")

    def _deliver(self, callout: Callout) -> None:
        body = json.loads(callout.body)
        headers = {
            "Content-Type": "application/json",
            "X-Hook-Signature": signature(callout.secret, callout.body),
        }
        for attempt in range(1, self.attempts + 1):
            entry: dict[str, Any] = {
                "webhook_id": callout.webhook_id,
                "url": callout.url,
                "action": body["Action"],
                "ticket_id": body["Id"],
                "sequence": body["SequenceNumber"],
                "attempt": attempt,
            }
            try:
                response = self._session.post(
                    callout.url, data=callout.body, headers=headers, timeout=self.timeout
                )
                entry["status"] = response.status_code
            except requests.RequestException as e:
                entry["error"] = type(e).__name__
            with self.lock:
                self.log.append(entry)
            if 200 <= int(entry.get("status", 0)) < 300:
                return
            if attempt < self.attempts:
                threading.Event().wait(self.retry_seconds)


def _webhook_values(values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """TicketWebhookModel values checked and typed; SandboxError naming the first bad one."""
    clean: dict[str, Any] = {}
    lowered = {name.lower(): name for name in WEBHOOK_PROPERTIES}
    for key, value in values.items():
        if key in ("id", "isReady", "webhookGUID"):
            continue
        name = lowered.get(str(key).lower())
        if name is None:
            raise SandboxError(f"Unable to find {key} in the TicketWebhook Entity")
        kind = WEBHOOK_PROPERTIES[name]
        if value is not None and (
            not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        ):
            raise SandboxError(f"Invalid value {value!r} for field {name}.")
        clean[name] = value
    if creating:
        for required in ("name", "webhookUrl", "deactivationUrl", "secretKey"):
            if not clean.get(required):
                raise SandboxError(f"{required} is required.")
    secret = clean.get("secretKey")
    if isinstance(secret, str) and len(secret) > SECRET_KEY_MAX:
        raise SandboxError("String value exceeds maximum length (field:secretKey).")
    return clean
