"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of every call under /api/v1.

The document is built here, in one place, from the same constants the calls check (statuses,
limits, id ranges); tests/web/test_openapi.py fails when a route is added without being described
here (or described without existing), and tests/web/test_openapi_schemathesis.py has schemathesis
call every operation and check each answer against it.

It is served without a token: it holds no secret and nothing a client could not learn from the
open-source code, and a path the API does not have is a 404 before any token is checked anyway.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, jsonify

from connector.integrations.catalog import DEFAULT_COMPANY_LIMIT, MAX_COMPANY_LIMIT
from connector.integrations.credentials import SCHEMES
from connector.integrations.store import ACTIONS, STATUSES
from connector.integrations.tenants import MAX_COMPANY_ID
from connector.payloads.requests import METHODS
from connector.pipeline.activity_log import FAILED, NO_ANSWER, OK, STATUS_CLASSES
from connector.pipeline.testdelivery import TEST_TEXT_MAX, TEST_TITLE_MAX
from connector.web.api import PREFIX
from connector.web.api.alerts import DELIVERY_OUTCOMES, DELIVERY_STATES
from connector.web.params import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT

#: Public: no before_request token check (see the module's docstring).
bp = Blueprint("openapi", __name__, url_prefix=PREFIX)

Schema = dict[str, Any]

# -- schema helpers ------------------------------------------------------------------------------

ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
TIME: Schema = {"type": "string", "description": "ISO 8601 time"}


def ref(name: str) -> Schema:
    """A reference to a schema of components.schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema`, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    """An array of `items`."""
    return {"type": "array", "items": items}


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with exactly these keys (the optional ones may be left out)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def has(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with at least these keys (more may come: their shape belongs to a module that
    may add to it, e.g. an adapter's report)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def page(name: str, item: Schema, *, total: bool = False) -> Schema:
    """A list endpoint's answer: `{name: [...], "limit", "offset"}` (and "total")."""
    keys: dict[str, Schema] = {name: array(item)}
    if total:
        keys["total"] = {"type": "integer", "minimum": 0}
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    return closed({**keys, "limit": limit, "offset": ID})


# -- parameters ----------------------------------------------------------------------------------


def path_id(name: str, what: str) -> Schema:
    """A database id in the path: out of range or unknown, it is a 404."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id (0 to 2^63 - 1; any other is a 404).",
        "schema": ID,
    }


def query(name: str, schema: Schema, description: str) -> Schema:
    """An optional query parameter (an unknown, repeated, empty or refused one is a 400)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


TEXT_QUERY: Schema = {"type": "string", "minLength": 1, "description": "Any text but NUL."}
ID_QUERY: Schema = ID
PAGING = [
    query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "At most this many items.",
    ),
    query("offset", {**ID, "default": 0}, "Skip this many items."),
]
FORMAT = query(
    "format",
    {"type": "string", "enum": ["json", "csv"]},
    "json or csv (a CSV attachment); without it, `Accept: text/csv` asks for CSV.",
)
DAY = [
    query(
        "day",
        {"type": "string", "format": "date"},
        "The day (YYYY-MM-DD) of the report, within the days it covers; none: today.",
    ),
    query(
        "utc_offset_minutes",
        {"type": "integer", "minimum": -720, "maximum": 840, "multipleOf": 15},
        "Minutes east of UTC of the report's day (a multiple of 15).",
    ),
]
INTEGRATION_ID = path_id("integration_id", "integration")
REFRESH = query(
    "refresh",
    {"type": "string", "enum": ["true", "false"]},
    "true: ask the ticket system now instead of the cache.",
)

# -- request bodies ------------------------------------------------------------------------------

