"""The integrations pages: the overview, check connection, the tenant map and the ticket maps.

Every change goes through the same functions as the JSON API (connector.integrations.editing and
.tenants), so it is checked the same way and takes effect for the next event without a restart;
companies, priorities and statuses are picked by name from the ticket system's own lists
(connector.integrations.catalog), with a number field only when those cannot be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from connector.domain import AlertStatus, CompanyChoice, Severity, TicketPicklists
from connector.errors import ConflictError, ConnectorError, InvalidInput
from connector.integrations import catalog
from connector.integrations.editing import (
    EditContext,
    find_integration,
    masked,
    update_integration,
)
from connector.integrations.settings import load_settings
from connector.integrations.tenants import (
    TenantEntry,
    delete_tenant,
    list_tenants,
    set_tenant,
    unmapped_tenants,
)
from connector.persistence.models import ApiCall, Integration, utcnow
from connector.web.admin import bp
from connector.web.hooks import services

#: The overview counts calls over the same window as Autotask's API activity report.
CALLS_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class IntegrationRow:
    """One integration as the overview shows it."""

    id: int
    name: str
    api_user: str
    tracking_identifier: str | None
    flavour: str
    last_call_at: datetime | None
    calls_30_days: int
    #: Inactive: alerts are kept, nothing is delivered.
    active: bool = True


@bp.get("/integrations")
def integrations() -> str:
    """Every integration, as Autotask's Integration Center lists API users."""
    box = services().secret_box()
    since = utcnow() - CALLS_WINDOW
    with services().transaction() as session:
        calls = {
            row.integration_id: (row.last, row.recent)
            for row in session.execute(
                select(
                    ApiCall.integration_id,
                    func.max(ApiCall.at).label("last"),
                    func.count().filter(ApiCall.at >= since).label("recent"),
                ).group_by(ApiCall.integration_id)
            )
        }
        rows = [
            IntegrationRow(
                id=integration.id,
                name=integration.name,
                api_user=integration.username,
                tracking_identifier=masked(box, integration.integration_code_encrypted),
                flavour=integration.api_flavour,
                last_call_at=calls.get(integration.id, (None, 0))[0],
                calls_30_days=int(calls.get(integration.id, (None, 0))[1] or 0),
                active=integration.active is not False,
            )
            for integration in session.scalars(select(Integration).order_by(Integration.name))
        ]
    return render_template("admin/integrations.html", integrations=rows)


@bp.post("/integrations/<int:integration_id>/check-connection")
def check_connection(integration_id: int) -> str:
    """Check the stored connection now, step by step, each failure in words."""
    report = catalog.check_connection(services(), integration_id)
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
    return render_template(
        "admin/check_connection.html", report=report, integration_id=integration_id, name=name
    )


# -- Autotask's own lists ------------------------------------------------------------------------


def ticket_lists(integration_id: int) -> tuple[TicketPicklists | None, str | None]:
    """The ticket system's lists, or None and why they cannot be read now."""
    try:
        return catalog.picklists(services(), integration_id).value, None
    except ConnectorError as e:
        return None, str(e)


def company_choices(
    integration_id: int, search: str
) -> tuple[tuple[CompanyChoice, ...], str | None]:
    """Companies whose name contains `search`, or none and why they cannot be read now."""
    try:
        found = catalog.search_companies(services(), integration_id, search, limit=100)
        return found.value, None
    except ConnectorError as e:
        return (), str(e)


def whole_number_field(raw: str | None, what: str) -> int | None:
    """A form's id field: blank is none; anything but digits is a refusal naming the field."""
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise InvalidInput(f"{what}: must be a whole number, got {text[:40]!r}")
    return int(text)


