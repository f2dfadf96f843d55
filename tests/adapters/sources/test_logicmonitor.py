"""LogicMonitor custom HTTP delivery: the recommended body in, normalized alerts out."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapters.sources.logicmonitor import LogicMonitorSource, portal_time
from connector.domain import AlertStatus, IncomingAlert, Severity
from connector.errors import PayloadError
from tests.adapters.sources.support import (
    HOSTILE,
    alert_record,
    assert_recorded,
    fixture,
    fixture_names,
    post,
)

BODY = Path(__file__).parents[3] / "adapters" / "sources" / "bodies" / "logicmonitor.json"


def parse(payload: Any) -> list[IncomingAlert]:
    return LogicMonitorSource().parse(payload)


def parse_one(payload: Any) -> IncomingAlert:
    [alert] = parse(payload)
    return alert


SESSION_START = datetime(2026, 11, 22, 9, 50, tzinfo=UTC)
SESSION_PROPERTIES = {
    "system.sysinfo": "Microsoft Windows Server 2022 Standard",
    "instance": "C:\\",
    "datapoint": "PercentUsed",
    "threshold": "> 90 95 98",
    "alert.type": "alert",
    "logicmonitor.alert_id": "LMD4711",
    "logicmonitor.group": "Fabrikam/Servers,Windows Servers",
    "logicmonitor.url": (
        "https://msp-portal.logicmonitor.com/santaba/uiv4/alert#detail~id=LMD4711&type=alert"
    ),
    "logicmonitor.start": "2026-11-22 01:50:00 PST",
}
ACTIVE = IncomingAlert(
    source="logicmonitor",
    # ##ALERTID## + ##STARTEPOCH##: the id alone is shared by every session of this datapoint.
    fingerprint="LMD4711@1795341000",
    status=AlertStatus.ACTIVE,
    severity=Severity.ERROR,
    title="WinVolumeUsage-C:\\ PercentUsed on srv01.fabrikam.local",
    message=(
        "Host: srv01.fabrikam.local\nVolume C:\\ is 96.4% used (threshold > 95).\n"
        "Free space: 2.3 GB of 64 GB."
    ),
    host="srv01.fabrikam.local",
    tenant="fabrikam",
    monitor="WinVolumeUsage-C:\\",
    # "##autotask.accountid##" and "##ADMIN##" were left unsubstituted: empty, so absent.
    properties=SESSION_PROPERTIES | {"value": "96.4", "logicmonitor.level": "error"},
    started_at=SESSION_START,
    # Active: the session's start, so LogicMonitor's re-sends of it are duplicates.
    occurred_at=SESSION_START,
    raw_severity="error",
)

EXPECTED: dict[str, IncomingAlert] = {
    "active.json": ACTIVE,
    "ack.json": replace(
        ACTIVE,
        status=AlertStatus.ACKNOWLEDGED,
        message=(
            "Host: srv01.fabrikam.local\nVolume C:\\ is 96.9% used (threshold > 95).\n"
            "Free space: 2.0 GB of 64 GB."
        ),
        properties=SESSION_PROPERTIES | {"value": "96.9", "logicmonitor.level": "error"},
        # ##DATE## "2026-11-22 02:12:40 PST".
        occurred_at=datetime(2026, 11, 22, 10, 12, 40, tzinfo=UTC),
        actor="jane.doe",
    ),
    "update.json": replace(
        ACTIVE,
        severity=Severity.CRITICAL,
        message=(
            "Host: srv01.fabrikam.local\nVolume C:\\ is 98.6% used (threshold > 98).\n"
            "Free space: 0.9 GB of 64 GB."
        ),
        properties=SESSION_PROPERTIES | {"value": "98.6", "logicmonitor.level": "critical"},
        occurred_at=datetime(2026, 11, 22, 11, 5, tzinfo=UTC),
        raw_severity="critical",
    ),
    "clear.json": replace(
        ACTIVE,
        status=AlertStatus.CLEARED,
        severity=Severity.CRITICAL,
        message="Host: srv01.fabrikam.local\nVolume C:\\ is back to 71.2% used.",
        properties=SESSION_PROPERTIES | {"value": "71.2", "logicmonitor.level": "critical"},
        occurred_at=datetime(2026, 11, 22, 14, 5, tzinfo=UTC),
        raw_severity="critical",
    ),
    "next_session.json": replace(
        ACTIVE,
        fingerprint="LMD4711@1795372260",
        severity=Severity.WARNING,
        message=(
            "Host: srv01.fabrikam.local\nVolume C:\\ is 91.3% used (threshold > 90).\n"
            "Free space: 5.6 GB of 64 GB."
        ),
        properties=SESSION_PROPERTIES
        | {
            "value": "91.3",
            "logicmonitor.level": "warn",
            "logicmonitor.start": "2026-11-22 10:31:00 PST",
        },
        started_at=datetime(2026, 11, 22, 18, 31, tzinfo=UTC),
        occurred_at=datetime(2026, 11, 22, 18, 31, tzinfo=UTC),
        raw_severity="warn",
    ),
    "eventsource_alert.json": IncomingAlert(
        source="logicmonitor",
        fingerprint="LME20318@1795348710",
        status=AlertStatus.ACTIVE,
        severity=Severity.CRITICAL,
        title="Windows Security Event Log on dc01.northwind.local",
        message=(
            "Event 4740 from Microsoft-Windows-Security-Auditing: A user account was locked out."
            "\nAccount Name: svc-backup"
        ),
        host="dc01.northwind.local",
        tenant="",  # "##connector.tenant##": the device has no such property
        monitor="Windows Security Event Log",
        properties={
            "autotask.accountid": "29683416",
            "alert.type": "eventAlert",
            "logicmonitor.alert_id": "LME20318",
            "logicmonitor.group": "Northwind/Domain Controllers",
            "logicmonitor.start": "2026-11-22 03:58:30 PST",
            "logicmonitor.level": "critical",
        },
        started_at=datetime(2026, 11, 22, 11, 58, 30, tzinfo=UTC),
        occurred_at=datetime(2026, 11, 22, 11, 58, 30, tzinfo=UTC),
        raw_severity="critical",
    ),
    "test.json": IncomingAlert(
        source="logicmonitor",
        fingerprint="LMD1",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="[test] LogicMonitor alert LMD1",
        message="This is a test alert from LogicMonitor.",
        properties={
            "alert.type": "alert",
            "logicmonitor.alert_id": "LMD1",
            "logicmonitor.level": "warn",
            "logicmonitor.test": "true",
        },
        raw_severity="warn",
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names("logicmonitor")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes_every_field(name: str) -> None:
    assert parse_one(fixture("logicmonitor", name)) == EXPECTED[name]


def test_a_session_keeps_one_fingerprint_and_the_next_session_gets_another() -> None:
    fingerprints = {
        name: parse_one(fixture("logicmonitor", name)).fingerprint
        for name in ("active.json", "ack.json", "update.json", "clear.json", "next_session.json")
    }

    assert len({fingerprints[n] for n in ("active.json", "ack.json", "update.json")}) == 1
    assert fingerprints["clear.json"] == fingerprints["active.json"]
    # Same ##ALERTID## after the clear, new ##STARTEPOCH##: a new alert episode.
    assert fingerprints["next_session.json"] != fingerprints["clear.json"]
    assert fingerprints["next_session.json"].startswith("LMD4711@")


def test_a_resent_event_is_the_same_event_and_a_new_update_is_not() -> None:
    active = parse_one(fixture("logicmonitor", "active.json"))
    resent = parse_one(fixture("logicmonitor", "active.json") | {"date": "2026-11-22 05:00 PST"})
    later_update = parse_one(
        fixture("logicmonitor", "update.json") | {"date": "2026-11-22 04:05:00 PST"}
    )
    update = parse_one(fixture("logicmonitor", "update.json"))

    key = (active.fingerprint, active.status, active.occurred_at)
    assert (resent.fingerprint, resent.status, resent.occurred_at) == key
    assert update.status is AlertStatus.ACTIVE
    assert update.occurred_at != later_update.occurred_at


def test_start_text_stands_in_for_the_epoch() -> None:
    body = fixture("logicmonitor", "active.json")
    del body["start_epoch"]

    alert = parse_one(body)

    # "2026-11-22 01:50:00 PST" is the same instant as ##STARTEPOCH## 1795341000.
    assert (alert.fingerprint, alert.started_at) == (ACTIVE.fingerprint, SESSION_START)


def test_start_in_an_unknown_zone_still_separates_sessions() -> None:
    body = fixture("logicmonitor", "active.json") | {"start": "2026-11-22 01:50:00 XYZT"}
    del body["start_epoch"]

    alert = parse_one(body)

    assert alert.fingerprint == "LMD4711@2026-11-22 01:50:00 XYZT"
    assert alert.started_at is None


def test_without_any_start_the_alert_id_is_the_fingerprint() -> None:
    alert = parse_one({"alert_id": "LMD9", "status": "active"})

    assert alert == IncomingAlert(
        source="logicmonitor",
        fingerprint="LMD9",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="LogicMonitor alert LMD9",
        properties={"logicmonitor.alert_id": "LMD9"},
    )


def test_fingerprint_stays_within_255_characters() -> None:
    alert = parse_one(
        {"alert_id": "L" * 200, "status": "clear", "start": "x" * 100, "date": "d" * 100}
    )

    assert len(alert.fingerprint) <= 255
    assert alert.fingerprint.startswith("L" * 200 + "@")


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("active", AlertStatus.ACTIVE),
        ("ack", AlertStatus.ACKNOWLEDGED),
        ("clear", AlertStatus.CLEARED),
        ("update", AlertStatus.ACTIVE),
        ("test", AlertStatus.ACTIVE),
        (" CLEAR ", AlertStatus.CLEARED),
        ("Ack", AlertStatus.ACKNOWLEDGED),
    ],
)
def test_status_words(word: str, status: AlertStatus) -> None:
    assert parse_one({"alert_id": "LMD1", "status": word}).status is status


@pytest.mark.parametrize("word", ["acknowledged", "cleared", "escalated", "firing", "", "##X##"])
def test_other_status_words_are_refused(word: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"alert_id": "LMD1", "status": word})

    assert list(refused.value.details or {}) == ["status"]


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("warn", Severity.WARNING),
        ("warning", Severity.WARNING),
        ("error", Severity.ERROR),
        ("critical", Severity.CRITICAL),
        ("CRITICAL", Severity.CRITICAL),
        ("", Severity.WARNING),
        ("##LEVEL##", Severity.WARNING),
    ],
)
def test_levels(level: str, severity: Severity) -> None:
    alert = parse_one({"alert_id": "LMD1", "status": "active", "level": level})

    assert alert.severity is severity


def test_unknown_level_is_refused() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"alert_id": "LMD1", "status": "active", "level": "fatal"})

    assert list(refused.value.details or {}) == ["level"]


def test_ack_carries_who_and_the_note_and_other_statuses_do_not() -> None:
    ack = {"alert_id": "LMD1", "status": "ack", "admin": "jane", "note": "on it"}

    assert (parse_one(ack).actor, parse_one(ack).note) == ("jane", "on it")
    cleared = parse_one(ack | {"status": "clear"})
    assert (cleared.actor, cleared.note) == ("", "")


def test_unknown_fields_are_ignored() -> None:
    body = fixture("logicmonitor", "active.json") | {
        "##CUSTOM##": "x",
        "severity": "fatal",
        "nested": {"deep": [1, 2, {"x": None}]},
    }

    assert parse_one(body) == ACTIVE


def test_missing_required_fields_are_named_together() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"level": "warn", "host": "srv01"})

    assert sorted(refused.value.details or {}) == ["alert_id", "status"]
    assert "alert_id" in str(refused.value)
    assert "status" in str(refused.value)


def test_the_body_as_shipped_unsubstituted_is_refused_naming_the_identity() -> None:
    with pytest.raises(PayloadError) as refused:
        parse(json.loads(BODY.read_text()))

    assert sorted(refused.value.details or {}) == ["alert_id", "status"]


def test_the_shipped_body_substituted_by_logicmonitor_parses() -> None:
    values = {
        "ALERTID": "LMD77",
        "ALERTSTATUS": "active",
        "LEVEL": "critical",
        "ALERTTYPE": "alert",
        "HOST": "web01",
        "DATASOURCE": "HTTPS-",
        "INSTANCE": "443",
        "DATAPOINT": "CantConnect",
        "VALUE": "1",
        "THRESHOLD": "= 1",
        "START": "2026-11-22 12:00:00 UTC",
        "STARTEPOCH": "1795348800",
        "DATE": "2026-11-22 12:00:03 UTC",
        "MESSAGE": "web01 cannot connect on 443",
        "ADMIN": "",
        "GROUP": "Contoso",
        "ALERTDETAILURL": "https://example.logicmonitor.com/x",
        "connector.tenant": "contoso",
        "autotask.accountid": "29683414",
    }
    text = re.sub(r"##([^#]+)##", lambda m: values[m[1]], BODY.read_text())

    alert = parse_one(json.loads(text))

    assert alert.fingerprint == "LMD77@1795348800"
    assert (alert.title, alert.tenant, alert.severity) == (
        "HTTPS- CantConnect on web01",
        "contoso",
        Severity.CRITICAL,
    )
    assert alert.properties["autotask.accountid"] == "29683414"


def test_numbers_are_accepted_for_text_and_epoch() -> None:
    alert = parse_one({"alert_id": 4711, "status": "active", "value": 96.4, "start_epoch": 0})

    assert alert.fingerprint == "4711@0"
    assert alert.properties["value"] == "96.4"
    assert alert.started_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_epoch_in_milliseconds_is_understood() -> None:
    alert = parse_one({"alert_id": "LMD1", "status": "active", "start_epoch": "1795341000000"})

    assert alert.started_at == SESSION_START


def test_hostile_text_is_kept_literally() -> None:
    body = {
        "alert_id": "LMD1",
        "status": "active",
        "host": HOSTILE[:200],
        "message": HOSTILE,
        "title": HOSTILE,
        "properties": {"note": HOSTILE, HOSTILE[:50]: "x"},
    }

    alert = parse_one(body)

    assert (alert.host, alert.message, alert.title) == (HOSTILE[:200], HOSTILE, HOSTILE)
    assert alert.properties["note"] == HOSTILE
    assert alert.properties[HOSTILE[:50]] == "x"


def test_overlong_display_text_is_cut_not_refused() -> None:
    alert = parse_one({"alert_id": "LMD1", "status": "active", "host": "h" * 300})

    assert len(alert.host) == 255
    assert alert.host.endswith("…")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": "nul \x00"}, "message"),
        ({"host": "lone \ud800"}, "host"),
        ({"properties": {"k": "\udfff"}}, "properties.k.value"),
        ({"properties": {"k": [1]}}, "properties.k.value"),
        ({"properties": ["k"]}, "properties"),
        ({"start_epoch": "soon"}, "start_epoch"),
        ({"start_epoch": 1e300}, "start_epoch"),
        ({"alert_id": "x" * 201}, "alert_id"),
        ({"alert_id": True}, "alert_id"),
        ({"start": "s" * 101}, "start"),
    ],
)
def test_bad_values_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"alert_id": "LMD1", "status": "active"} | change)

    assert list(refused.value.details or {}) == [field]


def test_several_deliveries_in_one_post() -> None:
    alerts = parse({"alerts": [fixture("logicmonitor", n) for n in ("active.json", "ack.json")]})

    assert [a.status for a in alerts] == [AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED]


def test_batch_errors_name_the_entry() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"alerts": [fixture("logicmonitor", "active.json"), {"alert_id": "x"}]})

    assert list(refused.value.details or {}) == ["alerts.1.status"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-05-02 14:21:40 PDT", datetime(2019, 5, 2, 21, 21, 40, tzinfo=UTC)),
        ("2026-11-22 01:50:00 pst", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("2026-11-22 10:50 CET", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("2026-11-22 11:50:00 +0200", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("2026-11-22 04:20:00 -05:30", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("2026-11-22T09:50:00Z", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("1795341000", datetime(2026, 11, 22, 9, 50, tzinfo=UTC)),
        ("2026-11-22 09:50:00 IST", None),  # India, Ireland or Israel: cannot tell
        ("2026-13-40 09:50:00 UTC", None),
        ("0001-01-01 00:00:00 +1400", None),
        ("##DATE##", None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_portal_times(text: str, expected: datetime | None) -> None:
    assert portal_time(text) == expected


# -- through the webhook -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_posted_is_202_and_recorded(client: FlaskClient, name: str) -> None:
    response = post(client, "logicmonitor", fixture("logicmonitor", name))

    assert response.status_code == 202, response.get_data(as_text=True)
    [accepted] = response.get_json()["accepted"]
    assert accepted["disposition"] == "queued"
    assert_recorded(alert_record(client, accepted["alert_id"]), EXPECTED[name])


def test_a_session_through_the_webhook(client: FlaskClient) -> None:
    sequence = [
        "active.json",
        "active.json",  # LogicMonitor re-sends: a duplicate
        "ack.json",
        "update.json",
        "update.json",  # the same update re-sent: a duplicate
        "clear.json",
        "next_session.json",  # same ##ALERTID##, new session: a new alert
    ]

    accepted = [
        post(client, "logicmonitor", fixture("logicmonitor", name)).get_json()["accepted"][0]
        for name in sequence
    ]

    assert [a["disposition"] for a in accepted] == [
        "queued",
        "duplicate",
        "queued",
        "queued",
        "duplicate",
        "queued",
        "queued",
    ]
    assert len({a["alert_id"] for a in accepted[:6]}) == 1
    assert accepted[6]["alert_id"] != accepted[0]["alert_id"]
    record = alert_record(client, accepted[0]["alert_id"])
    assert (record["status"], record["severity"]) == ("cleared", "critical")


def test_an_epoch_too_large_for_a_float_is_refused_naming_it() -> None:
    # Found by fuzzing (fuzz/regressions/logicmonitor): an OverflowError, a 500, before.
    body = fixture("logicmonitor", "active.json")
    body["start_epoch"] = 10**400

    with pytest.raises(PayloadError) as refused:
        parse(body)

    assert refused.value.details == {"start_epoch": ["Out of the range of dates."]}
