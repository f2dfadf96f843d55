"""The JSON API (/api/v1) for setting an integration up: check its connection, and read its
ticket system's own lists (picklists, work types, companies) so settings are picked by name.

Every call to the ticket system is governed and recorded like the worker's; the lists are cached
per process (CATALOG_CACHE_SECONDS) until the integration is saved again. No answer carries a
secret: the checks' words are the adapter's, redacted by its client.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Response, g, jsonify, request

from connector.errors import ConnectorError
from connector.integrations.catalog import (
    DEFAULT_COMPANY_LIMIT,
    MAX_COMPANY_LIMIT,
    PICKLIST_SETTINGS,
    CatalogThrottled,
    check_connection,
    identical_name_proposals,
    picklists,
    search_companies,
)
from connector.persistence.models import utcnow
from connector.web.api import api_blueprint, iso
from connector.web.hooks import services
from connector.web.params import Refused, one_of, parse_query, text, whole_number

bp = api_blueprint("catalog", __name__)

#: `?refresh=true` asks the ticket system now instead of the cache.
REFRESH = one_of(["true", "false"])


class InvalidBody(ConnectorError):
    """A body the call does not take."""

    status = 400


@bp.after_request
def retry_after(response: Response) -> Response:
    """A throttled answer says when to try again: when the governor lets calls go."""
    wait = g.pop("catalog_retry_after", None)
    if response.status_code == 503 and wait is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _throttled(error: CatalogThrottled) -> CatalogThrottled:
    g.catalog_retry_after = error.retry_after
    return error


@bp.post("/integrations/<int:integration_id>/check-connection")
def check(integration_id: int) -> Response:
    """Check the connection step by step; 200 with the report whether the checks pass or not."""
    parse_query({})
    raw = request.get_data()
    if raw.strip() and request.get_json(silent=True) != {}:
        raise InvalidBody("check-connection takes no body (or an empty JSON object {})")
    checked_at = utcnow()
    try:
        report = check_connection(services(), integration_id)
    except CatalogThrottled as e:
        raise _throttled(e) from None
    return jsonify(
        {"integration_id": integration_id, "checked_at": iso(checked_at), **report.to_json()}
    )


@bp.get("/integrations/<int:integration_id>/picklists")
def get_picklists(integration_id: int) -> Response:
    """The ticket system's lists for the integration's settings, and which setting each fills."""
    args = parse_query({"refresh": REFRESH})
    try:
        answer = picklists(services(), integration_id, refresh=args.get("refresh") == "true")
    except CatalogThrottled as e:
        raise _throttled(e) from None
    return jsonify(
        {
            "integration_id": integration_id,
            "read_at": iso(answer.read_at),
            "from_cache": answer.from_cache,
            "settings": dict(PICKLIST_SETTINGS),
            "picklists": answer.value.to_json(),
        }
    )


@bp.get("/integrations/<int:integration_id>/companies")
def get_companies(integration_id: int) -> Response:
    """Companies whose name contains `search` (any case; none: any), by name, at most `limit`."""
    args = parse_query(
        {
            "search": _search_text,
            "limit": whole_number(1, MAX_COMPANY_LIMIT),
            "refresh": REFRESH,
        }
    )
    search = args.get("search", "")
    limit = args.get("limit", DEFAULT_COMPANY_LIMIT)
    try:
        answer = search_companies(
            services(), integration_id, search, limit=limit, refresh=args.get("refresh") == "true"
        )
    except CatalogThrottled as e:
        raise _throttled(e) from None
    body: dict[str, Any] = {
        "integration_id": integration_id,
        "search": search.strip(),
        "limit": limit,
        "read_at": iso(answer.read_at),
        "from_cache": answer.from_cache,
        "companies": [company.to_json() for company in answer.value],
    }
    return jsonify(body)


@bp.get("/integrations/<int:integration_id>/tenants/identical-names")
def get_identical_names(integration_id: int) -> Response:
    """Unmapped tenants seen in alerts, each with the one company of the same name or why not
    ("map by identical name"; mapping them is a PUT of each tenant)."""
    try:
        matches = identical_name_proposals(services(), integration_id)
    except CatalogThrottled as e:
        raise _throttled(e) from None
    return jsonify(
        {"integration_id": integration_id, "matches": [match.to_json() for match in matches]}
    )


def _search_text(value: str) -> str:
    """What a company's name must contain: any text up to 100 characters (a name's length)."""
    value = text(value)
    if len(value) > 100:
        raise Refused(f"must be at most 100 characters, got {len(value)}")
    return value
