"""Retention: delete what has outlived its use, in small transactions (the scheduler's prune job).

What goes, oldest first, each in batches of PRUNE_BATCH rows per transaction so that webhooks
and deliveries never wait long behind a prune:

- API activity (ApiCall) older than API_ACTIVITY_RETENTION_DAYS, but never a call the API
  activity report can still show (its last 30 days at any UTC offset);
- finished deliveries (done, or discarded by an admin) finished (discarded) more than
  DELIVERY_RETENTION_DAYS ago, unless an API call still names them;
- alert events received more than EVENT_RETENTION_DAYS ago that no delivery names;
- scheduler runs older than a week.

Dead letters and unfinished deliveries are kept (an admin may still replay them), and so are
their events; alerts and their ticket links are kept (a late event still finds its ticket).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, select

from connector.persistence.models import AlertEvent, ApiCall, Delivery, SchedulerRun
from connector.pipeline.activity_report import earliest_reported
from connector.pipeline.outbox import DeliveryState
from connector.services import Services

logger = logging.getLogger(__name__)

#: Scheduler runs are kept this long (what ran when, for whoever looks into a problem).
SCHEDULER_RUNS_KEPT = timedelta(days=7)
#: Deliveries in these states are finished for good.
FINISHED = (DeliveryState.DONE, DeliveryState.DISCARDED)


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept, and how many rows one transaction deletes."""

    api_activity: timedelta
    deliveries: timedelta
    events: timedelta
    batch: int

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Retention:
        """The retention the settings configure."""
        return cls(
            api_activity=timedelta(days=float(settings["API_ACTIVITY_RETENTION_DAYS"])),
            deliveries=timedelta(days=float(settings["DELIVERY_RETENTION_DAYS"])),
            events=timedelta(days=float(settings["EVENT_RETENTION_DAYS"])),
            batch=int(settings["PRUNE_BATCH"]),
        )


def prune(
    services: Services, now: datetime, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int]:
    """Delete every row past its retention; how many went, per table. Stops early (to go on at
    the next run) once `stopping` says so."""
    retention = Retention.of(services.settings)
    api_cutoff = min(now - retention.api_activity, earliest_reported(now))
    finished_before = now - retention.deliveries
    received_before = now - retention.events
    # In this order: an old call goes before its delivery can, an old delivery before its event.
    candidates: list[tuple[type[ApiCall | Delivery | AlertEvent], Select[int]]] = [
        (ApiCall, select(ApiCall.id).where(ApiCall.at < api_cutoff).order_by(ApiCall.at)),
        (
            Delivery,
            select(Delivery.id)
            .where(
                Delivery.state.in_(FINISHED),
                # A dead letter discarded lately stays in the admin's list of discarded ones.
                func.coalesce(Delivery.discarded_at, Delivery.finished_at) < finished_before,
                ~exists().where(ApiCall.delivery_id == Delivery.id),
            )
            .order_by(Delivery.id),
        ),
        (
            AlertEvent,
            select(AlertEvent.id)
            .where(
                AlertEvent.received_at < received_before,
                ~exists().where(Delivery.event_id == AlertEvent.id),
            )
            .order_by(AlertEvent.received_at),
        ),
    ]
    pruned: dict[str, int] = {}
    started = time.monotonic()
    for model, candidate in candidates:
        name = model.__tablename__
        pruned[name] = 0
        while not stopping():
            with services.transaction() as session:
                ids = list(session.scalars(candidate.limit(retention.batch)))
                if ids:
                    session.execute(
                        delete(model)
                        .where(model.id.in_(ids))
                        .execution_options(synchronize_session=False)
                    )
            pruned[name] += len(ids)
            if len(ids) < retention.batch:
                break
    with services.transaction() as session:
        result = session.execute(
            delete(SchedulerRun)
            .where(SchedulerRun.started_at < now - SCHEDULER_RUNS_KEPT)
            .execution_options(synchronize_session=False)
        )
        pruned["scheduler_run"] = int(getattr(result, "rowcount", 0) or 0)
    if any(pruned.values()):
        logger.info(
            "retention.pruned",
            extra={**pruned, "seconds": round(time.monotonic() - started, 3)},
        )
    return pruned
