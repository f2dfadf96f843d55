"""The alert pages: the alerts with filters, and one alert's whole story.

Both read through the JSON API's query layer (connector.pipeline.alert_history, as GET
/api/v1/alerts and /api/v1/alerts/<id> do) with the API's own query parsers. An alert's page
shows its events in order with what became of each (queued, or why it was ignored, stale or
dropped), its tickets, its deliveries with their last request and answer, and its calls to
Autotask (the integration log, narrowed to the alert).
"""

from __future__ import annotations

import json
from typing import Any

from flask import render_template, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from connector.pipeline.activity_log import CallFilter, recent_calls
from connector.pipeline.alert_history import alert_history, list_alerts
from connector.web.admin import bp
from connector.web.admin.log import integration_names, without_blank_filters
from connector.web.api.alerts import ALERT_QUERY, ALERT_STATUSES, alert_filter
from connector.web.hooks import services
from connector.web.params import parse_query

#: Alerts per page of the list.
PAGE_SIZE = 50

#: How many of an alert's calls its page shows; the integration log has them all.
ALERT_CALLS_SHOWN = 20


def disposition_text(disposition: str) -> str:
    """What became of an event, in words: delivered, or why it was not."""
    if disposition == "queued":
        return "queued for delivery"
    if disposition == "duplicate":
        return "ignored: a repeat of an event already received"
    return disposition


@bp.app_template_filter("as_json")
def as_json(value: Any) -> str:
    """A stored value as readable JSON text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@bp.get("/alerts")
def alerts() -> BaseResponse | str:
    """The alerts, newest activity first, filtered by status, integration, source and text."""
    blank = without_blank_filters()
    if blank is not None:
        return blank
    args = parse_query(ALERT_QUERY)
    limit = args.get("limit", PAGE_SIZE)
    offset = args.get("offset", 0)
    with services().transaction() as session:
        listed = list_alerts(session, alert_filter(args), limit=limit + 1, offset=offset)
        integrations = integration_names(session)
    query: dict[str, Any] = {
        name: str(args[name]) for name in ALERT_QUERY if name in args and name != "offset"
    }
    more = len(listed) > limit
    return render_template(
        "admin/alerts.html",
        alerts=listed[:limit],
        query=query,
        filtered=any(name != "limit" for name in query),
        statuses=ALERT_STATUSES,
        sources=sorted(services().sources),
        integrations=integrations,
        offset=offset,
        newer=(url_for("admin.alerts", **query, offset=max(offset - limit, 0)) if offset else None),
        older=url_for("admin.alerts", **query, offset=offset + limit) if more else None,
    )


@bp.get("/alerts/<int:alert_id>")
def alert(alert_id: int) -> str:
    """One alert: its facts, events, tickets, deliveries and calls to Autotask, in order."""
    with services().transaction() as session:
        history = alert_history(session, alert_id)
        if history is None:
            raise NotFound(f"There is no alert {alert_id}.")
        calls = recent_calls(session, CallFilter(alert_id=alert_id), limit=ALERT_CALLS_SHOWN + 1)
        integrations = integration_names(session)
    return render_template(
        "admin/alert.html",
        history=history,
        alert=history.alert,
        integration=integrations.get(history.alert.integration_id, ""),
        integrations=integrations,
        calls=calls[:ALERT_CALLS_SHOWN],
        more_calls=len(calls) > ALERT_CALLS_SHOWN,
        log_url=url_for("admin.integration_log", alert_id=alert_id),
        disposition_text=disposition_text,
    )
