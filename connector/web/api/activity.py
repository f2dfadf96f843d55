"""/api/v1/activity and /api/v1/api-calls: API activity by hour, an hour's calls, the call log.

Each answers JSON, or CSV (an attachment) with `format=csv` or `Accept: text/csv`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, jsonify, request

from connector.pipeline.activity_csv import calls_csv, grid_csv, totals_csv
from connector.pipeline.activity_log import (
    FAILED,
    NO_ANSWER,
    OK,
    STATUS_CLASSES,
    CallFilter,
    call_json,
    call_log,
)
from connector.pipeline.activity_report import (
    MAX_UTC_OFFSET,
    MIN_UTC_OFFSET,
    ReportDay,
    ReportRangeError,
    grid_json,
    hour_calls,
    hourly_grid,
    report_day,
    report_days,
)
from connector.web.api import api_blueprint
from connector.web.hooks import services
from connector.web.params import (
    PAGE,
    QueryError,
    Refused,
    database_id,
    one_of,
    page_of,
    parse_query,
    text,
    whole_number,
)

bp = api_blueprint("activity", __name__)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SIGNED = re.compile(r"-?[0-9]{1,4}")
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.,]+)?(Z|[+-][0-9:]+)?")


def calendar_day(value: str) -> date:
    """A day as YYYY-MM-DD."""
    if _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise Refused(f"must be a day as YYYY-MM-DD, got {value[:40]!r}")


def utc_offset_minutes(value: str) -> timedelta:
    """Minutes east of UTC: a multiple of 15 from -720 (UTC-12:00) to 840 (UTC+14:00)."""
    low, high = (int(bound.total_seconds()) // 60 for bound in (MIN_UTC_OFFSET, MAX_UTC_OFFSET))
    if _SIGNED.fullmatch(value) and low <= int(value) <= high and int(value) % 15 == 0:
        return timedelta(minutes=int(value))
    raise Refused(
        f"must be minutes east of UTC, a multiple of 15 from {low} to {high}, got {value[:40]!r}"
    )


def moment(value: str) -> datetime:
    """An ISO 8601 time (or day), UTC unless it names its offset."""
    hint = " (a '+' in a URL is a space: write %2B)" if " " in value else ""
    if _MOMENT.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise Refused(
        f"must be an ISO 8601 time such as 2026-11-22T10:00:00Z, got {value[:40]!r}{hint}"
    )


def call_status(value: str) -> int | str:
    """An HTTP status (100–599), a class of them (2xx … 5xx), `error` (no answer), `ok` (a 2xx
    without error) or `failed` (any other call)."""
    if value in (*STATUS_CLASSES, NO_ANSWER, OK, FAILED):
        return value
    try:
        return whole_number(100, 599)(value)
    except Refused:
        raise Refused(
            f"must be an HTTP status from 100 to 599, one of {', '.join(STATUS_CLASSES)},"
            f" {NO_ANSWER} (no answer), {OK} or {FAILED}, got {value[:40]!r}"
        ) from None


FORMAT = {"format": one_of(("json", "csv"))}
DAY = {"day": calendar_day, "utc_offset_minutes": utc_offset_minutes}
#: GET /activity/hourly: the day, and in CSV which table (the hours, or the day's totals).
HOURLY_QUERY = {**DAY, "table": one_of(("hours", "totals")), **FORMAT}
#: GET /activity/calls: one hour of the day, of every integration or one.
CALLS_QUERY = {
    **DAY,
    "hour": whole_number(0, 23),
    "integration_id": database_id,
    **FORMAT,
    **PAGE,
}
#: GET /api-calls: the integration log's filters and paging.
LOG_QUERY = {
    "integration_id": database_id,
    "alert_id": database_id,
    "ticket_id": database_id,
    "ticket_number": text,
    "status": call_status,
    "since": moment,
    "until": moment,
    **FORMAT,
    **PAGE,
}


def _refused(parameter: str, reason: str) -> QueryError:
    return QueryError(
        f"{parameter} {reason}",
        details={"parameters": [{"parameter": parameter, "reason": reason}]},
    )


def query_day(args: dict[str, Any]) -> ReportDay:
    """The day the query names (none: today); a 400 naming `day` outside the days covered."""
    offset = args.get("utc_offset_minutes", timedelta(0))
    day = args.get("day", report_days(utc_offset=offset)[-1])
    try:
        return report_day(day, utc_offset=offset)
    except ReportRangeError as e:
        raise _refused("day", f"is out of range: {e}") from e


def report_threshold() -> int:
    """Autotask's calls per hour per database, as the report marks them (api_hourly_threshold)."""
    return int(services().settings["API_HOURLY_THRESHOLD"])


