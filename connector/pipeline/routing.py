"""Routing: which company an alert's ticket goes to, and the ticket drafted for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from connector.domain import IncomingAlert, TicketDraft
from connector.integrations.settings import IntegrationSettings, MonitorOverride
from connector.payloads.text import alert_start, describe_alert, truncate

#: The per-resource property that names the company and beats the tenant map (a LogicMonitor
#: convention: a device property set per customer).
ACCOUNT_PROPERTY = "autotask.accountid"


@dataclass(frozen=True)
class TenantRoute:
    """A tenant's mapping row: its company and whether it is switched on."""

    company_id: int | None
    enabled: bool = True


class NoCompany(Exception):
    """The alert's routing no longer yields a company (the mapping changed since ingest)."""


@dataclass(frozen=True)
class Route:
    """Where an alert's ticket goes, or why it gets none; and what the admin should know."""

    company_id: int | None
    dropped: str | None = None
    warning: str | None = None


#: Autotask company ids are positive 32-bit integers (Companies.id, getFieldInfo: integer).
_COMPANY_ID_MAX = 2**31 - 1


def company_override(alert: IncomingAlert) -> tuple[int | None, str | None]:
    """The company `autotask.accountid` names, or (None, why it names none usable)."""
    raw = alert.properties.get(ACCOUNT_PROPERTY)
    if raw is None or not str(raw).strip():
        return None, None
    text = str(raw).strip()
    if text.isascii() and text.isdigit() and 0 <= int(text) <= _COMPANY_ID_MAX:
        return int(text), None
    shown = text if len(text) <= 60 else text[:59] + "…"
    return None, (
        f"{ACCOUNT_PROPERTY} {shown!r} is not an Autotask company id (a whole number); the alert"
        " was routed by the tenant map and default company instead"
    )


def route_company(
    alert: IncomingAlert, settings: IntegrationSettings, tenants: Mapping[str, TenantRoute]
) -> Route:
    """Choose the company: `autotask.accountid` beats the tenant map, which beats the default.

    An `autotask.accountid` that is not a company id never drops the alert: it is routed as if
    the property were absent, with a warning the admin sees on the event.
    """
    company, warning = company_override(alert)
    if company is not None:
        return Route(company)
    route = _route_by_tenant(alert, settings, tenants)
    return replace(route, warning=warning) if warning else route


def _route_by_tenant(
    alert: IncomingAlert, settings: IntegrationSettings, tenants: Mapping[str, TenantRoute]
) -> Route:
    """The tenant map's company, else the default (or a drop, as the settings say)."""
    default = settings.default_company_id
    if alert.tenant and settings.tenant_mapping:
        mapping = tenants.get(alert.tenant)
        if mapping is not None:
            if not mapping.enabled:
                return Route(None, dropped=f"tenant {alert.tenant!r} is switched off")
            if mapping.company_id is not None:
                return Route(mapping.company_id)
        if settings.unmapped_per_source.get(alert.source, settings.unmapped) == "drop":
            return Route(None, dropped=f"tenant {alert.tenant!r} is not mapped (unmapped: drop)")
    if default is None:
        return Route(None, dropped="no tenant mapping applies and there is no default company")
    return Route(default)


def map_severity(alert: IncomingAlert, settings: IntegrationSettings) -> IncomingAlert:
    """`alert` with the severity its source's severity map gives its sender's word, if any.

    Words match case-insensitively; a word the map does not list (or an alert without a word)
    keeps the severity the adapter chose.
    """
    table = settings.severity_maps.get(alert.source)
    word = alert.raw_severity.strip().lower()
    if not table or not word or word not in table:
        return alert
    mapped = table[word]
    return alert if mapped is alert.severity else replace(alert, severity=mapped)


def routed_draft(
    alert: IncomingAlert,
    settings: IntegrationSettings,
    tenants: Mapping[str, TenantRoute],
    *,
    status: int | None,
    marker: str,
    received_at: datetime,
    limits: Mapping[str, int],
) -> tuple[Route, TicketDraft | None]:
    """Where the alert's ticket goes and, when it goes somewhere, the ticket drafted for it.

    `status` is the ticket status a step sets; None: the status map's for the alert's status.
    """
    route = route_company(alert, settings, tenants)
    if route.company_id is None:
        return route, None
    draft = build_draft(
        alert,
        company_id=route.company_id,
        status=status or settings.status_map[alert.status],
        marker=marker,
        settings=settings,
        received_at=received_at,
        limits=limits,
    )
    return route, draft


def build_draft(
    alert: IncomingAlert,
    *,
    company_id: int,
    status: int,
    marker: str,
    settings: IntegrationSettings,
    received_at: datetime,
    limits: Mapping[str, int],
) -> TicketDraft:
    """The ticket to create for `alert`: mapped priority, queue, types and due date.

    Title and description are cut to the target's ticket field `limits`. Times are the alert's
    own: the due date counts from its start, or, when the sender gave no time, from when the
    connector received the event (never from when a worker got to it).
    """
    start = alert_start(alert)
    title = truncate(alert.title, limits["title"])
    description = truncate(describe_alert(alert, start, received_at), limits["description"])
    override = _override(alert, settings)
    return TicketDraft(
        company_id=company_id,
        title=title,
        description=description,
        status=status,
        priority=alert_priority(alert, settings),
        marker=marker,
        queue_id=override.queue_id or settings.queue_id,
        due_at=_due(start or received_at, settings.due_days),
        ticket_category=settings.ticket_category,
        ticket_type=settings.ticket_type,
        issue_type=override.issue_type or settings.issue_type,
        sub_issue_type=override.sub_issue_type
        or (settings.sub_issue_type if not override.issue_type else None),
        work_type=override.work_type or settings.work_type,
        source=settings.source,
    )


def _override(alert: IncomingAlert, settings: IntegrationSettings) -> MonitorOverride:
    """The alert's monitor override, or one that overrides nothing."""
    found = settings.monitor_overrides.get(alert.monitor) if alert.monitor else None
    return found or MonitorOverride()


def alert_priority(alert: IncomingAlert, settings: IntegrationSettings) -> int:
    """The ticket priority for the alert: its monitor's override, else its severity's."""
    return _override(alert, settings).priority or settings.priority_map[alert.severity]


def _due(start: datetime, days: float) -> datetime:
    """Start + days; a start so far in the future that this overflows gets the latest date."""
    try:
        return start + timedelta(days=days)
    except OverflowError:
        return datetime.max.replace(tzinfo=start.tzinfo)
