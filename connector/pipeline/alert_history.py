"""Alerts as the admin looks them up: the filtered list, and one alert's whole story.

One query layer for the JSON API (/api/v1/alerts) and the admin pages (/admin/alerts): an alert
with its ticket(s), its events in the order received (with their disposition: queued,
duplicate, stale or dropped, and the warnings), and its deliveries in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from connector.persistence.models import Alert, AlertEvent, Delivery, TicketLink


@dataclass(frozen=True)
class AlertFilter:
    """What the alerts list is narrowed to; every filter given must hold."""

    status: str | None = None
    source: str | None = None
    fingerprint: str | None = None
    integration_id: int | None = None
    #: Any ticket the alert has had, not only the current one; given both, the same ticket.
    ticket_id: int | None = None
    ticket_number: str | None = None
    #: Text the alert's tenant or host contains, in any case.
    search: str | None = None


@dataclass(frozen=True)
class ListedAlert:
    """An alert of the list, with its current ticket (its latest episode's), if any."""

    alert: Alert
    ticket: TicketLink | None


@dataclass(frozen=True)
class AlertHistory:
    """One alert with its tickets (by episode), its events and its deliveries, in order."""

    alert: Alert
    tickets: Sequence[TicketLink]
    events: Sequence[AlertEvent]
    deliveries: Sequence[Delivery]

    @property
    def ticket(self) -> TicketLink | None:
        """The current ticket: the latest episode's."""
        return self.tickets[-1] if self.tickets else None

    @property
    def warnings(self) -> list[str]:
        """What the admin should know now: the newest event's warnings."""
        return list(self.events[-1].warnings or []) if self.events else []


def _filtered(query: Select[Any], filters: AlertFilter) -> Select[Any]:
    for column, value in (
        (Alert.status, filters.status),
        (Alert.source, filters.source),
        (Alert.fingerprint, filters.fingerprint),
        (Alert.integration_id, filters.integration_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.ticket_id is not None or filters.ticket_number is not None:
        tickets = select(TicketLink.id).where(TicketLink.alert_id == Alert.id)
        if filters.ticket_id is not None:
            tickets = tickets.where(TicketLink.ticket_id == filters.ticket_id)
        if filters.ticket_number is not None:
            tickets = tickets.where(TicketLink.ticket_number == filters.ticket_number)
        query = query.where(tickets.exists())
    if filters.search:
        query = query.where(
            or_(
                Alert.tenant.icontains(filters.search, autoescape=True),
                Alert.host.icontains(filters.search, autoescape=True),
            )
        )
    return query


def list_alerts(
    session: Session, filters: AlertFilter, *, limit: int = 100, offset: int = 0
) -> list[ListedAlert]:
    """The alerts that pass `filters`, newest activity first, one page, with their tickets."""
    query = _filtered(select(Alert).order_by(Alert.last_event_at.desc(), Alert.id.desc()), filters)
    alerts = list(session.scalars(query.limit(limit).offset(offset)))
    links = latest_links(session, [alert.id for alert in alerts])
    return [ListedAlert(alert, links.get(alert.id)) for alert in alerts]


def latest_links(session: Session, alert_ids: Sequence[int]) -> dict[int, TicketLink]:
    """Each alert's current ticket link (its latest episode), by alert id."""
    if not alert_ids:
        return {}
    latest = (
        select(TicketLink.alert_id, func.max(TicketLink.episode).label("episode"))
        .where(TicketLink.alert_id.in_(alert_ids))
        .group_by(TicketLink.alert_id)
        .subquery()
    )
    rows = session.scalars(
        select(TicketLink).join(
            latest,
            (TicketLink.alert_id == latest.c.alert_id) & (TicketLink.episode == latest.c.episode),
        )
    )
    return {link.alert_id: link for link in rows}


def alert_history(session: Session, alert_id: int) -> AlertHistory | None:
    """The alert with its tickets, events and deliveries in order; None when there is none."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    tickets = session.scalars(
        select(TicketLink).where(TicketLink.alert_id == alert_id).order_by(TicketLink.episode)
    )
    events = session.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    )
    deliveries = session.scalars(
        select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.id)
    )
    return AlertHistory(alert, list(tickets), list(events), list(deliveries))
