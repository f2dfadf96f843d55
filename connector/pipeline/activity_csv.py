"""The API activity tables as CSV (RFC 4180, UTF-8), safe to open in a spreadsheet.

A text cell a spreadsheet would take for a formula (it starts with =, +, -, @, a tab or a carriage
return: an integration's name, an error text) gets a leading apostrophe, so it is shown and never
run (OWASP "CSV Injection"). Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from connector.pipeline.activity_log import CallRow
from connector.pipeline.activity_report import HourlyGrid

#: What makes a spreadsheet read a cell as a formula (or move to the next cell first).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | bool | datetime | None


def safe_cell(value: Cell) -> str | int | float:
    """A cell's CSV value: text that could be read as a formula is quoted with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def table_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """`header` and `rows` as CSV text, every cell through safe_cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(name) for name in header])
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return out.getvalue()


def grid_csv(grid: HourlyGrid) -> str:
    """The hours × integrations table: an hour a row, its total and whether it is over the
    threshold; a last row of the day's totals."""
    names = [column.name for column in grid.integrations]
    rows: list[list[Cell]] = [
        [f"{row.hour:02d}:00", *row.counts, row.total, row.over_threshold] for row in grid.hours
    ]
    rows.append(["total", *(column.total for column in grid.integrations), grid.total, None])
    return table_csv(["hour", *names, "total", "over_threshold"], rows)


def totals_csv(grid: HourlyGrid) -> str:
    """The day's calls per integration."""
    return table_csv(
        ["integration_id", "integration", "api_user", "calls"],
        [[c.id, c.name, c.api_user, c.total] for c in grid.integrations],
    )


#: The columns of a table of calls, Autotask's report's first.
CALL_COLUMNS = (
    "start",
    "integration",
    "api_user",
    "method",
    "entity",
    "records",
    "execution_ms",
    "http_status",
    "error",
    "integration_id",
    "delivery_id",
    "alert_id",
    "id",
)


def calls_csv(
    calls: Iterable[CallRow], utc_offset: timedelta = timedelta(0), *, with_flag: bool = False
) -> str:
    """Calls, their times at `utc_offset`; `with_flag`: a `threshold_exceeded` column last."""
    header = [*CALL_COLUMNS, "threshold_exceeded"] if with_flag else list(CALL_COLUMNS)
    zone = timezone(utc_offset)
    table: list[list[Cell]] = []
    for call in calls:
        row: list[Cell] = [
            call.at.astimezone(zone),
            call.integration,
            call.api_user,
            call.method,
            call.entity,
            call.records,
            call.execution_ms,
            call.http_status,
            call.error,
            call.integration_id,
            call.delivery_id,
            call.alert_id,
            call.id,
        ]
        table.append([*row, call.threshold_exceeded] if with_flag else row)
    return table_csv(header, table)