REQUEST = closed(
    {
        "status": {"type": "string", "enum": STATUSES},
        "action": {"type": "string", "enum": ACTIONS},
        "method": {"type": "string", "enum": list(METHODS)},
        "url": {"type": "string", "minLength": 1, "maxLength": 2000},
        "body": {"type": "string", "description": "The payload template."},
    },
    {
        "headers": {
            "type": "object",
            "propertyNames": {"minLength": 1, "maxLength": 200},
            "additionalProperties": {"type": "string", "maxLength": 2000},
        },
        "format": nullable({"type": "string", "enum": ["json", "xml"]}),
        "id_path": {
            "type": "string",
            "maxLength": 500,
            "description": "Where the create request's answer holds the ticket id.",
        },
    },
)
PLAIN_TEXT = "no control characters"
INTEGRATION_FIELDS: dict[str, Schema] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": PLAIN_TEXT},
    "api_flavour": {
        "type": "string",
        "minLength": 1,
        "maxLength": 10,
        "description": "A ticket system API the connector has a profile for (rest, soap).",
    },
    "zone_lookup_url": {
        "type": "string",
        "minLength": 1,
        "maxLength": 500,
        "description": "https, on a host the settings allow.",
    },
    "username": {"type": "string", "minLength": 1, "maxLength": 254, "description": PLAIN_TEXT},
    "secret": {"type": "string", "minLength": 1, "maxLength": 500, "writeOnly": True},
    "integration_code": {
        "type": "string",
        "minLength": 1,
        "maxLength": 500,
        "writeOnly": True,
        "description": "The API tracking identifier; " + PLAIN_TEXT,
    },
}
SETTINGS: Schema = {
    "type": "object",
    "description": "Ticket settings (the keys given replace theirs), checked as a whole.",
}
REASON = closed(
    {
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": 500,
            "description": "Not blank; no NUL.",
        }
    }
)
REPLAY_ALL = closed({}, {"integration_id": nullable(ID)})
EMPTY = closed({})

BODIES: dict[str, Schema] = {
    "NewIntegration": closed(INTEGRATION_FIELDS, {"settings": SETTINGS}),
    "IntegrationChanges": closed(
        {},
        {
            **INTEGRATION_FIELDS,
            "settings": SETTINGS,
            "regenerate_requests": {
                "type": "boolean",
                "description": "Replace every delivery request with its default.",
            },
        },
    ),
    "Requests": closed(
        {},
        {
            "same_for_every_status": BOOLEAN,
            "deliver": {
                "type": "object",
                "propertyNames": {"enum": STATUSES},
                "additionalProperties": BOOLEAN,
            },
            "requests": array(REQUEST),
        },
    ),
    "Generate": closed({}, {"replace_customized": BOOLEAN}),
    "Preview": closed(
        {},
        {
            "requests": array(REQUEST),
            "status": nullable({"type": "string", "enum": STATUSES}),
            "alert_id": nullable({**ID, "minimum": 1}),
            "ticket_id": nullable({**ID, "minimum": 1}),
        },
    ),
    "NewCredential": closed(
        {"scheme": {"type": "string", "enum": list(SCHEMES)}},
        {
            "source": nullable({"type": "string", "description": "A source's slug."}),
            "label": {"type": "string", "maxLength": 100, "description": PLAIN_TEXT},
            "username": nullable(
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 254,
                    "description": "basic only (and required there); no ':' or control chars.",
                }
            ),
        },
    ),
    "TestDelivery": closed(
        {},
        {
            "integration_id": nullable({**ID, "minimum": 1}),
            "company_id": nullable({"type": "integer", "minimum": 0}),
            "complete": BOOLEAN,
            "title": nullable({"type": "string", "minLength": 1, "maxLength": TEST_TITLE_MAX}),
            "text": nullable({"type": "string", "minLength": 1, "maxLength": TEST_TEXT_MAX}),
        },
    ),
    "Activate": closed({"backfill": BOOLEAN}),
    "TenantMapping": closed(
        {},
        {
            "company_id": nullable({"type": "integer", "minimum": 0, "maximum": MAX_COMPANY_ID}),
            "enabled": {"type": "boolean", "default": True},
        },
    ),
    "Reason": REASON,
    "ReplayAll": REPLAY_ALL,
    "Empty": EMPTY,
}

# -- answers -------------------------------------------------------------------------------------

