"""GET /metrics: Prometheus text exposition of webhook counters, histograms and database gauges.

Two kinds of metric, exposed through one registry per app (never prometheus_client's global one,
so that several apps in one process keep apart):

- counted by the processes: every answer to `/hooks/…` by source and status, the alerts of each
  202 by disposition, each answer's handling time by source (a histogram), and the alert → ticket
  latency the worker observes (connector.pipeline.latency). They start at 0 when the connector
  starts. Under `connector run` and `connector serve` (several web processes, a worker process)
  prometheus_client's multiprocess mode adds up every process's counts from the directory named
  by PROMETHEUS_MULTIPROC_DIR, so any web process's scrape shows the connector's totals. Without
  that directory (an app in a test, `gunicorn wsgi:app` without it) each process counts only its
  own, in the app's registry.
- gauges read from the database at scrape time (deliveries by state, the oldest due delivery's
  wait, dead letters, Autotask calls of the last hour, open tickets): the database is shared, so
  they are right whichever web or worker process does the work. When the database cannot be read
  the scrape still answers 200, with `connector_database_up 0` and without those gauges.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.sansio.blueprints import BlueprintSetupState
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from connector.domain import TicketState
from connector.errors import AuthError
from connector.persistence.models import (
    ApiCall,
    Delivery,
    GovernorState,
    Integration,
    TicketLink,
    utcnow,
)
from connector.pipeline.latency import BUCKETS, alert_to_ticket
from connector.pipeline.outbox import DeliveryState
from connector.services import Services

bp = Blueprint("metrics", __name__)
logger = logging.getLogger(__name__)

#: The classic Prometheus text format (0.0.4), which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Every delivery state; each is exposed, 0 when no delivery is in it.
DELIVERY_STATES = tuple(state.value for state in DeliveryState)
#: What became of each alert of an accepted webhook (AlertEvent.disposition, "dropped: …" cut;
#: "rejected": the alert could not be read and was kept as a rejected webhook; "held: …": its
#: integration is inactive, the delivery is kept, not sent).
DISPOSITIONS = ("queued", "duplicate", "stale", "dropped", "rejected", "held")
#: Classes of Autotask's HTTP status always exposed per integration; "error" = no answer at all.
API_STATUS_CLASSES = ("2xx", "4xx", "5xx", "error")
#: Label of webhooks to a source the connector does not know (any path: keeps the labels few).
UNKNOWN_SOURCE = "unknown"
HOOK_PREFIX = "/hooks/"
#: Statement timeout of the scrape's queries on PostgreSQL, in milliseconds.
QUERY_TIMEOUT_MS = 5000
#: Sent with a 401, so a client knows which scheme /metrics takes.
CHALLENGE = 'Bearer realm="metrics"'


#: Set by `connector run`/`serve`: the directory of every process's metric files.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class AppMetrics:
    """An app's registry (what a scrape exposes) and the metrics its requests observe."""

    registry: CollectorRegistry
    webhooks: Counter
    alerts: Counter
    webhook_seconds: Histogram


def app_metrics() -> AppMetrics:
    """The current app's metrics."""
    found: AppMetrics = current_app.extensions["connector_metrics"]
    return found


def _set_up(state: BlueprintSetupState) -> None:
    """Give the app its own registry with the web counters and the database collector."""
    services: Services = state.app.extensions["connector"]
    registry = CollectorRegistry()
    multiprocess_dir = os.environ.get(MULTIPROCESS_VARIABLE)
    # In multiprocess mode the metrics write to the directory's files, which the collector reads
    # (every process's): registering them as well would expose this process's twice.
    own = None if multiprocess_dir else registry
    webhooks = Counter(
        "connector_webhooks",
        "Answers to POST /hooks/<source> by the web processes, by source and HTTP status.",
        ["source", "status"],
        registry=own,
    )
    alerts = Counter(
        "connector_webhook_alerts",
        "Alerts of webhooks answered 202 by the web processes, by source and disposition.",
        ["source", "disposition"],
        registry=own,
    )
    webhook_seconds = Histogram(
        "connector_webhook_seconds",
        "Seconds the web processes took to answer POST /hooks/<source>, by source (every"
        " answer, refusals included).",
        ["source"],
        buckets=BUCKETS,
        registry=own,
    )
    if multiprocess_dir:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(alert_to_ticket())
    # Known sources start at 0, so rate() and increase() see their first webhook.
    for source in services.sources:
        webhooks.labels(source=source, status="202")
        webhook_seconds.labels(source=source)
        for disposition in DISPOSITIONS:
            alerts.labels(source=source, disposition=disposition)
    registry.register(DatabaseCollector(services))
    state.app.extensions["connector_metrics"] = AppMetrics(
        registry, webhooks, alerts, webhook_seconds
    )


