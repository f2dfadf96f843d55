"""What the ticket system counts of each database's hourly threshold, asked for periodically.

The threshold is the database's: the MSP's other tools spend from it too, and the connector sees
only its own calls. `poll_thresholds` (a periodic job) asks each database's usage through one of
its active integrations, at most every THRESHOLD_POLL_SECONDS per database, through the governor
like any call (counted, thread-limited, stored in the activity log), and keeps the answer on the
database's `database_usage` row. The governor then holds calls back when the reported count plus
the connector's calls since reach THRESHOLD_SAFETY_SHARE of the threshold (pipeline/governor.py).

An integration whose database is not known yet is not asked: its zone lookup names the database
(on its next call; migration 0014 has every kept zone looked up again once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from connector.domain import ApiUsage
from connector.errors import ConfigError, TargetError
from connector.integrations.settings import load_settings
from connector.persistence.models import DatabaseUsage, Integration, utcnow
from connector.pipeline.dispatch import CallLog
from connector.pipeline.governor import Governor, Limits, usage_row
from connector.pipeline.heartbeat import host_process
from connector.ports import ApiUsageReporter
from connector.services import Services

logger = logging.getLogger(__name__)

#: The endpoint the usage call counts against in the thread limit (profile names, as the
#: catalog's connection check names it).
USAGE_ENDPOINT = "ThresholdInformation"

#: A database is asked again once its last report is this share of the poll period old: a job
#: run at each period's boundary then never skips a database whose last answer came a moment
#: after the previous boundary.
DUE_SHARE = 0.9


@dataclass
class ThresholdPoll:
    """What one poll did: the usage each database reported, the databases not due yet, and why
    the others could not be asked (held back by the governor, a failed call)."""

    polled: dict[str, ApiUsage] = field(default_factory=dict)
    not_due: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def poll_thresholds(
    services: Services,
    now: datetime,
    stopping: Callable[[], bool],
    *,
    governor: Governor | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> ThresholdPoll:
    """Ask each database whose last report is due for its hourly usage, and keep the answers."""
    limits = Limits.from_settings(services.settings)
    governor = governor or Governor(services, limits, clock=clock)
    holder = f"threshold-poll:{host_process()}"[:100]
    result = ThresholdPoll()
    due_after = timedelta(seconds=limits.threshold_poll * DUE_SHARE)
    for database_id, integration_id, reported_at in _databases(services):
        if stopping():
            break
        if reported_at is not None and now - reported_at < due_after:
            result.not_due.append(database_id)
            continue
        try:
            usage = _ask(services, governor, integration_id, holder)
        except (TargetError, ConfigError) as e:
            # Held back (Throttled), refused or unreachable: the next run asks again; the last
            # report stays until it is too old to trust.
            result.failed[database_id] = str(e)
            logger.warning(
                "thresholds.not_polled",
                extra={
                    "database_id": database_id,
                    "integration_id": integration_id,
                    "error": str(e),
                },
            )
            continue
        if usage is None:
            result.failed[database_id] = "its ticket system cannot report its API usage"
            continue
        _keep(services, database_id, usage, clock())
        result.polled[database_id] = usage
        logger.info(
            "thresholds.polled",
            extra={
                "database_id": database_id,
                "count": usage.count,
                "threshold": usage.threshold,
            },
        )
    return result


def _databases(services: Services) -> list[tuple[str, int, datetime | None]]:
    """Per known database: the active integration that asks (the lowest id), and when its
    usage was last reported."""
    with services.transaction() as session:
        rows = session.execute(
            select(Integration.database_id, Integration.id, DatabaseUsage.reported_at)
            .outerjoin(DatabaseUsage, DatabaseUsage.database_id == Integration.database_id)
            .where(Integration.active.is_(True), Integration.database_id.is_not(None))
            .order_by(Integration.database_id, Integration.id)
        ).all()
    found: dict[str, tuple[str, int, datetime | None]] = {}
    for database_id, integration_id, reported_at in rows:
        if database_id and database_id not in found:
            found[database_id] = (database_id, integration_id, reported_at)
    return list(found.values())


def _ask(
    services: Services, governor: Governor, integration_id: int, holder: str
) -> ApiUsage | None:
    """The database's usage, asked through the integration's target and the governor; None
    when its target cannot report usage."""
    with services.transaction() as session:
        integration = session.get(Integration, integration_id)
        if integration is None:
            return None
        settings = load_settings(integration.settings)
    calls = CallLog()
    target = services.targets()(integration, settings, calls)
    if not isinstance(target, ApiUsageReporter):
        return None
    with governor.call(
        integration_id,
        USAGE_ENDPOINT,
        holder,
        store=lambda session: calls.store_in(session, integration_id),
        # The call that may show the count has fallen must not be held back by the last one.
        heed_usage=False,
    ):
        return target.api_usage()


def _keep(services: Services, database_id: str, usage: ApiUsage, reported_at: datetime) -> None:
    """Store the database's reported usage and when it was reported."""
    with services.transaction() as session:
        usage_row(session, database_id)
        session.execute(
            update(DatabaseUsage)
            .where(DatabaseUsage.database_id == database_id)
            .values(
                reported_count=usage.count,
                threshold=usage.threshold,
                timeframe_minutes=usage.timeframe_minutes,
                reported_at=reported_at,
            )
        )
