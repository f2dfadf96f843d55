"""Autotask's REST API (/atservicesrest/v1.0/...) as the sandbox serves it.

Shapes follow the Swagger models (TicketModel, OperationResultModel, QueryActionResult,
PagingModel, …) of tests/fixtures/autotask/specs/autotask-rest-swagger-v1.0.SergLGP-2022.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from adapters.sandbox.core import (
    GENERIC_ERROR,
    REST_PREFIX,
    REST_URL_PATH,
    Call,
    Sandbox,
    new_call,
)
from adapters.sandbox.entity_info import entity_information, field_definitions
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.query import (
    COMPARISONS,
    EXISTENCE,
    GROUPS,
    LISTS,
    Condition,
    Group,
    canonical_field,
    parse_rest_filter,
)
from adapters.sandbox.seed import API_USER_RESOURCE_ID, RESOURCES
from adapters.sandbox.service import MAX_PAGE
from adapters.sandbox.validation import normalize
from adapters.sandbox.values import wire_record
from adapters.sandbox.webhooks import TICKET_WEBHOOK_FIELDS

ENTITY_NAMES = {
    "tickets": "Tickets",
    "ticketnotes": "TicketNotes",
    "companies": "Companies",
    "billingcodes": "BillingCodes",
}
_ENTITIES = f"any({', '.join(ENTITY_NAMES)})"

ROUTES = Map(
    [
        Rule("/v1.0/zoneinformation", endpoint="zone", methods=["GET"]),
        Rule("/versioninformation", endpoint="api_versions", methods=["GET"]),
        Rule("/v1.0/version", endpoint="version", methods=["GET"]),
        Rule("/v1.0/thresholdinformation", endpoint="threshold", methods=["GET"]),
        Rule(f"/v1.0/<{_ENTITIES}:entity>/query", endpoint="query", methods=["GET", "POST"]),
        Rule(f"/v1.0/<{_ENTITIES}:entity>/query/count", endpoint="count", methods=["GET", "POST"]),
        Rule(f"/v1.0/<{_ENTITIES}:entity>/query/next", endpoint="next", methods=["GET", "POST"]),
        Rule(
            f"/v1.0/<{_ENTITIES}:entity>/<int(signed=True):item_id>",
            endpoint="item",
            methods=["GET"],
        ),
        # No DELETE on Tickets: a 405 with ASP.NET's body (autotask-api.md §3 and §7).
        Rule(
            "/v1.0/<any(tickets, companies):entity>",
            endpoint="write",
            methods=["POST", "PATCH", "PUT"],
        ),
        Rule(f"/v1.0/<{_ENTITIES}:entity>/entityinformation", endpoint="info", methods=["GET"]),
        Rule(
            f"/v1.0/<{_ENTITIES}:entity>/entityinformation/fields",
            endpoint="fields",
            methods=["GET"],
        ),
        Rule(
            f"/v1.0/<{_ENTITIES}:entity>/entityinformation/userdefinedfields",
            endpoint="udfs",
            methods=["GET"],
        ),
        Rule(
            "/v1.0/tickets/<int:parent_id>/notes",
            endpoint="notes",
            methods=["GET", "POST", "PATCH", "PUT"],
        ),
        Rule("/v1.0/tickets/<int:parent_id>/notes/<int:item_id>", endpoint="note", methods=["GET"]),
        # Ticket webhooks and their child entities (Swagger: TicketWebhookModel,
        # TicketWebhookFieldModel, TicketWebhookExcludedResourceModel; webhooks.py).
        Rule("/v1.0/ticketwebhooks", endpoint="webhook_write", methods=["POST", "PATCH"]),
        Rule("/v1.0/ticketwebhooks/query", endpoint="webhook_query", methods=["GET", "POST"]),
        Rule(
            "/v1.0/ticketwebhooks/<int:item_id>",
            endpoint="webhook_item",
            methods=["GET", "DELETE"],
        ),
        Rule(
            "/v1.0/ticketwebhooks/<int:parent_id>/fields",
            endpoint="webhook_fields",
            methods=["GET", "POST"],
        ),
        Rule(
            "/v1.0/ticketwebhooks/<int:parent_id>/excludedresources",
            endpoint="webhook_excluded",
            methods=["GET", "POST"],
        ),
        # Resources: only the query that finds the API user's own resource by its userName.
        Rule("/v1.0/resources/query", endpoint="resource_query", methods=["GET", "POST"]),
        Rule(
            "/v1.0/ticketwebhookfields/entityinformation/fields",
            endpoint="webhook_field_info",
            methods=["GET"],
        ),
    ]
)


def errors_response(error: SandboxError) -> Response:
    """Autotask's error body: `{"errors": ["…"]}`. Reference: autotask-api.md §7."""
    response = jsonify({"errors": error.messages})
    response.status_code = error.status
    return response


