"""The integration log: every call to Autotask, newest first, each opening to its request and
answer (headers and bodies, secrets redacted by the target adapter before they were stored).

Filtered by alert, ticket, status and integration with the JSON API's own parsers (GET
/api/v1/api-calls); paged by id, so a page stays put while new calls arrive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from connector.persistence.models import ApiCall, Integration
from connector.pipeline.activity_log import (
    FAILED,
    NO_ANSWER,
    OK,
    STATUS_CLASSES,
    CallFilter,
    recent_calls,
)
from connector.web.admin import bp
from connector.web.api.activity import call_status
from connector.web.hooks import services
from connector.web.params import Parser, database_id, parse_query, text, whole_number

#: Calls per page of the log.
PAGE_SIZE = 50

#: The log's filters (the API's parsers), `before` (an id: the page's calls are older) and size.
LOG_PAGE_QUERY: dict[str, Parser] = {
    "integration_id": database_id,
    "alert_id": database_id,
    "ticket_id": database_id,
    "ticket_number": text,
    "status": call_status,
    "before": database_id,
    "limit": whole_number(1, 200),
}

#: The status filter's choices, in words; the HTTP statuses seen in the log follow them.
STATUS_CHOICES: tuple[tuple[str, str], ...] = (
    (OK, "OK (2xx, no error)"),
    (FAILED, "Failed (any error)"),
    (NO_ANSWER, "No answer (timeout, connection)"),
    *((status_class, f"HTTP {status_class}") for status_class in STATUS_CLASSES),
)


def without_blank_filters() -> BaseResponse | None:
    """A redirect to this page without the empty fields a GET form sends, or None if none.

    The page then reads its query with the JSON API's parsers, which refuse empty values.
    """
    given = list(request.args.items(multi=True))
    kept = [(name, value) for name, value in given if value != ""]
    if len(kept) == len(given):
        return None
    return redirect(request.path + ("?" + urlencode(kept) if kept else ""))


@bp.app_template_global()
def pretty_body(body: Any) -> str:
    """A body as shown: JSON indented, anything else (XML, text, a cut body) as it is."""
    if not body:
        return ""
    if not isinstance(body, str):  # a refusal's answer is kept parsed (Autotask's errors)
        return json.dumps(body, indent=2, ensure_ascii=False)
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


@bp.app_template_global()
def exchange_lines(part: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The fields of a stored request or answer beside its headers and body, as (name, text)."""
    if not part:
        return []
    return [
        (name, value if isinstance(value, str) else json.dumps(value))
        for name, value in part.items()
        if name not in ("headers", "body")
    ]


def integration_names(session: Session) -> dict[int, str]:
    """Every integration's name, by id, in name order."""
    rows = session.execute(select(Integration.id, Integration.name).order_by(Integration.name))
    return {integration_id: name for integration_id, name in rows}


@bp.get("/log")
def integration_log() -> BaseResponse | str:
    """Every call to Autotask, newest first, filtered; each opens to its request and answer."""
    blank = without_blank_filters()
    if blank is not None:
        return blank
    args = parse_query(LOG_PAGE_QUERY)
    limit = args.get("limit", PAGE_SIZE)
    filters = CallFilter(
        integration_id=args.get("integration_id"),
        alert_id=args.get("alert_id"),
        ticket_id=args.get("ticket_id"),
        ticket_number=args.get("ticket_number"),
        status=args.get("status"),
    )
    with services().transaction() as session:
        calls = recent_calls(session, filters, before_id=args.get("before"), limit=limit + 1)
        integrations = integration_names(session)
        seen = session.scalars(
            select(ApiCall.http_status)
            .where(ApiCall.http_status.is_not(None))
            .distinct()
            .order_by(ApiCall.http_status)
        )
        statuses = [*STATUS_CHOICES, *((str(code), f"HTTP {code}") for code in seen)]
    chosen = args.get("status")
    if chosen is not None and str(chosen) not in {value for value, _ in statuses}:
        statuses.append((str(chosen), f"HTTP {chosen}"))
    query: dict[str, Any] = {
        name: str(args[name]) for name in LOG_PAGE_QUERY if name in args and name != "before"
    }
    older = None
    if len(calls) > limit:
        calls = calls[:limit]
        older = url_for("admin.integration_log", **query, before=calls[-1].row.id)
    return render_template(
        "admin/integration_log.html",
        calls=calls,
        query=query,
        filtered=any(name != "limit" for name in query),
        integrations=integrations,
        statuses=statuses,
        older=older,
        newest=url_for("admin.integration_log", **query) if "before" in args else None,
    )
