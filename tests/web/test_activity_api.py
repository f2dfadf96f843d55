"""/api/v1/activity/hourly, /api/v1/activity/calls and /api/v1/api-calls: JSON and CSV answers,
the threshold from the settings, the 30 days covered, every bad parameter a 400, no secret."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser
from connector.persistence.models import ApiCall, Integration
from connector.services import Services
from tests.conftest import API_TOKEN, error_of
from tests.connector.test_activity_report import add_call, add_delivery
from tests.web.test_test_delivery import change_integration, post_test_delivery

#: Refusals decided before any query: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
THRESHOLD = 3
#: Two days ago: inside the 30 days, whenever the test runs.
DAY = datetime.now(UTC).date() - timedelta(days=2)


@pytest.fixture
def connector_settings(connector_settings: dict[str, object]) -> dict[str, object]:
    """The test settings with Autotask's hourly threshold at 3 calls."""
    return {**connector_settings, "API_HOURLY_THRESHOLD": THRESHOLD}


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def integrations(services: Services) -> tuple[int, int]:
    """The configured integration ("default") and a second one ("second")."""
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


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def get(client: FlaskClient, path: str, query: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.get(
        f"/api/v1/{path}",
        query_string=query or {},
        headers={"Authorization": f"Bearer {API_TOKEN}", **headers},
    )


def ok_json(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return dict(response.get_json())


def ok_csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def busy_day(services: Services, integrations: tuple[int, int]) -> list[int]:
    """Hour 9: four calls (over the threshold of 3), two per integration; hour 14: one."""
    first, second = integrations
    with services.transaction() as session:
        return [
            add_call(session, first, at(9, 1)),
            add_call(session, second, at(9, 2)),
            add_call(session, first, at(9, 3), status=429),
            add_call(session, second, at(9, 4), entity='=HYPERLINK("x")'),
            add_call(session, first, at(14, 30)),
            add_call(session, first, at(14, 30, day=DAY - timedelta(days=1))),  # another day
        ]


# -- the hourly grid -------------------------------------------------------------------------------


def test_the_hourly_grid_counts_each_integration_and_marks_the_hour_over_the_threshold(
    client: FlaskClient, integrations: tuple[int, int], busy_day: list[int]
) -> None:
    body = ok_json(get(client, "activity/hourly", {"day": DAY.isoformat()}))

    first, second = integrations
    assert body["day"] == DAY.isoformat()
    assert body["threshold"] == THRESHOLD
    assert body["utc_offset_minutes"] == 0
    assert body["start"] == f"{DAY.isoformat()}T00:00:00+00:00"
    assert [(i["id"], i["name"], i["total"]) for i in body["integrations"]] == [
        (first, "default", 3),
        (second, "second", 2),
    ]
    assert body["integrations"][1]["api_user"] == "second-api@example.invalid"
    assert len(body["hours"]) == 24
    assert body["hours"][9] == {
        "hour": 9,
        "start": f"{DAY.isoformat()}T09:00:00+00:00",
        "counts": [2, 2],
        "total": 4,
        "over_threshold": True,
    }
    assert body["hours"][14]["counts"] == [1, 0]
    assert [h["hour"] for h in body["hours"] if h["over_threshold"]] == [9]
    assert body["total"] == 5
    today = datetime.now(UTC).date()
    assert body["last_day"] in (today.isoformat(), (today + timedelta(days=1)).isoformat())
    assert date.fromisoformat(body["last_day"]) - date.fromisoformat(body["first_day"]) == (
        timedelta(days=29)
    )


def test_a_utc_offset_moves_the_calls_into_the_local_hours(
    client: FlaskClient, busy_day: list[int]
) -> None:
    body = ok_json(
        get(client, "activity/hourly", {"day": DAY.isoformat(), "utc_offset_minutes": "-330"})
    )

    assert body["start"] == f"{DAY.isoformat()}T00:00:00-05:30"
    # 09:0x UTC is 03:3x at UTC-05:30; 14:30 UTC is 09:00.
    assert {h["hour"]: h["total"] for h in body["hours"] if h["total"]} == {3: 4, 9: 1}


@sqlite_only
def test_without_a_day_the_grid_is_of_today(
    client: FlaskClient, services: Services, integrations: tuple[int, int]
) -> None:
    with services.transaction() as session:
        add_call(session, integrations[0], datetime.now(UTC))

    body = ok_json(get(client, "activity/hourly"))

    assert body["day"] == body["last_day"]
    assert body["total"] == 1


def test_the_hourly_grid_as_csv_by_format_or_by_accept(
    client: FlaskClient, busy_day: list[int]
) -> None:
    by_format = get(client, "activity/hourly", {"day": DAY.isoformat(), "format": "csv"})
    by_accept = get(client, "activity/hourly", {"day": DAY.isoformat()}, Accept="text/csv")

    rows = ok_csv(by_format)
    assert by_accept.get_data() == by_format.get_data()
    assert ok_csv(by_accept) == rows
    assert by_format.headers["Content-Disposition"] == (
        f'attachment; filename="api-activity-{DAY.isoformat()}-hours.csv"'
    )
    assert "Accept" in by_format.headers["Vary"]
    assert rows[0] == ["hour", "default", "second", "total", "over_threshold"]
    assert rows[10] == ["09:00", "2", "2", "4", "yes"]
    assert rows[15] == ["14:00", "1", "0", "1", "no"]
    assert rows[-1] == ["total", "3", "2", "5", ""]

    query = {"day": DAY.isoformat(), "format": "csv", "table": "totals"}
    totals = ok_csv(get(client, "activity/hourly", query))
    assert [row[1:] for row in totals] == [
        ["integration", "api_user", "calls"],
        ["default", "alerts-api@sandbox.test", "3"],
        ["second", "second-api@example.invalid", "2"],
    ]
    # format=json wins over Accept.
    query = {"day": DAY.isoformat(), "format": "json"}
    ok_json(get(client, "activity/hourly", query, Accept="text/csv"))


# -- the calls of an hour --------------------------------------------------------------------------


def test_the_calls_of_an_hour_with_the_threshold_flag_paged(
    client: FlaskClient, integrations: tuple[int, int], busy_day: list[int]
) -> None:
    query = {"day": DAY.isoformat(), "hour": "9"}
    body = ok_json(get(client, "activity/calls", query))

    assert [c["id"] for c in body["calls"]] == busy_day[:4]
    assert [c["threshold_exceeded"] for c in body["calls"]] == [False, False, False, True]
    assert (body["total"], body["limit"], body["offset"]) == (4, 100, 0)
    assert (body["hour"], body["threshold"]) == (9, THRESHOLD)
    assert body["start"] == f"{DAY.isoformat()}T09:00:00+00:00"
    assert body["end"] == f"{DAY.isoformat()}T10:00:00+00:00"
    call = body["calls"][2]
    assert call["at"] == f"{DAY.isoformat()}T09:03:00+00:00"
    assert {k: call[k] for k in ("integration", "api_user", "method", "entity", "records")} == {
        "integration": "default",
        "api_user": "alerts-api@sandbox.test",
        "method": "POST",
        "entity": "Tickets",
        "records": 1,
    }
    assert (call["http_status"], call["execution_ms"]) == (429, 12.5)

    second = ok_json(get(client, "activity/calls", {**query, "integration_id": integrations[1]}))
    assert [(c["id"], c["threshold_exceeded"]) for c in second["calls"]] == [
        (busy_day[1], False),
        (busy_day[3], True),
    ]
    assert second["total"] == 2

    page = ok_json(get(client, "activity/calls", {**query, "limit": "2", "offset": "1"}))
    assert [c["id"] for c in page["calls"]] == busy_day[1:3]
    assert page["total"] == 4


def test_the_calls_of_an_hour_as_csv_are_all_of_them_formulas_quoted(
    client: FlaskClient, busy_day: list[int]
) -> None:
    query = {"day": DAY.isoformat(), "hour": "9"}
    response = get(client, "activity/calls", query, Accept="text/csv")
    rows = ok_csv(response)

    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="api-activity-{DAY.isoformat()}-09h.csv"'
    )
    header = rows[0]
    assert header[:7] == [
        "start",
        "integration",
        "api_user",
        "method",
        "entity",
        "records",
        "execution_ms",
    ]
    assert [row[header.index("id")] for row in rows[1:]] == [str(i) for i in busy_day[:4]]
    assert [row[header.index("threshold_exceeded")] for row in rows[1:]] == [
        "no",
        "no",
        "no",
        "yes",
    ]
    assert rows[4][header.index("entity")] == '\'=HYPERLINK("x")'


# -- the integration log ---------------------------------------------------------------------------


def test_the_integration_log_filters_by_integration_alert_ticket_status_and_time(
    client: FlaskClient, services: Services, integrations: tuple[int, int]
) -> None:
    first, second = integrations
    with services.transaction() as session:
        alert, delivery = add_delivery(session, first, "disk-srv01", ticket_id=7001)
        ok = add_call(session, first, at(8), delivery_id=delivery)
        refused = add_call(session, first, at(9), status=500, delivery_id=delivery)
        lost = add_call(session, first, at(10), status=None, error="Autotask: read timed out")
        other = add_call(session, second, at(11), status=404)

    def ids(**query: Any) -> list[int]:
        return [c["id"] for c in ok_json(get(client, "api-calls", query))["api_calls"]]

    assert ids() == [other, lost, refused, ok]
    assert ids(integration_id=second) == [other]
    assert ids(alert_id=alert) == [refused, ok]
    assert ids(ticket_id=7001) == [refused, ok]
    assert ids(ticket_id=7002) == []
    assert ids(status="500") == [refused]
    assert ids(status="4xx") == [other]
    assert ids(status="error") == [lost]
    assert ids(since=f"{DAY.isoformat()}T09:00:00Z", until=f"{DAY.isoformat()}T11:00:00Z") == [
        lost,
        refused,
    ]
    # An offset of its own: 10:30 at UTC+01:00 is 09:30 UTC.
    assert ids(since=f"{DAY.isoformat()}T10:30:00+01:00") == [other, lost]
    assert ids(until=DAY.isoformat()) == []
    assert ids(limit="1", offset="1") == [lost]

    body = ok_json(get(client, "api-calls", {"status": "error"}))
    assert body["api_calls"][0]["error"] == "Autotask: read timed out"
    assert body["api_calls"][0]["http_status"] is None
    assert "threshold_exceeded" not in body["api_calls"][0]
    assert (body["limit"], body["offset"]) == (100, 0)
    with_alert = ok_json(get(client, "api-calls", {"alert_id": alert}))["api_calls"][0]
    assert (with_alert["alert_id"], with_alert["delivery_id"]) == (alert, delivery)

    rows = ok_csv(get(client, "api-calls", {"format": "csv", "integration_id": first}))
    assert [row[rows[0].index("id")] for row in rows[1:]] == [str(lost), str(refused), str(ok)]


# -- refusals --------------------------------------------------------------------------------------

TODAY = datetime.now(UTC).date()


@sqlite_only
@pytest.mark.parametrize(
    ("path", "query", "parameter", "words"),
    [
        ("activity/hourly", {"day": (TODAY - timedelta(days=31)).isoformat()}, "day",
         "the report covers the last 30 days"),
        ("activity/hourly", {"day": (TODAY + timedelta(days=2)).isoformat()}, "day",
         "the report covers the last 30 days"),
        ("activity/calls", {"day": "2020-01-01", "hour": "1"}, "day", "the report covers"),
        ("activity/hourly", {"day": "2026-13-01"}, "day", "YYYY-MM-DD"),
        ("activity/hourly", {"day": "22.11.2026"}, "day", "YYYY-MM-DD"),
        ("activity/hourly", {"day": "２０２６-11-22"}, "day", "YYYY-MM-DD"),
        ("activity/hourly", {"utc_offset_minutes": "20"}, "utc_offset_minutes", "multiple of 15"),
        ("activity/hourly", {"utc_offset_minutes": "900"}, "utc_offset_minutes", "-720 to 840"),
        ("activity/hourly", {"utc_offset_minutes": "1e3"}, "utc_offset_minutes", "minutes"),
        ("activity/hourly", {"format": "xml"}, "format", "json, csv"),
        ("activity/hourly", {"table": "calls"}, "table", "hours, totals"),
        ("activity/hourly", {"hour": "1"}, "hour", "unknown query parameter"),
        ("activity/calls", {}, "hour", "is required"),
        ("activity/calls", {"hour": "24"}, "hour", "from 0 to 23"),
        ("activity/calls", {"hour": "-1"}, "hour", "from 0 to 23"),
        ("activity/calls", {"hour": "1", "integration_id": "x"}, "integration_id", "whole number"),
        ("activity/calls", {"hour": "1", "limit": "0"}, "limit", "from 1 to 1000"),
        ("api-calls", {"status": "6xx"}, "status", "2xx, 3xx, 4xx, 5xx"),
        ("api-calls", {"status": "600"}, "status", "from 100 to 599"),
        ("api-calls", {"alert_id": "-1"}, "alert_id", "whole number"),
        ("api-calls", {"ticket_id": ""}, "ticket_id", "must not be empty"),
        ("api-calls", {"since": "yesterday"}, "since", "ISO 8601"),
        ("api-calls", {"since": "2026-11-22T10:00:00 01:00"}, "since", "%2B"),
        ("api-calls", {"until": "9999-12-31T23:59:59-14:00"}, "until", "ISO 8601"),
        ("api-calls", {"since": "2026-11-22T10:00:00Z", "until": "2026-11-22T10:00:00Z"},
         "until", "later than since"),
        ("api-calls", {"day": "2026-11-22"}, "day", "unknown query parameter"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_a_bad_parameter_is_a_400_naming_it(
    client: FlaskClient, path: str, query: dict[str, str], parameter: str, words: str
) -> None:
    error = error_of(get(client, path, query), 400)

    assert [p["parameter"] for p in error["details"]["parameters"]] == [parameter]
    assert words in error["message"]
    assert error["message"].startswith(parameter) or "unknown" in error["message"]


@sqlite_only
@pytest.mark.parametrize("path", ["activity/hourly", "activity/calls?hour=1", "api-calls"])
def test_the_activity_needs_an_api_token(client: FlaskClient, path: str) -> None:
    error_of(client.get(f"/api/v1/{path}"), 401)
    error_of(client.get(f"/api/v1/{path}", headers={"Authorization": "Bearer nope"}), 401)


# -- secrets ---------------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_no_secret_appears_in_any_answer_json_or_csv(
    client: FlaskClient, connector_app: Flask, api_user: ApiUser
) -> None:
    # Calls that succeed, that Autotask refuses, and that meet other credentials, recorded as
    # the test delivery records them.
    assert post_test_delivery(client).status_code == 200
    assert post_test_delivery(client, {"company_id": 99999999}).status_code == 502
    wrong_code = "CANARYWRONGCODE000000000000"
    change_integration(connector_app, integration_code=wrong_code)
    assert post_test_delivery(client).status_code == 502
    with connector_app.extensions["connector"].sessions() as session:
        times = list(session.scalars(select(ApiCall.at)))
        assert any(session.scalars(select(ApiCall.error).where(ApiCall.error.is_not(None))))
    assert len(times) >= 4

    answers = [get(client, "api-calls"), get(client, "api-calls", {"format": "csv"})]
    for moment in {(t.date(), t.hour) for t in times}:
        day = {"day": moment[0].isoformat()}
        answers += [
            get(client, "activity/hourly", day),
            get(client, "activity/hourly", {**day, "format": "csv"}),
            get(client, "activity/hourly", {**day, "format": "csv", "table": "totals"}),
            get(client, "activity/calls", {**day, "hour": str(moment[1])}),
            get(client, "activity/calls", {**day, "hour": str(moment[1]), "format": "csv"}),
        ]
    texts = [response.get_data(as_text=True) for response in answers]
    assert all(response.status_code == 200 for response in answers), texts
    listed = json.loads(texts[0])["api_calls"]
    assert len(listed) == len(times)
    assert any(call["error"] for call in listed)
    for text in texts:
        for secret in (api_user.secret, api_user.integration_code, wrong_code):
            assert secret not in text
