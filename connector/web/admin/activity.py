"""API activity by hour, as Autotask's own report shows it, for this connector's calls.

A day of the last 30: hours × integrations with totals, an hour over the threshold marked, a
chart of the calls per hour against the threshold; a cell opens that hour's calls; each table is
downloadable as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, render_template, url_for

from connector.pipeline.activity_csv import calls_csv, grid_csv, totals_csv
from connector.pipeline.activity_report import (
    HourlyGrid,
    ReportDay,
    hour_calls,
    hourly_grid,
    report_days,
)
from connector.web.admin import bp
from connector.web.api.activity import (
    CALLS_QUERY,
    HOURLY_QUERY,
    csv_attachment,
    query_day,
    report_threshold,
)
from connector.web.hooks import services
from connector.web.params import page_of, parse_query

#: The chart's drawing area, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 720, 180


@dataclass(frozen=True)
class Bar:
    """One hour's bar of the chart."""

    hour: int
    x: float
    y: float
    height: float
    total: int
    over: bool


def chart_bars(grid: HourlyGrid) -> tuple[list[Bar], float]:
    """The bars of the calls per hour, scaled with the threshold line in view; and its height."""
    top = max(grid.threshold, max((row.total for row in grid.hours), default=0), 1)
    width = CHART_WIDTH / len(grid.hours)
    bars = []
    for row in grid.hours:
        # A busy hour stays visible however far below the threshold it is.
        height = max(CHART_HEIGHT * row.total / top, 2.0) if row.total else 0.0
        y = CHART_HEIGHT - height
        bars.append(Bar(row.hour, row.hour * width, y, height, row.total, row.over_threshold))
    return bars, CHART_HEIGHT - CHART_HEIGHT * grid.threshold / top


def _day_query(day: ReportDay) -> dict[str, Any]:
    """The query parameters that name `day` (and its UTC offset, when not UTC)."""
    query: dict[str, Any] = {"day": day.day.isoformat()}
    if day.utc_offset:
        query["utc_offset_minutes"] = str(int(day.utc_offset.total_seconds()) // 60)
    return query


@bp.get("/api-activity")
def api_activity() -> str:
    """The day's grid, its chart and its totals."""
    args = parse_query(HOURLY_QUERY)
    day = query_day(args)
    with services().transaction() as session:
        grid = hourly_grid(session, day, report_threshold())
    bars, threshold_y = chart_bars(grid)
    query = _day_query(day)
    return render_template(
        "admin/api_activity.html",
        grid=grid,
        days=list(reversed(report_days(utc_offset=day.utc_offset))),
        query=query,
        bars=bars,
        threshold_y=threshold_y,
        chart=(CHART_WIDTH, CHART_HEIGHT),
        hours_csv=url_for("admin.api_activity_csv", table="hours", **query),
        totals_csv=url_for("admin.api_activity_csv", table="totals", **query),
    )


@bp.get("/api-activity.csv")
def api_activity_csv() -> Response:
    """The day's hours × integrations (table=hours) or totals per integration (table=totals)."""
    args = parse_query(HOURLY_QUERY)
    day = query_day(args)
    with services().transaction() as session:
        grid = hourly_grid(session, day, report_threshold())
    table = args.get("table", "hours")
    text = totals_csv(grid) if table == "totals" else grid_csv(grid)
    return csv_attachment(text, f"api-activity-{day.day.isoformat()}-{table}.csv")


@bp.get("/api-activity/calls")
def api_activity_calls() -> str:
    """One hour's calls (of one integration, or all), as Autotask's report lists them."""
    args = parse_query(CALLS_QUERY)
    hour = int(args.get("hour", 0))
    day = query_day(args)
    limit, offset = page_of(args)
    with services().transaction() as session:
        page = hour_calls(
            session,
            day,
            hour,
            report_threshold(),
            integration_id=args.get("integration_id"),
            limit=limit,
            offset=offset,
        )
    query = {**_day_query(day), "hour": str(hour)}
    if "integration_id" in args:
        query["integration_id"] = str(args["integration_id"])
    return render_template(
        "admin/api_activity_calls.html",
        day=day,
        hour=hour,
        page=page,
        limit=limit,
        offset=offset,
        query=query,
        back=url_for("admin.api_activity", **{k: v for k, v in query.items() if k == "day"}),
        csv_url=url_for("admin.api_activity_calls_csv", **query),
    )


@bp.get("/api-activity/calls.csv")
def api_activity_calls_csv() -> Response:
    """Every call of the hour as CSV."""
    args = parse_query(CALLS_QUERY)
    hour = int(args.get("hour", 0))
    day = query_day(args)
    with services().transaction() as session:
        page = hour_calls(
            session, day, hour, report_threshold(), integration_id=args.get("integration_id")
        )
    text = calls_csv(page.calls, day.utc_offset, with_flag=True)
    return csv_attachment(text, f"api-activity-{day.day.isoformat()}-{hour:02d}h.csv")
