"""API activity by hour, as Autotask's own report shows it, for this connector's calls.

A day of the last REPORT_DAYS: how many calls each integration made in each hour, the hours over
Autotask's hourly threshold, and the calls of one hour. A day is a calendar day at a fixed UTC
offset (0: UTC), not a time zone: a day across a daylight-saving change keeps one offset and has
24 hours. Every count comes from the stored ApiCall rows (pipeline/activity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from connector.errors import ConnectorError
from connector.persistence.models import ApiCall, Integration, utcnow
from connector.pipeline.activity_log import CallRow, call_row, calls_select

#: The report covers today and the days before it, this many in all.
REPORT_DAYS = 30
HOURS = 24
#: The UTC offsets in use, UTC−12:00 to UTC+14:00, in steps of 15 minutes (UTC+05:45 exists).
MIN_UTC_OFFSET = timedelta(hours=-12)
MAX_UTC_OFFSET = timedelta(hours=14)
OFFSET_STEP = timedelta(minutes=15)


class ReportRangeError(ConnectorError):
    """A day, hour or UTC offset outside what the report covers."""

    status = 400


def offset_label(utc_offset: timedelta) -> str:
    """`utc_offset` as UTC±HH:MM."""
    minutes = int(utc_offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class ReportDay:
    """One calendar day at a fixed UTC offset; the report's rows are its 24 hours."""

    day: date
    utc_offset: timedelta = timedelta(0)

    @property
    def start(self) -> datetime:
        """The day's first instant, in UTC."""
        return datetime.combine(self.day, time(), UTC) - self.utc_offset

    @property
    def end(self) -> datetime:
        """The next day's first instant, in UTC (the day ends before it)."""
        return self.start + timedelta(days=1)

    def hour_start(self, hour: int) -> datetime:
        """The first instant of `hour` (0–24; 24 is the end of the day), in UTC."""
        return self.start + timedelta(hours=hour)

    def local(self, moment: datetime) -> datetime:
        """`moment` at the day's UTC offset."""
        return moment.astimezone(timezone(self.utc_offset))


def report_days(now: datetime | None = None, utc_offset: timedelta = timedelta(0)) -> list[date]:
    """The days the report covers, oldest first: today at `utc_offset` and the days before it."""
    today = ((now or utcnow()).astimezone(UTC) + utc_offset).date()
    return [today - timedelta(days=back) for back in range(REPORT_DAYS - 1, -1, -1)]


def earliest_reported(now: datetime | None = None) -> datetime:
    """The first instant any day of the report can show, at any UTC offset (pruning keeps it)."""
    offset, starts = MIN_UTC_OFFSET, []
    while offset <= MAX_UTC_OFFSET:
        starts.append(ReportDay(report_days(now, offset)[0], offset).start)
        offset += OFFSET_STEP
    return min(starts)


def report_day(
    day: date, *, utc_offset: timedelta = timedelta(0), now: datetime | None = None
) -> ReportDay:
    """`day` at `utc_offset` if the report covers it, else ReportRangeError naming the days."""
    if not MIN_UTC_OFFSET <= utc_offset <= MAX_UTC_OFFSET or utc_offset % OFFSET_STEP:
        raise ReportRangeError(
            "the UTC offset must be a multiple of 15 minutes from -720 (UTC-12:00) to 840 "
            f"(UTC+14:00), got {utc_offset.total_seconds() / 60:g} minutes"
        )
    days = report_days(now, utc_offset)
    if not days[0] <= day <= days[-1]:
        raise ReportRangeError(
            f"the report covers the last {REPORT_DAYS} days: from {days[0]} to {days[-1]} "
            f"({offset_label(utc_offset)}), not {day}"
        )
    return ReportDay(day, utc_offset)


@dataclass(frozen=True)
class IntegrationColumn:
    """An integration's column of the grid: who it is and its calls that day."""

    id: int
    name: str
    api_user: str
    total: int


@dataclass(frozen=True)
class HourRow:
    """One hour of the grid: the calls of each integration (in column order) and their sum."""

    hour: int
    start: datetime
    counts: list[int]
    total: int
    over_threshold: bool


@dataclass(frozen=True)
class HourlyGrid:
    """A day's calls: 24 hours × every integration, with totals."""

    day: ReportDay
    threshold: int
    integrations: list[IntegrationColumn]
    hours: list[HourRow]
    total: int


