"""The API activity pages: a day's hours × integrations, an hour's calls, their CSV downloads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from connector.persistence.models import Integration
from tests.connector.test_activity_report import add_call
from tests.web.admin.conftest import sign_in


def _day_with_calls(app: Flask, hour_counts: dict[int, int]) -> tuple[str, int]:
    """An integration with `hour_counts[h]` calls in hour h of today (UTC); (day, its id)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with app.extensions["connector"].transaction() as session:
        integration = Integration(
            name='=HYPERLINK("https://evil.example") "PSA"',
            zone_lookup_url="https://webservices.autotask.net/atservicesrest/",
            username="alerts-api@contoso.example",
            secret_encrypted="-",
            integration_code_encrypted="-",
        )
        session.add(integration)
        session.flush()
        for hour, count in hour_counts.items():
            for n in range(count):
                add_call(session, integration.id, today + timedelta(hours=hour, seconds=n))
        return today.date().isoformat(), int(integration.id)


def test_the_day_shows_each_hour_marks_one_over_the_threshold_and_opens_its_calls(
    admin_app: Flask, browser: FlaskClient
) -> None:
    admin_app.extensions["connector"].settings["API_HOURLY_THRESHOLD"] = 3
    day, integration_id = _day_with_calls(admin_app, {2: 1, 9: 5})
    sign_in(browser)
    page = browser.get(f"/admin/api-activity?day={day}").get_data(as_text=True)
    assert "API activity by hour" in page
    assert "=HYPERLINK(&#34;https://evil.example&#34;) &#34;PSA&#34;" in page  # escaped
    assert page.count('class="over"') == 1  # 09:00, 5 calls over a threshold of 3
    assert f"hour=9&amp;integration_id={integration_id}" in page

    calls = browser.get(
        f"/admin/api-activity/calls?day={day}&hour=9&integration_id={integration_id}"
    ).get_data(as_text=True)
    assert "5 calls" in calls
    assert calls.count("<td>yes</td>") == 2  # the 4th and 5th went past the threshold


def test_each_table_downloads_as_csv_with_formulas_quoted(
    admin_app: Flask, browser: FlaskClient
) -> None:
    day, integration_id = _day_with_calls(admin_app, {9: 2})
    sign_in(browser)
    totals = browser.get(f"/admin/api-activity.csv?day={day}&table=totals")
    assert totals.status_code == 200
    assert totals.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(totals.get_data(as_text=True))))
    by_name = {row[1]: row for row in rows[1:]}
    # A spreadsheet would run a cell that starts with "=": it is quoted with an apostrophe.
    assert '\'=HYPERLINK("https://evil.example") "PSA"' in by_name, rows
    assert "2" in by_name['\'=HYPERLINK("https://evil.example") "PSA"']

    hours = list(
        csv.reader(
            io.StringIO(browser.get(f"/admin/api-activity.csv?day={day}").get_data(as_text=True))
        )
    )
    assert len(hours) >= 25  # a header, 24 hours (and the day's totals)

    calls = browser.get(f"/admin/api-activity/calls.csv?day={day}&hour=9")
    lines = list(csv.reader(io.StringIO(calls.get_data(as_text=True))))
    assert len(lines) == 1 + 2


def test_a_day_older_than_the_report_is_refused_in_words(browser: FlaskClient) -> None:
    sign_in(browser)
    answer = browser.get("/admin/api-activity?day=2020-01-01")
    assert answer.status_code == 400
    assert "30 days" in answer.get_data(as_text=True)


def test_the_pages_need_a_signed_in_admin(browser: FlaskClient) -> None:
    for path in ("/admin/api-activity", "/admin/api-activity.csv", "/admin/api-activity/calls"):
        answer = browser.get(path)
        assert answer.status_code == 302
        assert "/admin/login" in answer.headers["Location"]