TICKET = closed(
    {
        "episode": INTEGER,
        "state": STRING,
        "ticket_id": nullable(INTEGER),
        "ticket_number": nullable(STRING),
        "ticket_status": nullable(INTEGER),
        "ticket_priority": nullable(INTEGER),
        "applied_severity": nullable(STRING),
        "marker": STRING,
        "completed_at": nullable(TIME),
        "closed_remotely": nullable(
            closed({"as": STRING, "at": nullable(TIME), "by": nullable(STRING)})
        ),
    }
)
DELIVERY = closed(
    {
        "id": ID,
        "alert_id": ID,
        "event_id": ID,
        "state": {"type": "string", "enum": list(DELIVERY_STATES)},
        "attempts": INTEGER,
        "next_attempt_at": nullable(TIME),
        "outcome": nullable({"type": "string", "enum": list(DELIVERY_OUTCOMES)}),
        "planned": nullable(STRING),
        "last_error": nullable(STRING),
        "last_request": nullable(OBJECT),
        "last_response": nullable(OBJECT),
        "created_at": nullable(TIME),
        "finished_at": nullable(TIME),
        "discarded_at": nullable(TIME),
        "discard_reason": nullable(STRING),
    }
)
ALERT_FIELDS: dict[str, Schema] = {
    "id": ID,
    "integration_id": ID,
    "fingerprint": STRING,
    "source": STRING,
    "status": {"type": "string", "enum": STATUSES},
    "severity": STRING,
    "title": STRING,
    "host": STRING,
    "tenant": STRING,
    "monitor": STRING,
    "started_at": nullable(TIME),
    "last_event_at": nullable(TIME),
    "ticket": nullable(ref("Ticket")),
}
EVENT = closed(
    {
        "id": ID,
        "status": STRING,
        "severity": STRING,
        "occurred_at": nullable(TIME),
        "received_at": nullable(TIME),
        "disposition": STRING,
        "warnings": array(STRING),
    }
)
REJECTION_FIELDS: dict[str, Schema] = {
    "id": ID,
    "integration_id": ID,
    "source": STRING,
    "status": {"type": "integer", "minimum": 100, "maximum": 599},
    "alert_index": nullable(INTEGER),
    "message": STRING,
    "details": nullable(OBJECT),
    "request_id": STRING,
    "content_type": STRING,
    "body_size": nullable(INTEGER),
    "received_at": TIME,
    "replayed_at": nullable(TIME),
    "replay_result": nullable(OBJECT),
    "discarded_at": nullable(TIME),
    "discard_reason": nullable(STRING),
}
INTEGRATION_ANSWER: dict[str, Schema] = {
    "id": ID,
    "name": STRING,
    "api_flavour": STRING,
    "zone_lookup_url": STRING,
    "username": STRING,
    "secret_set": BOOLEAN,
    "integration_code": nullable({"type": "string", "description": "Masked."}),
    "active": BOOLEAN,
    "deactivated_at": nullable(TIME),
    "created_at": TIME,
    "updated_at": TIME,
    "autotask_calls": closed(
        {
            "state": {
                "type": "string",
                "enum": [
                    "ok",
                    "paused",
                    "credentials_refused",
                    "breaker_open",
                    "breaker_half_open",
                ],
            },
            "message": nullable(STRING),
            "until": nullable(TIME),
        }
    ),
    "autotask_budget": OBJECT,
}
CREDENTIAL_FIELDS: dict[str, Schema] = {
    "id": ID,
    "integration_id": ID,
    "scheme": {"type": "string", "enum": list(SCHEMES)},
    "source": nullable(STRING),
    "label": STRING,
    "username": nullable(STRING),
    "created_at": TIME,
    "revoked_at": nullable(TIME),
}
ACTIVATION: dict[str, Schema] = {
    "integration_id": ID,
    "active": BOOLEAN,
    "deactivated_at": nullable(TIME),
    "held_last_48_hours": INTEGER,
    "tickets_to_create": INTEGER,
    "held_older": INTEGER,
    "since": TIME,
}
REQUESTS_STATE = closed(
    {
        "same_for_every_status": BOOLEAN,
        "deliver": {"type": "object", "additionalProperties": BOOLEAN},
        "requests": array(
            has({"status": {"type": "string", "enum": STATUSES}, "action": STRING}, {})
        ),
    }
)
TENANT = closed(
    {"tenant": STRING, "company_id": nullable(INTEGER), "enabled": BOOLEAN},
)
CALL = closed(
    {
        "id": ID,
        "at": TIME,
        "integration_id": ID,
        "integration": STRING,
        "api_user": STRING,
        "method": STRING,
        "entity": STRING,
        "records": nullable(INTEGER),
        "http_status": nullable(INTEGER),
        "execution_ms": {"type": "number", "minimum": 0},
        "error": nullable(STRING),
        "delivery_id": nullable(ID),
        "alert_id": nullable(ID),
    },
    {"threshold_exceeded": BOOLEAN},
)
TEST_RESULT = has(
    {"ok": BOOLEAN},
    {"integration_id": ID, "error": STRING, "detail": nullable(STRING)},
)
ERROR = closed(
    {
        "error": closed(
            {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "message": STRING,
                "request_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            },
            {"details": OBJECT},
        )
    }
)

ANSWERS: dict[str, Schema] = {
    "Error": ERROR,
    "Ticket": TICKET,
    "Delivery": DELIVERY,
    "Alert": closed(ALERT_FIELDS),
    "AlertHistory": closed(
        {
            **ALERT_FIELDS,
            "message": STRING,
            "properties": OBJECT,
            "tickets": array(ref("Ticket")),
            "events": array(EVENT),
            "warnings": array(STRING),
            "deliveries": array(ref("Delivery")),
        }
    ),
    "RejectedWebhook": closed(REJECTION_FIELDS),
    "RejectedWebhookWithBody": closed(
        {
            **REJECTION_FIELDS,
            "body_excerpt": nullable(STRING),
            "body": nullable(STRING),
            "body_base64": nullable(STRING),
        }
    ),
    "Integration": closed(INTEGRATION_ANSWER),
    "IntegrationWithSettings": closed({**INTEGRATION_ANSWER, "settings": OBJECT}),
    "Credential": closed(CREDENTIAL_FIELDS),
    "RequestsState": REQUESTS_STATE,
    "Tenant": TENANT,
    "Call": CALL,
    "TestDeliveryResult": TEST_RESULT,
}

# -- responses -----------------------------------------------------------------------------------

ERRORS: dict[int, str] = {
    400: "Refused: a bad query parameter or body field, each named in the message and details.",
    401: "No live API token in `Authorization: Bearer …`.",
    404: "No such record (or an id out of range).",
    409: "The record's state does not allow it.",
    413: "The body is larger than MAX_CONTENT_LENGTH.",
    422: "The kept body still cannot be read.",
    429: "Asked more often than allowed; ask again after Retry-After seconds.",
    502: "The ticket system (or mail server) failed to answer usefully; said in words.",
    503: "The service or the ticket system cannot take it now; retry after Retry-After seconds.",
}


def json_content(schema: Schema) -> Schema:
    """An application/json content of `schema`."""
    return {"application/json": {"schema": schema}}


def answer(description: str, schema: Schema, **headers: Schema) -> Schema:
    """A response with a JSON body (and headers, if any)."""
    response: Schema = {"description": description, "content": json_content(schema)}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER: Schema = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 1},
}