def hourly_grid(session: Session, day: ReportDay, threshold: int) -> HourlyGrid:
    """The calls of `day` counted per hour and integration, in one GROUP BY query.

    An hour is over the threshold when its calls, of every integration, are more than
    `threshold`: Autotask counts every call to a database against it, whichever integration
    made it (and those of other products too, which this report cannot see).
    """
    in_day = (ApiCall.at >= day.start) & (ApiCall.at < day.end)
    # The hour is found by comparing with the hours' first instants, as the day's bounds are: the
    # same comparisons on both databases, so no call falls between two hours. (SQLite's
    # strftime('%s') rounds to the millisecond: 10:59:59.9999 would count as 11:00.)
    hour = case(*((ApiCall.at < day.hour_start(h + 1), h) for h in range(HOURS - 1)), else_=23)
    # Grouped outside a subquery: PostgreSQL cannot match a GROUP BY expression whose bound
    # parameters differ from the SELECT's.
    bucketed = select(hour.label("hour"), ApiCall.integration_id).where(in_day).subquery()
    counts: dict[tuple[int, int], int] = {
        (int(h), int(integration)): int(n)
        for h, integration, n in session.execute(
            select(bucketed.c.hour, bucketed.c.integration_id, func.count()).group_by(
                bucketed.c.hour, bucketed.c.integration_id
            )
        )
    }
    integrations = session.execute(
        select(Integration.id, Integration.name, Integration.username).order_by(
            Integration.name, Integration.id
        )
    ).all()
    columns = [
        IntegrationColumn(
            id=id_,
            name=name,
            api_user=username,
            total=sum(n for (_, i), n in counts.items() if i == id_),
        )
        for id_, name, username in integrations
    ]
    hours = []
    for h in range(HOURS):
        row = [counts.get((h, column.id), 0) for column in columns]
        hours.append(
            HourRow(
                hour=h,
                start=day.local(day.hour_start(h)),
                counts=row,
                total=sum(row),
                over_threshold=sum(row) > threshold,
            )
        )
    return HourlyGrid(day, threshold, columns, hours, sum(counts.values()))


def grid_json(grid: HourlyGrid) -> dict[str, Any]:
    """The grid as JSON: each hour's `counts` in the order of `integrations`."""
    day = grid.day
    return {
        "day": day.day.isoformat(),
        "utc_offset_minutes": int(day.utc_offset.total_seconds()) // 60,
        "start": day.local(day.start).isoformat(),
        "end": day.local(day.end).isoformat(),
        "threshold": grid.threshold,
        "integrations": [
            {"id": c.id, "name": c.name, "api_user": c.api_user, "total": c.total}
            for c in grid.integrations
        ],
        "hours": [
            {
                "hour": row.hour,
                "start": row.start.isoformat(),
                "counts": row.counts,
                "total": row.total,
                "over_threshold": row.over_threshold,
            }
            for row in grid.hours
        ],
        "total": grid.total,
    }


@dataclass(frozen=True)
class CallPage:
    """Some calls of one hour, and how many the hour has in all (for paging)."""

    calls: list[CallRow]
    total: int


def hour_calls(
    session: Session,
    day: ReportDay,
    hour: int,
    threshold: int,
    *,
    integration_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> CallPage:
    """The calls of one hour of `day` (of one integration if given), in the order they were made.

    A call is `threshold_exceeded` when it came after the hour's first `threshold` calls, of
    every integration (Autotask refuses those). `limit` None: every call from `offset` on.
    """
    if not 0 <= hour < HOURS:
        raise ReportRangeError(f"the hour must be from 0 to 23, got {hour}")
    in_hour = (ApiCall.at >= day.hour_start(hour)) & (ApiCall.at < day.hour_start(hour + 1))
    # Autotask counts the database's calls whoever made them: rank the calls of every integration.
    ordinal = func.row_number().over(order_by=(ApiCall.at, ApiCall.id))
    ranked = select(ApiCall.id, ordinal.label("ordinal")).where(in_hour).subquery()
    query = calls_select(ranked.c.ordinal).join(ranked, ranked.c.id == ApiCall.id)
    count = select(func.count()).select_from(ApiCall).where(in_hour)
    if integration_id is not None:
        query = query.where(ApiCall.integration_id == integration_id)
        count = count.where(ApiCall.integration_id == integration_id)
    rows = session.execute(query.order_by(ApiCall.at, ApiCall.id).limit(limit).offset(offset))
    calls = [call_row(row, threshold_exceeded=row[4] > threshold) for row in rows]
    return CallPage(calls, int(session.scalar(count) or 0))
