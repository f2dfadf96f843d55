"""Reconciliation: resolve the alerts a source no longer has, close the tickets closed in the
ticket system (the reconcile job).

Tickets: see `reconcile_tickets`. Sources:

A resolved notification can be lost: the sender restarted, the network dropped it, a proxy
answered for the connector. The ticket would then stay open for ever. Where the source can be
asked which alerts it has now (an adapter that is an `AskableSource` and is configured with
where to ask, e.g. Alertmanager's `api_urls`), every run asks it and, per integration:

- an unresolved alert it lists is left alone (its `missing_since` cleared);
- an unresolved alert it does not list is marked missing; once it has been missing for
  RECONCILE_GRACE_SECONDS (a restarted Alertmanager learns its alerts again from Prometheus
  within a minute or so), a clear is ingested for it like any other: its delivery completes the
  ticket, with a note saying why.

Nothing is resolved when a source cannot be asked, answers an error or an unreadable list: an
alert is resolved only on the source's own word that it is gone, never because a question failed.
The clear is stamped just after the alert's newest event, so a genuine re-fire (a later start)
still opens a new ticket, and the lost notification, should it arrive after all, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    Severity,
    TicketChange,
    TicketChangeAction,
    TicketState,
)
from connector.errors import ConfigError, PayloadError, TargetError
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.sources import configured_source
from connector.persistence.models import Alert, Integration, TicketLink
from connector.pipeline.dispatch import CallLog
from connector.pipeline.governor import Governor, Limits
from connector.pipeline.heartbeat import host_process
from connector.pipeline.ingest import ingest
from connector.pipeline.ticketlinks import apply_ticket_change
from connector.ports import TicketStatusReader
from connector.services import AskableSource, Services, SourceAdapter

logger = logging.getLogger(__name__)

#: Who a reconciliation's clear says resolved the alert (the ticket's note names it).
ACTOR = "the connector's reconciliation"
#: How long asking one source may take (connect, read), and the most an answer may weigh.
ASK_TIMEOUT = (5.0, 15.0)
ASK_MAX_BYTES = 20 * 1024 * 1024
#: The clear comes this long after the alert's newest event (see the module docstring).
AFTER_NEWEST = timedelta(milliseconds=1)


@dataclass(frozen=True)
class SourceAnswer:
    """What a source said: the fingerprints it lists now, and whom it was asked."""

    firing: set[str]
    asked: tuple[str, ...]


def askable(adapter: SourceAdapter) -> AskableSource | None:
    """`adapter` as an AskableSource, or None when its system cannot be asked."""
    if callable(getattr(adapter, "firing_urls", None)) and callable(
        getattr(adapter, "firing_in", None)
    ):
        return cast(AskableSource, adapter)
    return None


def ask(
    source: AskableSource, get: Callable[..., requests.Response] = requests.get
) -> SourceAnswer:
    """Every alert the source lists now, from all its URLs (an HA pair: either one's word).

    Raises:
        PayloadError: a URL could not be reached, answered other than 200, or an unreadable list.
    """
    urls = source.firing_urls()
    firing: set[str] = set()
    for asked in urls:
        url = shown(asked)
        try:
            # No redirects: the admin named this URL, nothing it answers may send us elsewhere.
            with requests.get(
                asked, timeout=ASK_TIMEOUT, allow_redirects=False, stream=True
            ) as answer:
                if answer.status_code != 200:
                    raise PayloadError(f"{url} answered HTTP {answer.status_code}")
                body = answer.raw.read(ASK_MAX_BYTES + 1, decode_content=True)
        except requests.RequestException as e:
            raise PayloadError(f"{url} could not be asked: {type(e).__name__}") from e
        if len(body) > ASK_MAX_BYTES:
            raise PayloadError(f"{url} answered more than {ASK_MAX_BYTES} bytes")
        firing |= source.firing_in(body)
    return SourceAnswer(firing, tuple(shown(url) for url in urls))


def shown(url: str) -> str:
    """`url` as logs and notes may show it: without a login (user:password@) or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def reconcile(
    services: Services, now: datetime, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int]:
    """The reconcile job: the sources' alerts (`reconcile_sources`), then the open tickets
    (`reconcile_tickets`). How many alerts each resolved and tickets each closed."""
    done = reconcile_sources(services, now, stopping)
    done.update(reconcile_tickets(services, now, stopping))
    return done


def reconcile_sources(
    services: Services, now: datetime, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int]:
    """Ask every askable source of every active integration; resolve what they no longer list.
    How many alerts were resolved, per "<integration id>/<source>"."""
    grace = timedelta(seconds=float(services.settings["RECONCILE_GRACE_SECONDS"]))
    with services.transaction() as session:
        integrations = [
            (row.id, load_settings(row.settings))
            for row in session.scalars(select(Integration).where(Integration.active))
        ]
    resolved: dict[str, int] = {}
    for integration_id, settings in integrations:
        for slug, adapter in services.sources.items():
            if stopping():
                return resolved
            source = _configured(adapter, settings.source_options.get(slug, {}))
            if source is None or not source.firing_urls():
                continue
            where = {"integration_id": integration_id, "source": slug}
            try:
                answer = ask(source)
            except PayloadError as e:
                logger.warning("reconcile.source_not_asked", extra={**where, "reason": str(e)})
                continue
            count = resolve_missing(
                services, integration_id, settings, slug, answer, now=now, grace=grace
            )
            resolved[f"{integration_id}/{slug}"] = count
            if count:
                logger.info("reconcile.resolved", extra={**where, "alerts": count})
    return resolved


def _configured(adapter: SourceAdapter, options: Mapping[str, Any]) -> AskableSource | None:
    """The adapter as the integration configures it, when its system can be asked."""
    try:
        return askable(configured_source(adapter, options))
    except ConfigError as e:
        logger.warning("reconcile.source_options_refused", extra={"reason": str(e)})
        return None


def resolve_missing(
    services: Services,
    integration_id: int,
    settings: IntegrationSettings,
    source: str,
    answer: SourceAnswer,
    *,
    now: datetime,
    grace: timedelta,
) -> int:
    """Mark the unresolved alerts `answer` does not list as missing, and clear those missing
    for `grace` or longer; how many were cleared."""
    with services.transaction() as session:
        unresolved = list(
            session.scalars(
                select(Alert).where(
                    Alert.integration_id == integration_id,
                    Alert.source == source,
                    Alert.status != AlertStatus.CLEARED.value,
                )
            )
        )
        due: list[Alert] = []
        for alert in unresolved:
            if alert.fingerprint in answer.firing:
                alert.missing_since = None
            elif alert.missing_since is None:
                alert.missing_since = now
            elif now - alert.missing_since >= grace:
                due.append(alert)
        if not due:
            return 0
        clears = [_clear_of(alert, answer) for alert in due]
        for alert in due:
            alert.missing_since = None
        session.flush()
        ingest(
            session,
            integration_id,
            settings,
            clears,
            now=now,
            max_delivery_age=services.max_delivery_age,
        )
        return len(clears)


def _clear_of(alert: Alert, answer: SourceAnswer) -> IncomingAlert:
    """The clear the source did not send for `alert`, saying why it is sent now."""
    newest = alert.last_occurred_at or alert.started_at or alert.last_event_at
    since = alert.missing_since.isoformat() if alert.missing_since else "now"
    return IncomingAlert(
        source=alert.source,
        fingerprint=alert.fingerprint,
        status=AlertStatus.CLEARED,
        severity=Severity(alert.severity),
        title=alert.title,
        properties=dict(alert.properties),
        started_at=alert.started_at,
        occurred_at=newest + AFTER_NEWEST,
        actor=ACTOR,
        note=(
            f"the source no longer lists this alert (asked: {', '.join(answer.asked)}; missing"
            f" since {since}), so it was resolved there; its resolved notification never"
            " arrived"
        ),
    )


# -- the tickets ---------------------------------------------------------------------------------


def reconcile_tickets(
    services: Services,
    now: datetime,
    stopping: Callable[[], bool] = lambda: False,
    *,
    governor: Governor | None = None,
) -> dict[str, int]:
    """Ask the ticket system about open tickets, least recently asked first: one completed or
    deleted there (a webhook callout lost, or none registered) is closed as the callout would
    have closed it. At most RECONCILE_TICKETS_PER_RUN tickets per integration, in calls of the
    target's batch size, each through the governor (counted, thread-limited); a call held back
    or failed leaves those tickets for the next run. How many links were closed, per
    "<integration id>/tickets"."""
    limits = Limits.from_settings(services.settings)
    governor = governor or Governor(services, limits)
    per_run = int(services.settings["RECONCILE_TICKETS_PER_RUN"])
    holder = f"reconcile:{host_process()}"[:100]
    with services.transaction() as session:
        integrations = list(session.scalars(select(Integration).where(Integration.active)))
        session.expunge_all()
    closed: dict[str, int] = {}
    for integration in integrations:
        if stopping():
            break
        count = _reconcile_tickets_of(
            services, governor, holder, integration, per_run, now, stopping
        )
        if count is None:
            continue
        closed[f"{integration.id}/tickets"] = count
        if count:
            logger.info(
                "reconcile.tickets_closed", extra={"integration_id": integration.id, "links": count}
            )
    return closed


def _reconcile_tickets_of(
    services: Services,
    governor: Governor,
    holder: str,
    integration: Integration,
    per_run: int,
    now: datetime,
    stopping: Callable[[], bool],
) -> int | None:
    """reconcile_tickets for one integration: how many links it closed (None: its target cannot
    read ticket statuses)."""
    settings = load_settings(integration.settings)
    calls = CallLog()
    try:
        target = services.targets()(integration, settings, calls)
    except ConfigError as e:
        logger.warning(
            "reconcile.no_target", extra={"integration_id": integration.id, "reason": str(e)}
        )
        return None
    if not isinstance(target, TicketStatusReader):
        return None
    integration_id = integration.id

    def store(session: Session) -> None:
        calls.store_in(session, integration_id)

    ticket_ids = _open_tickets(services, integration_id, per_run)
    size = max(target.status_batch, 1)
    closed = 0
    for start in range(0, len(ticket_ids), size):
        if stopping():
            break
        batch = ticket_ids[start : start + size]
        try:
            with governor.call(integration_id, TICKETS_ENDPOINT, holder, store=store):
                statuses = target.ticket_statuses(batch)
        except TargetError as e:
            logger.warning(
                "reconcile.tickets_not_asked",
                extra={"integration_id": integration_id, "reason": str(e)},
            )
            break
        closed += _apply_statuses(services, integration_id, settings, batch, statuses, now)
    return closed


#: The endpoint ticket reads count against in the thread limit.
TICKETS_ENDPOINT = "Tickets"


def _open_tickets(services: Services, integration_id: int, limit: int) -> list[int]:
    """The ids of the integration's open tickets, least recently asked about first."""
    with services.transaction() as session:
        rows = session.execute(
            select(TicketLink.ticket_id)
            .join(Alert, Alert.id == TicketLink.alert_id)
            .where(
                Alert.integration_id == integration_id,
                TicketLink.state == TicketState.OPEN.value,
                TicketLink.ticket_id.is_not(None),
            )
            .order_by(TicketLink.checked_at.is_not(None), TicketLink.checked_at, TicketLink.id)
            .limit(limit)
        ).all()
    return list(dict.fromkeys(int(ticket_id) for (ticket_id,) in rows if ticket_id is not None))


def _apply_statuses(
    services: Services,
    integration_id: int,
    settings: IntegrationSettings,
    asked: list[int],
    statuses: Mapping[int, int | None],
    now: datetime,
) -> int:
    """Close the links of tickets deleted or completed in the ticket system; how many."""
    complete = settings.policy().complete_status
    closed = 0
    with services.transaction() as session:
        for ticket_id in asked:
            if ticket_id not in statuses:
                change = TicketChange(TicketChangeAction.DELETED, ticket_id, person=ACTOR)
            else:
                change = TicketChange(
                    TicketChangeAction.UPDATED, ticket_id, status=statuses[ticket_id], person=ACTOR
                )
            said = apply_ticket_change(session, integration_id, change, complete, now)
            closed += said.startswith("closed")
        session.execute(
            update(TicketLink)
            .where(
                TicketLink.ticket_id.in_(asked),
                TicketLink.alert_id.in_(
                    select(Alert.id).where(Alert.integration_id == integration_id)
                ),
            )
            .values(checked_at=now)
            .execution_options(synchronize_session=False)
        )
    return closed
