"""/api/v1/integrations/<id>/tenants: an integration's tenant → company map, edited live.

A tenant goes in the path as it is, percent-encoded: slashes, spaces, quotes and emoji included
(`<tenant:…>` takes the rest of the path, slashes and all).
"""

from __future__ import annotations

from flask import Response, jsonify

from connector.integrations.editing import find_integration
from connector.integrations.tenants import (
    TenantEntry,
    TenantMappingSchema,
    check_tenant,
    delete_tenant,
    list_tenants,
    set_tenant,
    unmapped_tenants,
)
from connector.web.api import api_blueprint
from connector.web.api.bodies import json_body
from connector.web.hooks import services
from connector.web.params import PAGE, page_of, parse_query, text

bp = api_blueprint("tenants", __name__)

#: GET …/tenants and …/tenants/unmapped: a case-insensitive substring of the tenant, and paging.
TENANT_QUERY = {"search": text, **PAGE}
#: The tenant rule takes slashes, and `//` must not be merged: "a//b" is a tenant of its own.
TENANT_RULE = "/integrations/<int:integration_id>/tenants/<tenant:tenant>"


@bp.get("/integrations/<int:integration_id>/tenants")
def get_tenants(integration_id: int) -> Response:
    """The map's entries, by tenant: `{"tenants", "total", "limit", "offset"}`."""
    args = parse_query(TENANT_QUERY)
    limit, offset = page_of(args)
    with services().transaction() as session:
        find_integration(session, integration_id)
        entries, total = list_tenants(
            session, integration_id, search=args.get("search", ""), limit=limit, offset=offset
        )
        body = [entry.to_json() for entry in entries]
    return jsonify({"tenants": body, "total": total, "limit": limit, "offset": offset})


@bp.get("/integrations/<int:integration_id>/tenants/unmapped")
def get_unmapped_tenants(integration_id: int) -> Response:
    """Tenants the integration's alerts carry that the map lacks, most recently seen first."""
    args = parse_query(TENANT_QUERY)
    limit, offset = page_of(args)
    with services().transaction() as session:
        find_integration(session, integration_id)
        found, total = unmapped_tenants(
            session, integration_id, search=args.get("search", ""), limit=limit, offset=offset
        )
        body = [tenant.to_json() for tenant in found]
    return jsonify({"tenants": body, "total": total, "limit": limit, "offset": offset})


@bp.put(TENANT_RULE, merge_slashes=False)
def put_tenant(integration_id: int, tenant: str) -> tuple[Response, int]:
    """Map a tenant: `{"company_id", "enabled"}`; 201 when new, 200 when changed."""
    check_tenant(tenant)
    data = json_body(TenantMappingSchema())
    entry = TenantEntry(tenant, data["company_id"], data["enabled"])
    with services().transaction() as session:
        created = set_tenant(session, find_integration(session, integration_id), entry)
    return jsonify(entry.to_json()), 201 if created else 200


@bp.delete(TENANT_RULE, merge_slashes=False)
def remove_tenant(integration_id: int, tenant: str) -> tuple[str, int]:
    """Remove a tenant's mapping (204); its alerts are unmapped again. 404 if it had none."""
    check_tenant(tenant)  # one no alert can carry (a NUL …) is a 400, as for a PUT
    with services().transaction() as session:
        delete_tenant(session, find_integration(session, integration_id), tenant)
    return "", 204