bp.record_once(_set_up)


@bp.before_app_request
def start_clock() -> None:
    """Note when a /hooks/ request began, for its handling time."""
    if request.path.startswith(HOOK_PREFIX):
        g.metrics_hook_started = time.perf_counter()


@bp.after_app_request
def count_webhook(response: Response) -> Response:
    """Count every answer to /hooks/…; a failure to count never changes the answer."""
    if request.path.startswith(HOOK_PREFIX):
        try:
            _count(response)
        except Exception:
            logger.exception("metrics.webhook_not_counted", extra={"status": response.status_code})
    return response


def _count(response: Response) -> None:
    metrics = app_metrics()
    services: Services = current_app.extensions["connector"]
    slug = request.path[len(HOOK_PREFIX) :].partition("/")[0]
    source = slug if slug in services.sources else UNKNOWN_SOURCE
    metrics.webhooks.labels(source=source, status=str(response.status_code)).inc()
    started = g.get("metrics_hook_started")
    if started is not None:
        metrics.webhook_seconds.labels(source=source).observe(time.perf_counter() - started)
    if response.status_code != 202:
        return
    body = g.get("hook_answer")  # as the hook built it (its only 202), not parsed back
    for part in ("accepted", "rejected"):
        entries = body.get(part) if isinstance(body, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                disposition = _disposition(entry.get("disposition"))
                metrics.alerts.labels(source=source, disposition=disposition).inc()


def _disposition(value: Any) -> str:
    """queued, duplicate, stale, dropped ("dropped: <why>" loses its reason), rejected or held;
    else other."""
    word = str(value or "").partition(":")[0].strip()
    return word if word in DISPOSITIONS else "other"


@bp.after_request
def challenge(response: Response) -> Response:
    """Tell a refused scraper which scheme /metrics takes (RFC 9110 WWW-Authenticate)."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric in the Prometheus text format; 200 even when the database is down."""
    _authorize()
    body = generate_latest(_WithoutCreated(app_metrics().registry))
    return Response(body, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


class _WithoutCreated:
    """The registry's metrics without the counters' and histograms' `<name>_created` samples.

    prometheus_client adds one per counter or histogram series (its creation time), which the
    text format exposes as a separate gauge: more series, of no use to a rate(). The library's
    own switch for this is process-wide, so it is filtered here instead.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self.registry.collect():
            if metric.type in ("counter", "histogram"):
                metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


def _authorize() -> None:
    """With METRICS_TOKEN set, require `Authorization: Bearer <it>` (compared in constant time)."""
    services: Services = current_app.extensions["connector"]
    expected = str(services.settings["METRICS_TOKEN"])
    if not expected:
        return
    scheme, _, presented = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode("utf-8"), expected.encode("utf-8")
    ):
        raise AuthError("/metrics needs Authorization: Bearer <metrics token>")


# -- gauges from the database ---------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _families() -> dict[str, GaugeMetricFamily]:
    """The database gauges, empty: filled by a scrape, or as they are for describe()."""
    return {
        family.name: family
        for family in (
            _gauge(
                "connector_deliveries",
                "Deliveries (the outbox of work for Autotask) by state.",
                ["state"],
            ),
            _gauge(
                "connector_delivery_oldest_pending_seconds",
                "How long the longest-waiting due pending delivery has waited for a worker"
                " (now minus its next attempt time); 0 when none is due.",
            ),
            _gauge(
                "connector_dead_letters",
                "Dead-lettered deliveries, waiting for a replay"
                " (POST /api/v1/deliveries/<id>/replay).",
            ),
            _gauge(
                "connector_autotask_api_calls_last_hour",
                "Calls to Autotask in the last hour by integration and HTTP status class"
                " (error: no answer). Autotask allows 10,000 per hour per database.",
                ["integration", "status"],
            ),
            _gauge(
                "connector_open_tickets",
                "Autotask tickets the connector keeps open for an alert"
                " (ticket links in state open).",
            ),
            _gauge(
                "connector_breaker_open",
                "1 while the integration's circuit breaker holds calls back (open, or half-open"
                " waiting for its probe), else 0.",
                ["integration"],
            ),
            _gauge(
                "connector_api_budget_remaining",
                "Calls to Autotask the integration may still make in the rolling 60 minutes"
                " (API_HOURLY_CEILING minus the calls of the last 60 minutes).",
                ["integration"],
            ),
        )
    }


def _status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"


class DatabaseCollector:
    """Gauges read from the shared database at scrape time, with cheap aggregate queries."""

    def __init__(self, services: Services, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.clock = clock

    def describe(self) -> list[Metric]:
        """The names this collector exposes (the registry refuses a second collector of them)."""
        return [_database_up(), *_families().values()]

    def collect(self) -> Iterator[Metric]:
        """connector_database_up, then, when the database answered, every database gauge."""
        up = _database_up()
        try:
            families = self._read()
        except SQLAlchemyError as e:
            # Only the error's class: its text may quote connection parameters.
            logger.warning("metrics.database_unavailable", extra={"error": type(e).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families.values()

    def _read(self) -> dict[str, GaugeMetricFamily]:
        now = self.clock()
        families = _families()
        with self.services.sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                # A scrape must not hang on a lock or a slow plan: give up, then database_up 0.
                session.execute(text(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}"))
            by_state: dict[str, int] = {
                state: int(count)
                for state, count in session.execute(
                    select(Delivery.state, func.count()).group_by(Delivery.state)
                )
            }
            oldest_due = session.scalar(
                select(func.min(Delivery.next_attempt_at)).where(
                    Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now
                )
            )
            integrations = list(session.scalars(select(Integration.name)))
            breakers = dict(
                session.execute(
                    select(Integration.name, GovernorState.breaker).join(
                        Integration, GovernorState.integration_id == Integration.id
                    )
                ).all()
            )
            calls = session.execute(
                select(Integration.name, ApiCall.http_status, func.count())
                .join(Integration, ApiCall.integration_id == Integration.id)
                .where(ApiCall.at > now - timedelta(hours=1))
                .group_by(Integration.name, ApiCall.http_status)
            ).all()
            open_tickets = session.scalar(
                select(func.count())
                .select_from(TicketLink)
                .where(TicketLink.state == TicketState.OPEN.value)
            )

        deliveries = families["connector_deliveries"]
        for state in sorted(set(DELIVERY_STATES) | set(by_state)):
            deliveries.add_metric([state], by_state.get(state, 0))
        waited = (now - oldest_due).total_seconds() if oldest_due is not None else 0.0
        families["connector_delivery_oldest_pending_seconds"].add_metric([], max(waited, 0.0))
        families["connector_dead_letters"].add_metric([], by_state.get(DeliveryState.DEAD, 0))
        per_class: dict[tuple[str, str], int] = {
            (name, status): 0 for name in integrations for status in API_STATUS_CLASSES
        }
        for name, http_status, count in calls:
            key = (str(name), _status_class(http_status))
            per_class[key] = per_class.get(key, 0) + int(count)
        api_calls = families["connector_autotask_api_calls_last_hour"]
        for (name, status), count in sorted(per_class.items()):
            api_calls.add_metric([name, status], count)
        families["connector_open_tickets"].add_metric([], int(open_tickets or 0))
        ceiling = int(self.services.settings["API_HOURLY_CEILING"])
        used: dict[str, int] = {}
        for (name, _), count in per_class.items():
            used[name] = used.get(name, 0) + count
        for name in sorted(integrations):
            is_open = breakers.get(name, "closed") != "closed"
            families["connector_breaker_open"].add_metric([name], 1 if is_open else 0)
            remaining = max(ceiling - used.get(name, 0), 0)
            families["connector_api_budget_remaining"].add_metric([name], remaining)
        return families


def _database_up() -> GaugeMetricFamily:
    return _gauge(
        "connector_database_up",
        "1 when the scrape could read the database, else 0 (the database gauges are then"
        " left out).",
    )
