"""Retention: what the prune job deletes and what it keeps (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connector.persistence.models import AlertEvent, ApiCall, Delivery, SchedulerRun
from connector.pipeline.activity_report import (
    MAX_UTC_OFFSET,
    MIN_UTC_OFFSET,
    ReportDay,
    grid_json,
    hourly_grid,
    report_days,
)
from connector.pipeline.retention import prune
from tests.conftest import default_integration_id

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    """NOW minus `days`."""
    return NOW - timedelta(days=days)


@dataclass
class Rows:
    """Rows made for one test, by label: their ids and tables."""

    app: Flask
    integration_id: int
    ids: dict[str, tuple[type[Any], int]]
    alert_id: int = 0

    def add(self, label: str, row: Any) -> Any:
        """Store `row` now, under `label`."""
        with self.app.extensions["connector"].transaction() as session:
            session.add(row)
            session.flush()
            self.ids[label] = (type(row), int(row.id))
        return row

    def event(self, label: str, received: datetime) -> int:
        """An event of the test's alert received at `received`."""
        row = AlertEvent(
            alert_id=self.alert_id,
            status="active",
            severity="critical",
            dedupe_key=f"active:{label}",
            received_at=received,
            disposition="queued",
            payload={},
        )
        return int(self.add(label, row).id)

    def delivery(self, label: str, state: str, finished: datetime | None, **extra: Any) -> int:
        """A delivery (with its own event, received when it was made) in `state`."""
        made = finished or NOW
        event_id = self.event(f"{label}.event", made)
        values: dict[str, Any] = {
            "created_at": made,
            "deadline_at": made,
            "next_attempt_at": made,
            "finished_at": finished,
        }
        row = Delivery(
            alert_id=self.alert_id,
            event_id=event_id,
            integration_id=self.integration_id,
            dedupe_key=f"d:{label}",
            state=state,
            **(values | extra),
        )
        return int(self.add(label, row).id)

    def call(self, label: str, at: datetime, delivery_id: int | None = None) -> int:
        """An API call made at `at`."""
        row = ApiCall(
            integration_id=self.integration_id,
            delivery_id=delivery_id,
            at=at,
            method="POST",
            entity="Tickets",
            http_status=200,
            execution_ms=12.0,
        )
        return int(self.add(label, row).id)

    def left(self) -> set[str]:
        """The labels whose rows are still stored."""
        kept = set()
        with self.app.extensions["connector"].transaction() as session:
            for label, (model, row_id) in self.ids.items():
                if session.get(model, row_id) is not None:
                    kept.add(label)
        return kept


@pytest.fixture
def rows(connector_app: Flask) -> Rows:
    """An empty row book on the test database, with one alert to hang events on."""
    from connector.persistence.models import Alert

    integration_id = default_integration_id(connector_app)
    book = Rows(connector_app, integration_id, {})
    alert = Alert(
        integration_id=integration_id,
        fingerprint="disk-full",
        source="generic",
        status="active",
        severity="critical",
        title="Disk full",
    )
    book.alert_id = int(book.add("alert", alert).id)
    return book


def services_of(app: Flask) -> Any:
    """The app's Services."""
    return app.extensions["connector"]


def test_old_rows_go_and_everything_still_needed_stays(rows: Rows) -> None:
    """Each kind of row against the default retention (30 days of calls, 90 of the rest)."""
    rows.call("call 40 days old", days_ago(40))
    rows.call("call 29 days old", days_ago(29))
    rows.delivery("done 100 days ago", "done", days_ago(100))
    rows.delivery("done 10 days ago", "done", days_ago(10))
    rows.delivery("dead 100 days ago", "dead", days_ago(100))
    rows.delivery("pending since 100 days", "pending", None, created_at=days_ago(100))
    rows.delivery(
        "discarded 5 days ago, dead since 100",
        "discarded",
        days_ago(100),
        discarded_at=days_ago(5),
    )
    rows.delivery("discarded 95 days ago", "discarded", days_ago(100), discarded_at=days_ago(95))
    named = rows.delivery("done 100 days ago, named by a kept call", "done", days_ago(100))
    rows.call("call 10 days old naming an old delivery", days_ago(10), named)
    rows.event("duplicate event 100 days old", days_ago(100))
    rows.event("duplicate event 10 days old", days_ago(10))

    pruned = prune(services_of(rows.app), NOW)

    gone = {
        "call 40 days old",
        "done 100 days ago",
        "done 100 days ago.event",
        "discarded 95 days ago",
        "discarded 95 days ago.event",
        "duplicate event 100 days old",
    }
    assert rows.left() == set(rows.ids) - gone
    assert pruned["api_call"] == 1
    assert pruned["delivery"] == 2
    assert pruned["alert_event"] == 3


def test_a_short_retention_never_prunes_what_the_activity_report_shows(rows: Rows) -> None:
    """API activity kept 1 day: calls the 30-day report can show stay, older ones go."""
    services = services_of(rows.app)
    services.settings["API_ACTIVITY_RETENTION_DAYS"] = 1.0
    for days in (0.1, 2, 10, 28.9, 29.5, 31, 45):
        rows.call(f"call {days} days old", days_ago(days))

    def report() -> list[Any]:
        with services.transaction() as session:
            return [
                grid_json(hourly_grid(session, ReportDay(day, offset), 10_000))
                for offset in (MIN_UTC_OFFSET, timedelta(0), MAX_UTC_OFFSET)
                for day in report_days(NOW, offset)
            ]

    before = report()
    prune(services, NOW)
    assert report() == before
    assert rows.left() == set(rows.ids) - {"call 31 days old", "call 45 days old"}


def test_pruning_goes_batch_by_batch_and_stops_when_asked(rows: Rows) -> None:
    """Many rows in transactions of PRUNE_BATCH; a stopping process leaves the rest for later."""
    services = services_of(rows.app)
    services.settings["PRUNE_BATCH"] = 2
    for index in range(5):
        rows.event(f"old event {index}", days_ago(100 + index))

    assert prune(services, NOW, stopping=lambda: True)["alert_event"] == 0
    assert len(rows.left()) == 6

    assert prune(services, NOW)["alert_event"] == 5
    assert rows.left() == {"alert"}


def test_scheduler_runs_are_kept_a_week(rows: Rows) -> None:
    """Old runs of periodic jobs go; this week's stay."""
    for days in (8, 6):
        rows.ids[f"run {days} days ago"] = (SchedulerRun, 0)
        with services_of(rows.app).transaction() as session:
            session.add(
                SchedulerRun(
                    job="prune",
                    period_start=days_ago(days),
                    holder="test",
                    started_at=days_ago(days),
                )
            )
    del rows.ids["run 8 days ago"], rows.ids["run 6 days ago"]

    assert prune(services_of(rows.app), NOW)["scheduler_run"] == 1
    with services_of(rows.app).transaction() as session:
        left = list(session.scalars(select(SchedulerRun.period_start)))
    assert left == [days_ago(6)]