def error_responses(*codes: int) -> dict[str, Schema]:
    """The error envelope for each of `codes`, plus 401 and 503, which any call may answer."""
    responses: dict[str, Schema] = {}
    for code in sorted({*codes, 401, 503}):
        headers = {"Retry-After": RETRY_AFTER} if code in (429, 503) else {}
        responses[str(code)] = answer(ERRORS[code], ref("Error"), **headers)
    return responses


def operation(
    summary: str,
    tag: str,
    ok: dict[str, Schema],
    *,
    errors: tuple[int, ...] = (),
    parameters: list[Schema] | None = None,
    body: str | None = None,
    body_required: bool = False,
) -> Schema:
    """One operation: its answers, then the errors (each a JSON error envelope)."""
    if body is not None:
        errors = (*errors, 400, 413)
    found: Schema = {
        "summary": summary,
        "tags": [tag],
        "parameters": parameters or [],
        "responses": {**error_responses(*errors), **ok},
    }
    if body is not None:
        found["requestBody"] = {"required": body_required, "content": json_content(ref(body))}
    return found


def ok(schema: Schema, description: str = "Done.", code: int = 200) -> dict[str, Schema]:
    """A success answer with a JSON body."""
    return {str(code): answer(description, schema)}


def json_or_csv(schema: Schema) -> dict[str, Schema]:
    """A 200 answered as JSON, or as a CSV attachment (`format=csv` or `Accept: text/csv`)."""
    return {
        "200": {
            "description": "The report, as JSON or as a CSV attachment.",
            "content": {**json_content(schema), "text/csv": {"schema": STRING}},
        }
    }


# -- the document --------------------------------------------------------------------------------

ALERTS = "alerts"
DELIVERIES = "deliveries"
REJECTED = "rejected webhooks"
INTEGRATIONS = "integrations"
CATALOG = "ticket system lists"
TENANTS = "tenants"
ACTIVITY = "activity"
SOURCES = "sources"