def _wants_csv(args: dict[str, Any]) -> bool:
    if "format" in args:
        return bool(args["format"] == "csv")
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _json(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.vary.add("Accept")  # the same URL answers CSV to `Accept: text/csv`
    return response


def csv_attachment(text: str, filename: str) -> Response:
    """CSV text as an attachment; `filename` is made of digits, dashes and fixed words only."""
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.vary.add("Accept")
    return response


def _covers(day: ReportDay) -> dict[str, str]:
    days = report_days(utc_offset=day.utc_offset)
    return {"first_day": days[0].isoformat(), "last_day": days[-1].isoformat()}


@bp.get("/activity/hourly")
def hourly() -> Response:
    """A day's calls per hour and integration, with totals and the hours over the threshold."""
    args = parse_query(HOURLY_QUERY)
    day = query_day(args)
    with services().transaction() as session:
        grid = hourly_grid(session, day, report_threshold())
    if _wants_csv(args):
        table = args.get("table", "hours")
        text = totals_csv(grid) if table == "totals" else grid_csv(grid)
        return csv_attachment(text, f"api-activity-{day.day.isoformat()}-{table}.csv")
    return _json({**grid_json(grid), **_covers(day)})


@bp.get("/activity/calls")
def calls_of_an_hour() -> Response:
    """The calls of one hour, in the order they were made; CSV: all of them unless `limit`."""
    args = parse_query(CALLS_QUERY)
    if "hour" not in args:
        raise _refused("hour", "is required: the hour of the day, 0 to 23")
    day = query_day(args)
    csv = _wants_csv(args)
    page_limit, offset = page_of(args)
    limit = None if csv and "limit" not in args else page_limit
    with services().transaction() as session:
        page = hour_calls(
            session,
            day,
            args["hour"],
            report_threshold(),
            integration_id=args.get("integration_id"),
            limit=limit,
            offset=offset,
        )
    if csv:
        text = calls_csv(page.calls, day.utc_offset, with_flag=True)
        return csv_attachment(text, f"api-activity-{day.day.isoformat()}-{args['hour']:02d}h.csv")
    return _json(
        {
            "day": day.day.isoformat(),
            "hour": args["hour"],
            "utc_offset_minutes": int(day.utc_offset.total_seconds()) // 60,
            "start": day.local(day.hour_start(args["hour"])).isoformat(),
            "end": day.local(day.hour_start(args["hour"] + 1)).isoformat(),
            "integration_id": args.get("integration_id"),
            "threshold": report_threshold(),
            "calls": [call_json(call, day.utc_offset) for call in page.calls],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }
    )


@bp.get("/api-calls")
def api_calls() -> Response:
    """The integration log: every call to Autotask, newest first; filtered and paged."""
    args = parse_query(LOG_QUERY)
    if "since" in args and "until" in args and args["since"] >= args["until"]:
        raise _refused("until", "must be later than since")
    limit, offset = page_of(args)
    filters = CallFilter(
        integration_id=args.get("integration_id"),
        alert_id=args.get("alert_id"),
        ticket_id=args.get("ticket_id"),
        ticket_number=args.get("ticket_number"),
        status=args.get("status"),
        since=args.get("since"),
        until=args.get("until"),
    )
    with services().transaction() as session:
        rows = call_log(session, filters, limit=limit, offset=offset)
    if _wants_csv(args):
        return csv_attachment(calls_csv(rows), "api-calls.csv")
    return _json({"api_calls": [call_json(row) for row in rows], "limit": limit, "offset": offset})