def register_rest(app: Flask, sandbox: Sandbox) -> None:
    """Mount the REST API on `app`."""

    @app.after_request
    def opaque_errors(response: Response) -> Response:
        # Opaque-errors mode: every REST error body, whatever produced it (a refusal, a 404/405,
        # Flask's own 413), becomes Autotask's generic one; the status stays.
        if (
            sandbox.opaque_errors
            and response.status_code >= 400
            and request.path.startswith(REST_PREFIX)
        ):
            generic = jsonify({"errors": [GENERIC_ERROR]})
            generic.status_code = response.status_code
            return generic
        return response

    @app.route(f"{REST_PREFIX}<path:subpath>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    def autotask_rest(subpath: str) -> Response:
        adapter = ROUTES.bind("sandbox", path_info=f"/{subpath}")
        try:
            endpoint, args = adapter.match(f"/{subpath}", method=request.method)
        except MethodNotAllowed:
            response = jsonify(
                {
                    "Message": "The requested resource does not support http method"
                    f" '{request.method}'."
                }
            )
            response.status_code = 405
            return response
        except NotFound:
            response = jsonify(
                {
                    "Message": "No HTTP resource was found that matches the request URI"
                    f" '{request.url}'."
                }
            )
            response.status_code = 404
            return response
        entity = ENTITY_NAMES.get(str(args.get("entity", "")), "")
        if endpoint in ("notes", "note"):
            entity = "TicketNotes"
        if endpoint.startswith("webhook"):
            entity = "TicketWebhooks"
        if endpoint == "resource_query":
            entity = "Resources"
        thread_key = entity or {"zone": "ZoneInformation", "threshold": "ThresholdInformation"}.get(
            endpoint, "Version"
        )
        call = new_call("rest", thread_key, f"{endpoint}.{request.method.lower()}")
        handler = _Handler(sandbox, call, entity, args)
        credentials = None if endpoint == "zone" else _headers
        return sandbox.run(
            call,
            lambda: getattr(handler, endpoint)(),
            errors_response,
            credentials=credentials,
        )


def _headers() -> tuple[str | None, str | None, str | None]:
    """The three auth headers; header names are case-insensitive (autotask-api.md §2)."""
    return (
        request.headers.get("UserName"),
        request.headers.get("Secret"),
        request.headers.get("ApiIntegrationCode"),
    )


class _Handler:
    """One request's REST operations, each returning the response body as Autotask shapes it."""

    def __init__(self, sandbox: Sandbox, call: Call, entity: str, args: Mapping[str, Any]) -> None:
        self.sandbox = sandbox
        self.service = sandbox.service
        self.call = call
        self.entity = entity
        self.args = args

    # -- meta -----------------------------------------------------------------------------------

    def zone(self) -> Response:
        user = request.args.get("user", "")
        if not user or user.lower() != self.sandbox.config.user.username.lower():
            # Autotask answers a blank or unknown user with 500 (django-autotask get_zone_info)
            # and this body (KelvinTegelaar/AutotaskAPI #17; autotask-api.md §14).
            raise SandboxError("Zone information could not be determined")
        return jsonify(
            {
                "zoneName": self.sandbox.config.zone_name,
                "url": f"{request.host_url}{REST_URL_PATH}",
                "webUrl": f"{request.host_url}_sandbox/",
                "ci": self.sandbox.config.ci,
            }
        )

    def api_versions(self) -> Response:
        return jsonify({"apiVersions": ["1.0"]})

    def version(self) -> Response:
        return jsonify({"majorVersion": "1", "minorVersion": "0", "build": "sandbox"})

    def threshold(self) -> Response:
        settings = self.sandbox.limits.settings
        return jsonify(
            {
                "externalRequestThreshold": settings.hourly_threshold,
                "requestThresholdTimeframe": settings.timeframe_minutes,
                "currentTimeframeRequestCount": self.sandbox.limits.usage(),
            }
        )

    def info(self) -> Response:
        return jsonify({"info": entity_information(self.entity, self.service.security)})

    def fields(self) -> Response:
        return jsonify({"fields": field_definitions(self.entity)})

    def udfs(self) -> Response:
        return jsonify({"fields": []})

    # -- reads ----------------------------------------------------------------------------------

    def item(self) -> Response:
        # A missing id answers 200 with a null item (django-autotask get_single).
        record = self.service.get(self.entity, int(self.args["item_id"]))
        return jsonify({"item": wire_record(self.entity, record) if record else None})

    def note(self) -> Response:
        record = self.service.get("TicketNotes", int(self.args["item_id"]))
        if record is not None and record["ticketID"] != self.args["parent_id"]:
            record = None
        return jsonify({"item": wire_record("TicketNotes", record) if record else None})

    def query(self) -> Response:
        search = self._search()
        return self._page(search, after_id=-1, previous_ids=[])

    def count(self) -> Response:
        search = self._search()
        tree = self._filter(search)
        return jsonify({"queryCount": self.service.count(self.entity, tree)})

    def next(self) -> Response:
        raw = request.args.get("paging")
        try:
            paging = json.loads(raw or "")
            next_ids = paging["nextIds"]
            previous_ids = [int(i) for i in paging.get("previousIds") or []]
            after_id = int(next_ids[0])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise SandboxError(f"Invalid paging parameter {raw!r}.") from e
        return self._page(self._search(), after_id=after_id, previous_ids=previous_ids)

    def _filter(self, search: dict[str, Any]) -> Group:
        """The QueryModel's filter as a condition tree.

        Real Autotask silently drops a clause whose operator it does not know: a query with
        `ne` (not `noteq`) returned every row (WYRE-AI/autotask-mcp PR #211; autotask-api.md
        §14). The sandbox refuses such a clause instead, so the mistake shows up in tests,
        unless strict mode is off (CONNECTOR_SANDBOX_STRICT_PROPERTIES=false), when it drops
        it as Autotask does; a query left with no clause then matches every record.
        """
        filters = _key(search, "filter")
        if self.service.strict_properties or not isinstance(filters, list) or not filters:
            return parse_rest_filter(self.entity, filters)
        kept = _known_operators_only(filters)
        return parse_rest_filter(self.entity, kept or [{"op": "exist", "field": "id"}])

    def _search(self) -> dict[str, Any]:
        """The QueryModel: from `?search=` on GET, from the body on POST (or `search` on next)."""
        raw = request.args.get("search")
        if raw is None and request.method == "POST":
            body = request.get_json(force=True, silent=True)
        else:
            try:
                body = json.loads(raw or "")
            except ValueError as e:
                raise SandboxError("The search parameter is not a valid JSON query.") from e
        if not isinstance(body, dict):
            raise SandboxError("The query must be a JSON object with a filter.")
        return body

    def _page(self, search: dict[str, Any], *, after_id: int, previous_ids: list[int]) -> Response:
        tree = self._filter(search)
        return self._page_of(tree, search, after_id=after_id, previous_ids=previous_ids)

    def _page_of(
        self,
        tree: Group,
        search: dict[str, Any],
        *,
        after_id: int,
        previous_ids: list[int],
    ) -> Response:
        max_records = _key(search, "maxrecords")
        if max_records is None:
            max_records = MAX_PAGE
        if isinstance(max_records, bool) or not isinstance(max_records, int):
            raise SandboxError(f"Invalid MaxRecords value {max_records!r}.")
        if not 1 <= max_records <= MAX_PAGE:
            raise SandboxError(f"MaxRecords must be between 1 and {MAX_PAGE}.")
        include = _key(search, "includefields") or []
        if not isinstance(include, list):
            raise SandboxError("IncludeFields must be a list of field names.")
        include_props = [canonical_field(self.entity, str(name)) for name in include]
        items, more = self.service.query(
            self.entity, tree, max_records=max_records, after_id=after_id
        )
        if more and include_props and "id" not in include_props:
            # OFFICIAL REST_Advanced_Query_Features.htm (autotask-api.md §4).
            raise SandboxError(
                "For search results that contain more than 500 results, you must include Id"
                " as a field."
            )
        items = [wire_record(self.entity, item) for item in items]
        if include_props:
            # The real answer keeps userDefinedFields beside the fields asked for (the
            # includeFields example in the apigrate/autotask-restapi README, autotask-api.md §4).
            keep = list(dict.fromkeys([*include_props, "userDefinedFields"]))
            items = [{prop: item[prop] for prop in keep if prop in item} for item in items]
        base = f"{request.host_url}ATServicesRest/V1.0/{self.entity}/query/next"
        search_text = quote(json.dumps(search, separators=(",", ":")))

        def page_url(previous: list[int], start_after: int) -> str:
            # Keyset paging as real nextPageUrls carry it (autotask-api.md §4):
            # paging={"pageSize":500,"previousIds":[-1],"nextIds":[725]}
            paging = {"pageSize": max_records, "previousIds": previous, "nextIds": [start_after]}
            paging_text = quote(json.dumps(paging, separators=(",", ":")))
            return f"{base}?paging={paging_text}&search={search_text}"

        next_url = page_url([*previous_ids, after_id], items[-1]["id"]) if more and items else None
        prev_url = page_url(previous_ids[:-1], previous_ids[-1]) if previous_ids else None
        return jsonify(
            {
                "items": items,
                "pageDetails": {
                    "count": len(items),
                    "requestCount": max_records,
                    "prevPageUrl": prev_url,
                    "nextPageUrl": next_url,
                },
            }
        )

    # -- writes ---------------------------------------------------------------------------------

    def _body(self, entity: str) -> dict[str, Any]:
        body = request.get_json(force=True, silent=True)
        if body is None:
            raise SandboxError("The request body is missing or is not valid JSON.")
        values = normalize(entity, body, strict=self.service.strict_properties)
        self.call.request_body = body
        return values

    def write(self) -> Response:
        values = self._body(self.entity)
        if request.method == "POST":
            new_id = self.service.create(self.entity, values)
            self.sandbox.after_create(self.entity, self.call)
            return jsonify({"itemId": new_id})
        item_id = self.service.update(self.entity, values, replace=request.method == "PUT")
        return jsonify({"itemId": item_id})

    # -- ticket webhooks (webhooks.py) -----------------------------------------------------------

    def _json_object(self) -> dict[str, Any]:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise SandboxError("The request body is missing or is not valid JSON.")
        self.call.request_body = body
        return body

    def webhook_write(self) -> Response:
        webhooks = self.sandbox.webhooks
        body = self._json_object()
        if request.method == "POST":
            return jsonify({"itemId": webhooks.create(body)})
        return jsonify({"itemId": webhooks.update(body)})

    def webhook_item(self) -> Response:
        webhook_id = int(self.args["item_id"])
        if request.method == "DELETE":
            self.sandbox.webhooks.delete(webhook_id)
            return jsonify({"itemId": webhook_id})
        return jsonify({"item": self.sandbox.webhooks.get(webhook_id)})

    def webhook_query(self) -> Response:
        # Only `eq` clauses on the webhook's own fields: what a client needs to find its webhook
        # again (by name or URL); anything else is refused rather than silently ignored.
        clauses = _key(self._search(), "filter")
        if not isinstance(clauses, list):
            raise SandboxError("The query must be a JSON object with a filter.")
        items = self.sandbox.webhooks.all()
        for clause in clauses:
            op = str(_key(clause, "op") or "").lower() if isinstance(clause, dict) else ""
            if op == "exist" and str(_key(clause, "field")).lower() == "id":
                continue
            if op != "eq":
                raise SandboxError("The sandbox's TicketWebhooks query takes eq clauses only.")
            name = str(_key(clause, "field") or "").lower()
            value = _key(clause, "value")
            items = [
                item for item in items if any(k.lower() == name and item[k] == value for k in item)
            ]
        return jsonify(
            {
                "items": items,
                "pageDetails": {
                    "count": len(items),
                    "requestCount": MAX_PAGE,
                    "prevPageUrl": None,
                    "nextPageUrl": None,
                },
            }
        )

    def resource_query(self) -> Response:
        # The sandbox knows one resource with a userName: the API user (seed.RESOURCES); a query
        # is `eq` on userName or id, as a client looks its own resource up.
        clauses = _key(self._search(), "filter")
        if not isinstance(clauses, list) or not clauses:
            raise SandboxError("The query must be a JSON object with a filter.")
        user = self.sandbox.config.user
        resources = [
            {
                **resource,
                "userName": user.username if resource["id"] == API_USER_RESOURCE_ID else "",
            }
            for resource in RESOURCES
        ]
        for clause in clauses:
            op = str(_key(clause, "op") or "").lower() if isinstance(clause, dict) else ""
            name = str(_key(clause, "field") or "").lower() if isinstance(clause, dict) else ""
            if op != "eq" or name not in ("username", "id"):
                raise SandboxError("The sandbox's Resources query takes eq on userName or id only.")
            value = _key(clause, "value")
            if name == "username":
                resources = [
                    r
                    for r in resources
                    if str(r["userName"]).lower() == str(value).lower() and r["userName"]
                ]
            else:
                resources = [r for r in resources if str(r["id"]) == str(value)]
        return jsonify(
            {
                "items": resources,
                "pageDetails": {
                    "count": len(resources),
                    "requestCount": MAX_PAGE,
                    "prevPageUrl": None,
                    "nextPageUrl": None,
                },
            }
        )

    def webhook_fields(self) -> Response:
        parent_id = int(self.args["parent_id"])
        if request.method == "GET":
            return jsonify({"items": self.sandbox.webhooks.fields_of(parent_id)})
        return jsonify({"itemId": self.sandbox.webhooks.add_field(parent_id, self._json_object())})

    def webhook_excluded(self) -> Response:
        parent_id = int(self.args["parent_id"])
        webhooks = self.sandbox.webhooks
        if request.method == "GET":
            return jsonify({"items": webhooks.excluded_resources_of(parent_id)})
        return jsonify({"itemId": webhooks.add_excluded_resource(parent_id, self._json_object())})

    def webhook_field_info(self) -> Response:
        # fieldID is a picklist of the ticket fields a webhook can carry (the sandbox's ids).
        picklist = [
            {
                "value": str(field_id),
                "label": name,
                "isDefaultValue": False,
                "sortOrder": field_id,
                "parentValue": "",
                "isActive": True,
                "isSystem": True,
            }
            for field_id, name in TICKET_WEBHOOK_FIELDS.items()
        ]
        return jsonify(
            {
                "fields": [
                    {"name": "id", "dataType": "long", "isPickList": False},
                    {"name": "webhookID", "dataType": "integer", "isPickList": False},
                    {
                        "name": "fieldID",
                        "dataType": "integer",
                        "isPickList": True,
                        "picklistValues": picklist,
                    },
                    {"name": "isDisplayAlwaysField", "dataType": "boolean", "isPickList": False},
                    {"name": "isSubscribedField", "dataType": "boolean", "isPickList": False},
                ]
            }
        )

    def notes(self) -> Response:
        parent_id = int(self.args["parent_id"])
        if request.method == "GET":
            if self.service.record("Tickets", parent_id) is None:
                raise SandboxError(f"No matching records found for Tickets id {parent_id}.")
            tree = Group("and", [Condition("eq", "ticketID", parent_id)])
            search = {"filter": [{"op": "eq", "field": "ticketID", "value": parent_id}]}
            return self._page_of(tree, search, after_id=-1, previous_ids=[])
        values = self._body("TicketNotes")
        if request.method == "POST":
            new_id = self.service.create("TicketNotes", values, parent_id=parent_id)
            self.sandbox.after_create("TicketNotes", self.call)
            return jsonify({"itemId": new_id})
        item_id = self.service.update(
            "TicketNotes", values, replace=request.method == "PUT", parent_id=parent_id
        )
        return jsonify({"itemId": item_id})


#: The REST filter operators, lower-cased (autotask-api.md §4).
KNOWN_OPERATORS = COMPARISONS | EXISTENCE | LISTS | GROUPS


def _known_operators_only(filters: list[Any]) -> list[Any]:
    """`filters` without the clauses whose operator is unknown; a group left empty goes too."""
    kept: list[Any] = []
    for node in filters:
        if not isinstance(node, dict):
            kept.append(node)  # malformed: left for the parser to refuse
            continue
        op = str(_key(node, "op") or "").lower()
        if op not in KNOWN_OPERATORS:
            continue
        items = _key(node, "items")
        if op in GROUPS and isinstance(items, list) and items:
            inner = _known_operators_only(items)
            if not inner:
                continue
            node = {k: inner if str(k).lower() == "items" else v for k, v in node.items()}
        kept.append(node)
    return kept


def _key(body: dict[str, Any], name: str) -> Any:
    """Read a QueryModel key whatever its casing (`MaxRecords` in the Swagger example)."""
    for key, value in body.items():
        if str(key).lower() == name:
            return value
    return None