# -- the tenant map ------------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/tenants")
def tenants(integration_id: int) -> str:
    """The tenant → company map with search, the unmapped tenants seen in alerts, a form."""
    search = request.args.get("search", "")[:255]
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        entries, total = list_tenants(session, integration_id, search=search, limit=200)
        prefill = request.args.get("tenant", "")[:255]
        # "Change": the form starts from the tenant's mapping as it is.
        same, _ = (
            list_tenants(session, integration_id, search=prefill, limit=50) if prefill else ([], 0)
        )
        current = next((entry for entry in same if entry.tenant == prefill), None)
        unmapped, _ = unmapped_tenants(session, integration_id, limit=50)
        name = integration.name
    companies, companies_error = company_choices(integration_id, "")
    return render_template(
        "admin/tenants.html",
        integration_id=integration_id,
        name=name,
        entries=entries,
        total=total,
        search=search,
        unmapped=unmapped,
        companies=companies,
        company_names={c.id: c.name for c in companies},
        companies_error=companies_error,
        prefill=prefill,
        current=current,
    )


@bp.post("/integrations/<int:integration_id>/tenants")
def save_tenant(integration_id: int) -> BaseResponse:
    """Map a tenant (new, or changed) from the form."""
    tenant = request.form.get("tenant", "").strip()
    try:
        entry = TenantEntry(
            tenant,
            whole_number_field(request.form.get("company_id"), "company"),
            enabled=request.form.get("enabled") == "on",
        )
        with services().transaction() as session:
            created = set_tenant(session, find_integration(session, integration_id), entry)
    except (InvalidInput, ConflictError) as e:
        flash(f"Not saved: {e}")
        return redirect(url_for("admin.tenants", integration_id=integration_id, tenant=tenant))
    flash(f"Tenant “{tenant}” {'mapped' if created else 'changed'}; the next alert uses it.")
    return redirect(url_for("admin.tenants", integration_id=integration_id))


@bp.post("/integrations/<int:integration_id>/tenants/delete")
def remove_tenant(integration_id: int) -> BaseResponse:
    """Remove a tenant's mapping: its alerts are unmapped again."""
    tenant = request.form.get("tenant", "")
    with services().transaction() as session:
        delete_tenant(session, find_integration(session, integration_id), tenant)
    flash(f"Tenant “{tenant}” removed from the map.")
    return redirect(url_for("admin.tenants", integration_id=integration_id))


# -- the ticket maps -----------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/mappings")
def mappings(integration_id: int) -> Response:
    """Default company, queue, severity → priority and alert status → ticket status."""
    return _mappings_page(integration_id)


def _mappings_page(integration_id: int, error: str | None = None, status: int = 200) -> Response:
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        settings = load_settings(integration.settings)
        name = integration.name
    lists, lists_error = ticket_lists(integration_id)
    companies, companies_error = company_choices(integration_id, "")
    page = render_template(
        "admin/mappings.html",
        integration_id=integration_id,
        name=name,
        settings=settings,
        severities=list(Severity),
        statuses=list(AlertStatus),
        lists=lists,
        lists_error=lists_error,
        companies=companies,
        companies_error=companies_error,
        error=error,
    )
    return Response(page, status=status)


@bp.post("/integrations/<int:integration_id>/mappings")
def save_mappings(integration_id: int) -> BaseResponse:
    """Save the ticket maps: effective for the next event, no restart."""
    form = request.form
    try:
        changes: Mapping[str, Any] = {
            "default_company_id": whole_number_field(
                form.get("default_company_id"), "default company"
            ),
            "queue_id": whole_number_field(form.get("queue_id"), "queue"),
            "priority_map": {
                s.value: whole_number_field(
                    form.get(f"priority_{s.value}"), f"priority of {s.value}"
                )
                for s in Severity
                if form.get(f"priority_{s.value}")
            },
            "status_map": {
                s.value: whole_number_field(
                    form.get(f"status_{s.value}"), f"ticket status of {s.value}"
                )
                for s in AlertStatus
                if form.get(f"status_{s.value}")
            },
        }
        with services().transaction() as session:
            integration = find_integration(session, integration_id)
            update_integration(
                session, EditContext.of(services()), integration, {"settings": changes}
            )
    except (InvalidInput, ConflictError) as e:
        return _mappings_page(integration_id, error=str(e), status=400)
    flash("Mappings saved; the next alert uses them.")
    return redirect(url_for("admin.mappings", integration_id=integration_id))