def _paths() -> dict[str, dict[str, Schema]]:
    i = INTEGRATION_ID
    alert_status = {"type": "string", "enum": STATUSES}
    lists = (400,)
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document (no token needed).",
                "tags": ["meta"],
                "security": [],
                "responses": ok(OBJECT, "The OpenAPI document."),
            }
        },
        "/alerts": {
            "get": operation(
                "Alerts, newest activity first, each with its current ticket.",
                ALERTS,
                ok(page("alerts", ref("Alert"))),
                errors=lists,
                parameters=[
                    query("status", alert_status, "The alert's status."),
                    query("source", TEXT_QUERY, "A source's slug."),
                    query("fingerprint", TEXT_QUERY, "The alert's fingerprint, exactly."),
                    query("integration_id", ID_QUERY, "The alert's integration."),
                    query("ticket_id", ID_QUERY, "Any ticket the alert has had."),
                    query("ticket_number", TEXT_QUERY, "Any ticket the alert has had."),
                    query("search", TEXT_QUERY, "Text the tenant or host contains (any case)."),
                    *PAGING,
                ],
            )
        },
        "/alerts/{alert_id}": {
            "get": operation(
                "One alert: tickets, events and deliveries.",
                ALERTS,
                ok(ref("AlertHistory")),
                errors=(404,),
                parameters=[path_id("alert_id", "alert")],
            )
        },
        "/deliveries": {
            "get": operation(
                "Deliveries, newest first.",
                DELIVERIES,
                ok(page("deliveries", ref("Delivery"))),
                errors=lists,
                parameters=[
                    query("state", {"type": "string", "enum": list(DELIVERY_STATES)}, "State."),
                    query("alert_id", ID_QUERY, "The delivery's alert."),
                    query(
                        "outcome",
                        {"type": "string", "enum": list(DELIVERY_OUTCOMES)},
                        "What it did.",
                    ),
                    *PAGING,
                ],
            )
        },
        "/deliveries/{delivery_id}/replay": {
            "post": operation(
                "Put a dead letter back in the queue.",
                DELIVERIES,
                ok(ref("Delivery")),
                errors=(404, 409),
                parameters=[path_id("delivery_id", "delivery")],
            )
        },
        "/deliveries/replay-dead": {
            "post": operation(
                "Replay every dead letter (of one integration).",
                DELIVERIES,
                ok(closed({"replayed": INTEGER, "integration_id": nullable(ID)})),
                errors=(404,),
                body="ReplayAll",
            )
        },
        "/deliveries/{delivery_id}/discard": {
            "post": operation(
                "Give a dead letter up.",
                DELIVERIES,
                ok(ref("Delivery")),
                errors=(404, 409),
                parameters=[path_id("delivery_id", "delivery")],
                body="Reason",
                body_required=True,
            )
        },
        "/rejected-webhooks": {
            "get": operation(
                "Refused webhooks, newest first (no body).",
                REJECTED,
                ok(page("rejected_webhooks", ref("RejectedWebhook"))),
                errors=lists,
                parameters=[
                    query("source", TEXT_QUERY, "A source's slug."),
                    query("integration_id", ID_QUERY, "The webhook's integration."),
                    query("status", {"type": "integer", "minimum": 100, "maximum": 599}, "HTTP."),
                    query("request_id", TEXT_QUERY, "The id the sender was answered with."),
                    *PAGING,
                ],
            )
        },
        "/rejected-webhooks/{rejected_id}": {
            "get": operation(
                "One refused webhook with its body.",
                REJECTED,
                ok(ref("RejectedWebhookWithBody")),
                errors=(404,),
                parameters=[path_id("rejected_id", "rejected webhook")],
            )
        },
        "/rejected-webhooks/{rejected_id}/replay": {
            "post": operation(
                "Take the kept body in again, as the hook would now.",
                REJECTED,
                ok(
                    has(
                        {
                            "rejected_webhook_id": ID,
                            "replayed_at": TIME,
                            "accepted": array(OBJECT),
                            "rejected": array(OBJECT),
                            "request_id": STRING,
                        },
                        {},
                    ),
                    "Taken in: the alerts' dispositions.",
                    202,
                ),
                errors=(404, 409, 422),
                parameters=[path_id("rejected_id", "rejected webhook")],
            )
        },
        "/rejected-webhooks/{rejected_id}/discard": {
            "post": operation(
                "Give a kept webhook up.",
                REJECTED,
                ok(ref("RejectedWebhook")),
                errors=(404, 409),
                parameters=[path_id("rejected_id", "rejected webhook")],
                body="Reason",
                body_required=True,
            )
        },
        "/rejected-webhooks/replay-all": {
            "post": operation(
                "Replay every kept webhook neither replayed nor discarded.",
                REJECTED,
                ok(
                    closed(
                        {
                            "replayed": INTEGER,
                            "replayed_ids": array(ID),
                            "refused": array(closed({"id": ID, "message": STRING})),
                            "integration_id": nullable(ID),
                        }
                    )
                ),
                errors=(404,),
                body="ReplayAll",
            )
        },
        "/integrations": {
            "get": operation(
                "Every integration (never a secret); takes no query parameter.",
                INTEGRATIONS,
                ok(closed({"integrations": array(ref("Integration"))})),
                errors=lists,
            ),
            "post": operation(
                "Create an integration with its flavour's default delivery requests.",
                INTEGRATIONS,
                {
                    "201": answer(
                        "Created.",
                        ref("IntegrationWithSettings"),
                        Location={"description": "The new integration.", "schema": STRING},
                    )
                },
                errors=(409,),
                body="NewIntegration",
                body_required=True,
            ),
        },
        "/integrations/{integration_id}": {
            "get": operation(
                "One integration with its ticket settings.",
                INTEGRATIONS,
                ok(ref("IntegrationWithSettings")),
                errors=(404,),
                parameters=[i],
            ),
            "patch": operation(
                "Change some fields; takes effect at the next event.",
                INTEGRATIONS,
                ok(
                    closed(
                        {
                            **INTEGRATION_ANSWER,
                            "settings": OBJECT,
                            "changed": array(STRING),
                            "requests_regenerated": BOOLEAN,
                        }
                    )
                ),
                errors=(404, 409),
                parameters=[i],
                body="IntegrationChanges",
                body_required=True,
            ),
        },
        "/integrations/{integration_id}/requests": {
            "get": operation(
                "The delivery requests, one per slot, and the switches.",
                INTEGRATIONS,
                ok(ref("RequestsState")),
                errors=(404,),
                parameters=[i],
            ),
            "put": operation(
                "Replace some requests and switches; all or nothing.",
                INTEGRATIONS,
                ok(ref("RequestsState")),
                errors=(404,),
                parameters=[i],
                body="Requests",
                body_required=True,
            ),
        },
        "/integrations/{integration_id}/requests/generate": {
            "post": operation(
                "Every request back to its default (409 with diffs if customized).",
                INTEGRATIONS,
                ok(ref("RequestsState")),
                errors=(404, 409),
                parameters=[i],
                body="Generate",
            )
        },
        "/integrations/{integration_id}/hook-credentials": {
            "get": operation(
                "The webhook credentials, revoked ones too (never a secret).",
                INTEGRATIONS,
                ok(closed({"hook_credentials": array(ref("Credential"))})),
                errors=(400, 404),
                parameters=[i],
            ),
            "post": operation(
                "A new credential; its secret is in this answer only.",
                INTEGRATIONS,
                ok(
                    closed(
                        CREDENTIAL_FIELDS,
                        {"token": STRING, "password": STRING, "secret": STRING},
                    ),
                    "Created; `token`, `password` or `secret` by scheme.",
                    201,
                ),
                errors=(404,),
                parameters=[i],
                body="NewCredential",
                body_required=True,
            ),
        },
        "/integrations/{integration_id}/hook-credentials/{credential_id}": {
            "delete": operation(
                "Revoke a credential (revoking twice keeps the first time).",
                INTEGRATIONS,
                ok(ref("Credential")),
                errors=(404,),
                parameters=[i, path_id("credential_id", "credential")],
            )
        },
        "/integrations/{integration_id}/preview": {
            "post": operation(
                "The requests a status would send, rendered, never sent (secrets redacted).",
                INTEGRATIONS,
                ok(OBJECT),
                errors=(404, 422),
                parameters=[i],
                body="Preview",
            )
        },
        "/test-delivery": {
            "post": operation(
                "Send a test ticket (TEST_DELIVERIES_PER_MINUTE per token, then 429).",
                INTEGRATIONS,
                {
                    **ok(ref("TestDeliveryResult"), "The test ticket was made."),
                    "400": answer(
                        "A bad body (error envelope), or the integration or ticket refused.",
                        {"anyOf": [ref("Error"), ref("TestDeliveryResult")]},
                    ),
                    "502": answer("The ticket system failed.", ref("TestDeliveryResult")),
                    "503": answer(
                        "Throttled (a test result), or the service cannot take it now.",
                        {"anyOf": [ref("Error"), ref("TestDeliveryResult")]},
                        **{"Retry-After": RETRY_AFTER},
                    ),
                },
                errors=(404, 409, 429),
                body="TestDelivery",
            )
        },
        "/integrations/{integration_id}/test-mail": {
            "post": operation(
                "Mail the integration's emergency contact a test mail.",
                INTEGRATIONS,
                ok(closed({"ok": BOOLEAN, "integration_id": ID, "sent_to": STRING})),
                errors=(404, 409, 502),
                parameters=[i],
                body="Empty",
            )
        },
        "/integrations/{integration_id}/deactivate": {
            "post": operation(
                "Switch the integration off; its deliveries are held.",
                INTEGRATIONS,
                ok(closed({**ACTIVATION, "held_now": INTEGER})),
                errors=(404,),
                parameters=[i],
                body="Empty",
            )
        },
        "/integrations/{integration_id}/activation": {
            "get": operation(
                "What activating would deliver.",
                INTEGRATIONS,
                ok(closed(ACTIVATION)),
                errors=(400, 404),
                parameters=[i],
            )
        },
        "/integrations/{integration_id}/activate": {
            "post": operation(
                "Switch the integration on, with or without the last 48 hours' backlog.",
                INTEGRATIONS,
                ok(closed({**ACTIVATION, "delivered": INTEGER, "skipped": INTEGER})),
                errors=(404,),
                parameters=[i],
                body="Activate",
                body_required=True,
            )
        },
        "/integrations/{integration_id}/check-connection": {
            "post": operation(
                "Check the connection step by step (200 whether the checks pass or not).",
                CATALOG,
                ok(has({"integration_id": ID, "checked_at": TIME}, {})),
                errors=(400, 404, 413, 502),
                parameters=[i],
                body="Empty",
            )
        },
        "/integrations/{integration_id}/picklists": {
            "get": operation(
                "The ticket system's lists for the integration's settings.",
                CATALOG,
                ok(
                    closed(
                        {
                            "integration_id": ID,
                            "read_at": TIME,
                            "from_cache": BOOLEAN,
                            "settings": OBJECT,
                            "picklists": OBJECT,
                        }
                    )
                ),
                errors=(400, 404, 502),
                parameters=[i, REFRESH],
            )
        },
        "/integrations/{integration_id}/companies": {
            "get": operation(
                "Companies whose name contains `search`, by name.",
                CATALOG,
                ok(
                    closed(
                        {
                            "integration_id": ID,
                            "search": STRING,
                            "limit": INTEGER,
                            "read_at": TIME,
                            "from_cache": BOOLEAN,
                            "companies": array(OBJECT),
                        }
                    )
                ),
                errors=(400, 404, 502),
                parameters=[
                    i,
                    query(
                        "search",
                        {**TEXT_QUERY, "maxLength": 100},
                        "Text the name contains (any case).",
                    ),
                    query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_COMPANY_LIMIT,
                            "default": DEFAULT_COMPANY_LIMIT,
                        },
                        "At most this many companies.",
                    ),
                    REFRESH,
                ],
            )
        },
        "/integrations/{integration_id}/tenants/identical-names": {
            "get": operation(
                "Unmapped tenants, each with the one company of the same name or why not.",
                CATALOG,
                ok(
                    closed(
                        {
                            "integration_id": ID,
                            "matches": array(
                                closed(
                                    {
                                        "tenant": STRING,
                                        "company": nullable(closed({"id": ID, "name": STRING})),
                                        "problem": nullable(STRING),
                                    }
                                )
                            ),
                        }
                    )
                ),
                errors=(404, 502),
                parameters=[i],
            )
        },
        "/integrations/{integration_id}/tenants": {
            "get": operation(
                "The tenant → company map, by tenant.",
                TENANTS,
                ok(page("tenants", ref("Tenant"), total=True)),
                errors=(400, 404),
                parameters=[
                    i,
                    query("search", TEXT_QUERY, "Text the tenant contains (any case)."),
                    *PAGING,
                ],
            )
        },
        "/integrations/{integration_id}/tenants/unmapped": {
            "get": operation(
                "Tenants the alerts carry that the map lacks, most recently seen first.",
                TENANTS,
                ok(
                    page(
                        "tenants",
                        closed(
                            {"tenant": STRING, "alerts": INTEGER, "last_seen_at": nullable(TIME)}
                        ),
                        total=True,
                    )
                ),
                errors=(400, 404),
                parameters=[
                    i,
                    query("search", TEXT_QUERY, "Text the tenant contains (any case)."),
                    *PAGING,
                ],
            )
        },
        "/integrations/{integration_id}/tenants/{tenant}": {
            "put": operation(
                "Map a tenant (201 when new, 200 when changed).",
                TENANTS,
                {
                    **ok(ref("Tenant"), "Changed."),
                    **ok(ref("Tenant"), "Mapped.", 201),
                },
                errors=(404, 409),
                parameters=[i, TENANT_PATH],
                body="TenantMapping",
                body_required=True,
            ),
            "delete": operation(
                "Remove a tenant's mapping.",
                TENANTS,
                {"204": {"description": "Removed."}},
                errors=(400, 404),
                parameters=[i, TENANT_PATH],
            ),
        },
        "/activity/hourly": {
            "get": operation(
                "A day's calls to the ticket system per hour and integration.",
                ACTIVITY,
                json_or_csv(
                    has(
                        {
                            "day": STRING,
                            "utc_offset_minutes": INTEGER,
                            "start": TIME,
                            "end": TIME,
                            "threshold": INTEGER,
                            "integrations": array(OBJECT),
                            "hours": array(OBJECT),
                            "total": INTEGER,
                            "first_day": STRING,
                            "last_day": STRING,
                        },
                        {},
                    )
                ),
                errors=lists,
                parameters=[
                    *DAY,
                    query(
                        "table",
                        {"type": "string", "enum": ["hours", "totals"]},
                        "In CSV: the hours, or the day's totals.",
                    ),
                    FORMAT,
                ],
            )
        },
        "/activity/calls": {
            "get": operation(
                "The calls of one hour, in the order they were made.",
                ACTIVITY,
                json_or_csv(
                    closed(
                        {
                            "day": STRING,
                            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                            "utc_offset_minutes": INTEGER,
                            "start": TIME,
                            "end": TIME,
                            "integration_id": nullable(ID),
                            "threshold": INTEGER,
                            "calls": array(ref("Call")),
                            "total": INTEGER,
                            "limit": nullable(INTEGER),
                            "offset": ID,
                        }
                    )
                ),
                errors=lists,
                parameters=[
                    *DAY,
                    {
                        "name": "hour",
                        "in": "query",
                        "required": True,
                        "description": "The hour of the day.",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 23},
                    },
                    query("integration_id", ID_QUERY, "One integration's calls."),
                    FORMAT,
                    *PAGING,
                ],
            )
        },
        "/api-calls": {
            "get": operation(
                "The integration log: every call to the ticket system, newest first.",
                ACTIVITY,
                json_or_csv(page("api_calls", ref("Call"))),
                errors=lists,
                parameters=[
                    query("integration_id", ID_QUERY, "The call's integration."),
                    query("alert_id", ID_QUERY, "The call's alert."),
                    query("ticket_id", ID_QUERY, "The call's ticket."),
                    query("ticket_number", TEXT_QUERY, "The call's ticket."),
                    query(
                        "status",
                        {
                            "anyOf": [
                                {"type": "integer", "minimum": 100, "maximum": 599},
                                {
                                    "type": "string",
                                    "enum": [*STATUS_CLASSES, NO_ANSWER, OK, FAILED],
                                },
                            ]
                        },
                        "An HTTP status, a class (2xx …), error (no answer), ok or failed.",
                    ),
                    query("since", {"type": "string", "format": "date-time"}, "From."),
                    query("until", {"type": "string", "format": "date-time"}, "Before."),
                    FORMAT,
                    *PAGING,
                ],
            )
        },
        "/sources": {
            "get": operation(
                "Every source: its slug, name and webhook URL.",
                SOURCES,
                ok(
                    closed(
                        {
                            "sources": array(
                                closed({"slug": STRING, "name": STRING, "hook_url": STRING})
                            )
                        }
                    )
                ),
            )
        },
        "/sources/{slug}/sender-setup": {
            "get": operation(
                "What to paste on the sending side of a source.",
                SOURCES,
                ok(
                    closed(
                        {
                            "slug": STRING,
                            "name": STRING,
                            "hook_url": STRING,
                            "snippets": array(OBJECT),
                        }
                    )
                ),
                errors=(404,),
                parameters=[
                    {
                        "name": "slug",
                        "in": "path",
                        "required": True,
                        "description": "A source's slug (GET /sources lists them).",
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
            )
        },
    }


TENANT_PATH: Schema = {
    "name": "tenant",
    "in": "path",
    "required": True,
    "description": "The tenant as the alerts carry it, percent-encoded (slashes included).",
    "schema": {"type": "string", "minLength": 1},
}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1 (built once; callers must not change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Autotask Alert Connector API",
            "version": "1",
            "description": (
                "The JSON API of the connector: alerts, deliveries, refused webhooks,"
                " integrations and the ticket system's lists. Every error is a JSON envelope"
                ' `{"error": {"status", "message", "request_id", "details"?}}`; a path the'
                " API does not have, or an id out of range, is a 404."
            ),
        },
        "servers": [{"url": PREFIX}],
        "security": [{"apiToken": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A live API token (API_TOKEN); never in the URL.",
                }
            },
            "schemas": {**BODIES, **ANSWERS},
        },
    }


@bp.get("/openapi.json")
def get_openapi() -> Response:
    """This API's OpenAPI document; public (it holds no secret)."""
    return jsonify(openapi_document())
