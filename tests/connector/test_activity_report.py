"""API activity by hour, an hour's calls, the integration log and their CSV, on both databases.

Calls are stored as the worker stores them (ApiCall rows) at chosen instants, the hours' edges
included, and counted back through the functions the JSON API and the admin pages call.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.models import (
    Alert,
    AlertEvent,
    ApiCall,
    Delivery,
    Integration,
    TicketLink,
)
from connector.pipeline.activity_csv import calls_csv, grid_csv, safe_cell, totals_csv
from connector.pipeline.activity_log import CallFilter, call_log
from connector.pipeline.activity_report import (
    ReportDay,
    ReportRangeError,
    hour_calls,
    hourly_grid,
    report_day,
    report_days,
)
from connector.services import Services

DAY = date(2026, 11, 22)
REPORT = ReportDay(DAY)
MICRO = timedelta(microseconds=1)


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def integrations(services: Services) -> tuple[int, int]:
    """The configured integration ("default") and a second one ("second", sorted after it)."""
    with services.transaction() as session:
        first = session.scalars(select(Integration.id)).one()
        second = Integration(
            name="second",
            zone_lookup_url="https://webservices.autotask.net/atservicesrest/",
            username="second-api@example.invalid",
            secret_encrypted="not-used",
            integration_code_encrypted="not-used",
        )
        session.add(second)
        session.flush()
        return int(first), int(second.id)


def add_call(
    session: Session,
    integration_id: int,
    when: datetime,
    *,
    status: int | None = 200,
    delivery_id: int | None = None,
    entity: str = "Tickets",
    error: str | None = None,
) -> int:
    call = ApiCall(
        integration_id=integration_id,
        delivery_id=delivery_id,
        at=when,
        method="POST",
        entity=entity,
        http_status=status,
        records=1,
        execution_ms=12.5,
        api_user="alerts-api@sandbox.test",
        error=error,
    )
    session.add(call)
    session.flush()
    return int(call.id)


def add_delivery(
    session: Session, integration_id: int, fingerprint: str, ticket_id: int | None
) -> tuple[int, int]:
    """An alert with one event and delivery (and a ticket if given): (alert id, delivery id)."""
    alert = Alert(
        integration_id=integration_id,
        fingerprint=fingerprint,
        source="generic",
        status="active",
        severity="error",
        title=fingerprint,
    )
    session.add(alert)
    session.flush()
    event = AlertEvent(alert_id=alert.id, status="active", severity="error", dedupe_key="k")
    session.add(event)
    session.flush()
    delivery = Delivery(
        alert_id=alert.id, event_id=event.id, integration_id=integration_id, dedupe_key="k"
    )
    session.add(delivery)
    if ticket_id is not None:
        session.add(
            TicketLink(alert_id=alert.id, state="open", marker=fingerprint, ticket_id=ticket_id)
        )
    session.flush()
    return int(alert.id), int(delivery.id)


# -- the grid --------------------------------------------------------------------------------------


def test_calls_are_counted_per_hour_and_integration_with_totals(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        # The day's edges and an hour's edges: each instant belongs to exactly one hour.
        add_call(session, first, at(0))
        add_call(session, first, at(10, 59, 59, 999_999))
        add_call(session, first, at(10, 30))
        add_call(session, second, at(11))
        add_call(session, second, at(11, 0, 0, 1))
        add_call(session, second, at(23, 59, 59, 999_999))
        # Outside the day: the last instant before it and its end.
        add_call(session, first, at(0) - MICRO)
        add_call(session, second, at(0) + timedelta(days=1))

    with services.transaction() as session:
        grid = hourly_grid(session, REPORT, threshold=10_000)

    assert [(c.id, c.name, c.total) for c in grid.integrations] == [
        (first, "default", 2 + 1),
        (second, "second", 3),
    ]
    assert grid.integrations[1].api_user == "second-api@example.invalid"
    counts = {row.hour: row.counts for row in grid.hours if row.total}
    assert counts == {0: [1, 0], 10: [2, 0], 11: [0, 2], 23: [0, 1]}
    assert [row.hour for row in grid.hours] == list(range(24))
    assert all(row.total == sum(row.counts) for row in grid.hours)
    assert grid.total == 6
    assert grid.hours[10].start == at(10)
    assert not any(row.over_threshold for row in grid.hours)


def test_an_hour_over_the_threshold_is_marked_counting_every_integration(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        for minute in (1, 2):
            add_call(session, first, at(9, minute))
            add_call(session, second, at(9, minute))  # 4 in hour 9, neither integration over 3
        for minute in (1, 2, 3):
            add_call(session, first, at(14, minute))  # exactly 3: not over

    with services.transaction() as session:
        grid = hourly_grid(session, REPORT, threshold=3)

    assert [row.hour for row in grid.hours if row.over_threshold] == [9]
    assert grid.hours[14].total == 3


def test_a_utc_offset_makes_the_days_and_hours_local(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, _ = integrations
    with services.transaction() as session:
        # at UTC+02:00 / at UTC+05:30:
        add_call(session, first, at(22, 30, day=DAY - timedelta(days=1)))  # 00:30 / 04:00
        add_call(session, first, at(18, 30, day=DAY - timedelta(days=1)))  # day before / 00:00
        add_call(session, first, at(5, 45))  # 07:45 / 11:15
        add_call(session, first, at(18, 29, 59, 999_999))  # 20:29 / 23:59:59.999999
        add_call(session, first, at(21, 59, 59, 999_999))  # 23:59:59.999999 / day after
        add_call(session, first, at(22))  # day after / day after

    with services.transaction() as session:
        plus_two = hourly_grid(session, ReportDay(DAY, timedelta(hours=2)), threshold=10)
        india = hourly_grid(session, ReportDay(DAY, timedelta(hours=5, minutes=30)), threshold=10)

    assert {row.hour: row.total for row in plus_two.hours if row.total} == {
        0: 1,
        7: 1,
        20: 1,
        23: 1,
    }
    assert plus_two.hours[0].start.isoformat() == "2026-11-22T00:00:00+02:00"
    assert {row.hour: row.total for row in india.hours if row.total} == {0: 1, 4: 1, 11: 1, 23: 1}
    assert india.hours[23].start.isoformat() == "2026-11-22T23:00:00+05:30"


def test_a_day_without_calls_lists_every_integration_with_zeros(
    services: Services, integrations: tuple[int, int]
) -> None:
    with services.transaction() as session:
        grid = hourly_grid(session, REPORT, threshold=1)

    assert [c.total for c in grid.integrations] == [0, 0]
    assert all(row.counts == [0, 0] and not row.over_threshold for row in grid.hours)


# -- the calls of an hour --------------------------------------------------------------------------


def test_the_calls_of_an_hour_in_order_each_flagged_past_the_threshold(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        ids = [
            add_call(session, first, at(9, 1)),
            add_call(session, second, at(9, 2)),
            add_call(session, first, at(9, 3), status=429, error="Autotask: thread threshold"),
            add_call(session, second, at(9, 4)),
        ]
        add_call(session, first, at(10))  # the next hour: not listed, not counted

    with services.transaction() as session:
        every = hour_calls(session, REPORT, 9, threshold=2)
        of_second = hour_calls(session, REPORT, 9, threshold=2, integration_id=second)
        page = hour_calls(session, REPORT, 9, threshold=2, limit=2, offset=1)

    assert [c.id for c in every.calls] == ids
    assert [c.threshold_exceeded for c in every.calls] == [False, False, True, True]
    assert every.total == 4
    call = every.calls[2]
    assert (call.integration, call.api_user, call.method, call.entity) == (
        "default",
        "alerts-api@sandbox.test",
        "POST",
        "Tickets",
    )
    assert (call.records, call.execution_ms, call.http_status) == (1, 12.5, 429)
    # The ranking counts the other integration's calls too.
    assert [(c.id, c.threshold_exceeded) for c in of_second.calls] == [
        (ids[1], False),
        (ids[3], True),
    ]
    assert of_second.total == 2
    assert [c.id for c in page.calls] == ids[1:3]
    assert page.total == 4


def test_an_hour_outside_the_day_is_refused(services: Services) -> None:
    with services.transaction() as session, pytest.raises(ReportRangeError, match="0 to 23"):
        hour_calls(session, REPORT, 24, threshold=1)


# -- the days covered ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "offset_minutes", "covered"),
    [
        (date(2026, 11, 22), 0, True),
        (date(2026, 10, 24), 0, True),  # 29 days before today: the 30th day
        (date(2026, 10, 23), 0, False),
        (date(2026, 11, 23), 0, False),  # tomorrow
        (date(2026, 11, 23), 60, True),  # already today at UTC+01:00
        (date(2026, 10, 24), 60, False),
    ],
)
def test_the_report_covers_today_and_the_29_days_before(
    day: date, offset_minutes: int, covered: bool
) -> None:
    offset = timedelta(minutes=offset_minutes)
    if covered:
        assert report_day(day, utc_offset=offset, now=NOW) == ReportDay(day, offset)
        return
    with pytest.raises(ReportRangeError, match="the report covers the last 30 days") as raised:
        report_day(day, utc_offset=offset, now=NOW)
    assert str(day) in str(raised.value)
    assert raised.value.status == 400


@pytest.mark.parametrize("minutes", [-721, 841, 7, 20])
def test_an_offset_no_place_uses_is_refused(minutes: int) -> None:
    with pytest.raises(ReportRangeError, match="multiple of 15"):
        report_day(NOW.date(), utc_offset=timedelta(minutes=minutes), now=NOW)


def test_report_days_lists_thirty_days_ending_today() -> None:
    days = report_days(NOW)
    assert len(days) == 30
    assert (days[0], days[-1]) == (date(2026, 10, 24), date(2026, 11, 22))


# -- the integration log ---------------------------------------------------------------------------


def test_the_log_is_newest_first_and_each_filter_narrows_it(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        alert_a, delivery_a = add_delivery(session, first, "disk-srv01", ticket_id=7001)
        alert_b, delivery_b = add_delivery(session, first, "cpu-srv02", ticket_id=7002)
        ok = add_call(session, first, at(8), delivery_id=delivery_a)
        refused = add_call(session, first, at(9), status=500, delivery_id=delivery_a)
        timeout = add_call(session, first, at(10), status=None, delivery_id=delivery_b)
        other = add_call(session, second, at(11), status=404)
        same_time = add_call(session, second, at(11), status=201)

    def log(**filters: object) -> list[int]:
        with services.transaction() as session:
            return [row.id for row in call_log(session, CallFilter(**filters))]  # type: ignore[arg-type]

    assert log() == [same_time, other, timeout, refused, ok]
    assert log(integration_id=second) == [same_time, other]
    assert log(alert_id=alert_a) == [refused, ok]
    assert log(ticket_id=7002) == [timeout]
    assert log(ticket_id=9999) == []
    assert log(status=500) == [refused]
    assert log(status="2xx") == [same_time, ok]
    assert log(status="4xx") == [other]
    assert log(status="error") == [timeout]
    assert log(since=at(9), until=at(11)) == [timeout, refused]
    assert log(alert_id=alert_a, status="2xx") == [ok]
    with services.transaction() as session:
        rows = call_log(session, CallFilter(), limit=2, offset=1)
        assert [row.id for row in rows] == [other, timeout]
        assert rows[1].alert_id == alert_b
        assert rows[1].delivery_id == delivery_b
        assert rows[0].alert_id is None
        assert rows[0].threshold_exceeded is None


# -- CSV -------------------------------------------------------------------------------------------


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Tickets", "Tickets"),
        ("a=b", "a=b"),
        (42, 42),
        (-1.5, -1.5),
        (None, ""),
        (True, "yes"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_quoted(value: object, cell: object) -> None:
    assert safe_cell(value) == cell  # type: ignore[arg-type]


def test_the_csv_tables_carry_the_counts_and_quote_formulas(
    services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        session.get(Integration, second).name = "=cmd|' /C calc'!A0"  # type: ignore[union-attr]
        add_call(session, first, at(3, 15))
        add_call(session, second, at(3, 20), status=None, error="-Autotask unreachable")
        add_call(session, second, at(3, 30))

    with services.transaction() as session:
        grid = hourly_grid(session, REPORT, threshold=2)
        page = hour_calls(session, REPORT, 3, threshold=2)

    hours = read_csv(grid_csv(grid))
    assert hours[0] == ["hour", "'=cmd|' /C calc'!A0", "default", "total", "over_threshold"]
    assert hours[1] == ["00:00", "0", "0", "0", "no"]
    assert hours[4] == ["03:00", "2", "1", "3", "yes"]
    assert hours[-1] == ["total", "2", "1", "3", ""]
    assert len(hours) == 1 + 24 + 1

    totals = read_csv(totals_csv(grid))
    assert totals == [
        ["integration_id", "integration", "api_user", "calls"],
        [str(second), "'=cmd|' /C calc'!A0", "second-api@example.invalid", "2"],
        [str(first), "default", "alerts-api@sandbox.test", "1"],
    ]

    calls = read_csv(calls_csv(page.calls, timedelta(hours=1), with_flag=True))
    assert calls[0][:7] == [
        "start",
        "integration",
        "api_user",
        "method",
        "entity",
        "records",
        "execution_ms",
    ]
    assert calls[0][-1] == "threshold_exceeded"
    assert [row[0] for row in calls[1:]] == [
        "2026-11-22T04:15:00+01:00",
        "2026-11-22T04:20:00+01:00",
        "2026-11-22T04:30:00+01:00",
    ]
    assert calls[2][calls[0].index("error")] == "'-Autotask unreachable"
    assert calls[2][calls[0].index("http_status")] == ""
    assert [row[-1] for row in calls[1:]] == ["no", "no", "yes"]
    assert "threshold_exceeded" not in read_csv(calls_csv(page.calls))[0]
