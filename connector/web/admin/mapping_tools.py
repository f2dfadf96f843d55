"""The mapping helpers of an integration: "map by identical name" and monitor overrides.

Both change the integration through the same functions as the JSON API (tenants.set_tenant,
editing.update_integration), so they are checked the same way and apply to the next event.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from connector.errors import ConflictError, ConnectorError, InvalidInput
from connector.integrations import catalog
from connector.integrations.editing import EditContext, find_integration, update_integration
from connector.integrations.settings import MonitorOverride, load_settings
from connector.integrations.tenants import NameMatch, TenantEntry, set_tenant
from connector.persistence.models import Alert
from connector.web.admin import bp
from connector.web.admin.integrations import ticket_lists, whole_number_field
from connector.web.hooks import services

#: An override's fields, in the form's order, with their labels and the list each picks from.
OVERRIDE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("queue_id", "Queue", "queues"),
    ("issue_type", "Issue type", "issue_types"),
    ("sub_issue_type", "Sub-issue type", "sub_issue_types"),
    ("work_type", "Work type", "work_types"),
    ("priority", "Priority", "priorities"),
)

#: How many monitors seen in alerts the overrides page offers.
MONITORS_OFFERED = 50


# -- map by identical name -----------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/tenants/identical-names")
def identical_names(integration_id: int) -> str:
    """Unmapped tenants with the one Autotask company of the same name, to confirm."""
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
    matches: list[NameMatch] = []
    error = None
    try:
        matches = catalog.identical_name_proposals(services(), integration_id)
    except ConnectorError as e:
        error = str(e)
    return render_template(
        "admin/tenants_by_name.html",
        integration_id=integration_id,
        name=name,
        found=[match for match in matches if match.company is not None],
        missing=[match for match in matches if match.company is None],
        error=error,
    )


@bp.post("/integrations/<int:integration_id>/tenants/identical-names")
def map_identical_names(integration_id: int) -> BaseResponse:
    """Map each ticked tenant to the company the confirmation page proposed."""
    form = request.form
    mapped = []
    try:
        with services().transaction() as session:
            integration = find_integration(session, integration_id)
            for index in form.getlist("map"):
                tenant = form.get(f"tenant_{index}", "")
                company = whole_number_field(form.get(f"company_{index}"), f"company of {tenant!r}")
                set_tenant(session, integration, TenantEntry(tenant, company, enabled=True))
                mapped.append(tenant)
    except (InvalidInput, ConflictError) as e:
        flash(f"Nothing mapped: {e}")
        return redirect(url_for("admin.identical_names", integration_id=integration_id))
    if mapped:
        plural = "s" if len(mapped) != 1 else ""
        flash(f"Mapped {len(mapped)} tenant{plural} by name; the next alert uses the map.")
    else:
        flash("Nothing was ticked: nothing mapped.")
    return redirect(url_for("admin.tenants", integration_id=integration_id))


# -- monitor overrides ---------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/overrides")
def overrides(integration_id: int) -> Response:
    """Per-monitor ticket settings, picked from Autotask's lists, and monitors seen in alerts."""
    return _overrides_page(integration_id)


def _overrides_page(integration_id: int, error: str | None = None, status: int = 200) -> Response:
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        settings = load_settings(integration.settings)
        seen = session.execute(
            select(Alert.monitor, func.count().label("alerts"))
            .where(Alert.integration_id == integration_id, Alert.monitor != "")
            .group_by(Alert.monitor)
            .order_by(func.count().desc(), Alert.monitor)
            .limit(MONITORS_OFFERED)
        ).all()
        name = integration.name
    lists, lists_error = ticket_lists(integration_id)
    monitor = request.values.get("monitor", "").strip()[:255]  # the one asked for or typed
    labels = (
        {
            list_name: {choice.id: choice.label for choice in getattr(lists, list_name)}
            for _, _, list_name in OVERRIDE_FIELDS
        }
        if lists
        else {}
    )
    page = render_template(
        "admin/overrides.html",
        integration_id=integration_id,
        name=name,
        overrides=sorted(settings.monitor_overrides.items()),
        seen=[row for row in seen if row.monitor not in settings.monitor_overrides],
        fields=OVERRIDE_FIELDS,
        lists=lists,
        labels=labels,
        lists_error=lists_error,
        error=error,
        prefill=monitor,
        current=settings.monitor_overrides.get(monitor),
    )
    return Response(page, status=status)


@bp.post("/integrations/<int:integration_id>/overrides")
def save_override(integration_id: int) -> BaseResponse:
    """Add or change one monitor's override (blank fields: the integration's defaults)."""
    monitor = request.form.get("monitor", "").strip()
    try:
        if not monitor:
            raise InvalidInput("monitor: name the monitor (check, datasource) the override is for")
        override = {
            field: whole_number_field(request.form.get(field), label)
            for field, label, _ in OVERRIDE_FIELDS
        }
        _change_overrides(integration_id, lambda current: {**current, monitor: override})
    except (InvalidInput, ConflictError) as e:
        return _overrides_page(integration_id, error=str(e), status=400)
    flash(f"Override for “{monitor}” saved; the next alert of that monitor uses it.")
    return redirect(url_for("admin.overrides", integration_id=integration_id))


@bp.post("/integrations/<int:integration_id>/overrides/delete")
def remove_override(integration_id: int) -> BaseResponse:
    """Remove one monitor's override: its alerts take the integration's defaults again."""
    monitor = request.form.get("monitor", "")
    _change_overrides(
        integration_id, lambda current: {k: v for k, v in current.items() if k != monitor}
    )
    flash(f"Override for “{monitor}” removed.")
    return redirect(url_for("admin.overrides", integration_id=integration_id))


def _change_overrides(integration_id: int, change: Any) -> None:
    """Save `change(current overrides as JSON)` as the integration's monitor overrides."""
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        current = {
            monitor: _override_json(override)
            for monitor, override in load_settings(integration.settings).monitor_overrides.items()
        }
        update_integration(
            session,
            EditContext.of(services()),
            integration,
            {"settings": {"monitor_overrides": change(current)}},
        )


def _override_json(override: MonitorOverride) -> dict[str, int | None]:
    """An override as settings store it."""
    return {field: getattr(override, field) for field, _, _ in OVERRIDE_FIELDS}
