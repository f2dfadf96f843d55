"""Datto RMM webhooks: the recommended triggered and resolved bodies in, normalized alerts out."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapters.sources.datto_rmm import DattoRmmSource
from connector.domain import AlertStatus, IncomingAlert, Severity
from connector.errors import PayloadError
from tests.adapters.sources.support import (
    HOSTILE,
    alert_record,
    alerts_listed,
    assert_recorded,
    fixture,
    fixture_names,
    post,
    precise_400,
)

BODIES = Path(__file__).parents[3] / "adapters" / "sources" / "bodies"


def parse(payload: Any) -> list[IncomingAlert]:
    return DattoRmmSource().parse(payload)


def parse_one(payload: Any) -> IncomingAlert:
    [alert] = parse(payload)
    return alert


TRIGGERED = IncomingAlert(
    source="datto_rmm",
    fingerprint="0b5c7c3e-6f0a-4d8e-9a55-3c1f4e2b7d90",
    status=AlertStatus.ACTIVE,
    severity=Severity.CRITICAL,
    # No title in the body: the message's first line.
    title="Disk usage on C: is 96% (threshold 90%).",
    message="Disk usage on C: is 96% (threshold 90%).\nFree space: 2.5 GB.",
    host="NW-FS01",
    tenant="Northwind Traders",
    monitor="Disk Usage",
    properties={
        "alert_uid": "0b5c7c3e-6f0a-4d8e-9a55-3c1f4e2b7d90",
        "alert.type": "Disk Usage",
        "datto_rmm.device_uid": "6e2a91f4-0c8d-4b7e-8d3a-5f9e1c2b4a77",
        "datto_rmm.site_uid": "a7d3e5c1-2b4f-4e6a-9c8d-1f0e3b5a7c92",
        "datto_rmm.platform": "merlot",
        "datto_rmm.priority": "Critical",
    },
    # No timestamp variable in the body: the alert's trigger/resolve cycle tells repeats apart.
    started_at=None,
    occurred_at=None,
    raw_severity="Critical",
)
PER_MONITOR_TIME = datetime(2026, 11, 22, 11, 58, 30, 512_000, tzinfo=UTC)

EXPECTED: dict[str, IncomingAlert] = {
    "triggered.json": TRIGGERED,
    "resolved.json": replace(TRIGGERED, status=AlertStatus.CLEARED),
    "per_monitor.json": IncomingAlert(
        source="datto_rmm",
        fingerprint="c41e9a27-58d3-4f1b-b6e0-7a2d9c3f8e15",
        status=AlertStatus.ACTIVE,
        severity=Severity.ERROR,
        title="Veeam Backup Service stopped on FAB-BKP01",
        message="Service VeeamBackupSvc is Stopped (expected: Running).",
        host="FAB-BKP01",
        tenant="Fabrikam Inc",
        # The literal monitor name beats the category, so per-monitor settings can key on it.
        monitor="Service Monitor - Veeam Backup Service",
        properties={
            "autotask.accountid": "29683415",
            "alert_uid": "c41e9a27-58d3-4f1b-b6e0-7a2d9c3f8e15",
            "alert.type": "Service Status",
            "datto_rmm.device_uid": "e9b1d7c3-4a6f-4c2e-8b5d-0f7a3e9c1d48",
            "datto_rmm.site_uid": "5c8e2a4f-7b1d-4e3a-9f6c-2d0b8e4a1c73",
            "datto_rmm.platform": "merlot",
            "datto_rmm.priority": "High",
        },
        # Epoch milliseconds, as in Datto RMM's API.
        started_at=PER_MONITOR_TIME,
        occurred_at=PER_MONITOR_TIME,
        raw_severity="High",
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(set(fixture_names("datto_rmm")) - {"test_webhook.json"})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes_every_field(name: str) -> None:
    assert parse_one(fixture("datto_rmm", name)) == EXPECTED[name]


def test_the_test_webhook_is_no_alert() -> None:
    # Datto RMM's test webhook leaves every [variable] literal: it identifies no alert.
    assert parse(fixture("datto_rmm", "test_webhook.json")) == []


@pytest.mark.parametrize(
    "change",
    [
        {"hostname": "NW-FS01"},  # a real alert whose uid variable is misspelt
        {"timestamp": 1795348710512},
        {"alert_uid": "[alertuid]", "site_name": "Contoso"},
    ],
)
def test_a_literal_alert_uid_in_a_real_alert_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as refused:
        parse(fixture("datto_rmm", "test_webhook.json") | change)

    assert list(refused.value.details or {}) == ["alert_uid"]


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Critical", Severity.CRITICAL),
        ("High", Severity.ERROR),
        ("Moderate", Severity.WARNING),
        ("Low", Severity.INFO),
        ("Information", Severity.INFO),
        ("  high ", Severity.ERROR),
        ("INFORMATION", Severity.INFO),
        ("", Severity.WARNING),
        ("[alert_priority]", Severity.WARNING),
    ],
)
def test_priorities(priority: str, severity: Severity) -> None:
    alert = parse_one({"status": "triggered", "alert_uid": "u1", "priority": priority})

    assert alert.severity is severity


@pytest.mark.parametrize("priority", ["Medium", "urgent", "P1", "5"])
def test_unknown_priority_is_refused(priority: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"status": "triggered", "alert_uid": "u1", "priority": priority})

    assert list(refused.value.details or {}) == ["priority"]


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("triggered", AlertStatus.ACTIVE),
        ("resolved", AlertStatus.CLEARED),
        ("Resolved", AlertStatus.CLEARED),
    ],
)
def test_status_words(word: str, status: AlertStatus) -> None:
    assert parse_one({"status": word, "alert_uid": "u1"}).status is status


def test_resolved_does_not_restart_the_alert() -> None:
    body = fixture("datto_rmm", "per_monitor.json") | {"status": "resolved"}

    alert = parse_one(body)

    assert (alert.started_at, alert.occurred_at) == (None, PER_MONITOR_TIME)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-22T11:58:30.512Z", PER_MONITOR_TIME),
        ("1795348710.512", PER_MONITOR_TIME),
        (1795348710512, PER_MONITOR_TIME),
        ("[alert_timestamp]", None),
        ("", None),
    ],
)
def test_timestamps(timestamp: Any, expected: datetime | None) -> None:
    alert = parse_one({"status": "triggered", "alert_uid": "u1", "timestamp": timestamp})

    assert alert.occurred_at == expected


@pytest.mark.parametrize(
    ("body", "title", "monitor"),
    [
        ({"message": "\n\n  Line one\nline two"}, "Line one", ""),
        ({"category": "Online Status", "hostname": "PC-7"}, "Online Status on PC-7", ""),
        ({"hostname": "PC-7"}, "Datto RMM alert on PC-7", ""),
        ({"category": "Patch"}, "Patch", "Patch"),
        ({}, "Datto RMM alert u1", ""),
    ],
)
def test_title_falls_back(body: dict[str, Any], title: str, monitor: str) -> None:
    alert = parse_one({"status": "triggered", "alert_uid": "u1"} | body)

    assert alert.title == title
    if monitor:
        assert alert.monitor == monitor


def test_unsubstituted_variables_are_empty() -> None:
    body = json.loads((BODIES / "datto_rmm.json").read_text()) | {"alert_uid": "u1"}

    alert = parse_one(body)

    assert alert == IncomingAlert(
        source="datto_rmm",
        fingerprint="u1",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="Datto RMM alert u1",
        properties={"alert_uid": "u1"},
    )


def test_the_shipped_bodies_substituted_by_datto_rmm_parse() -> None:
    values = {
        "alert_uid": "9f0c",
        "alert_priority": "Low",
        "alert_message": 'Patch "KB5030211" failed',
        "alert_category": "Patch",
        "device_hostname": "PC-7",
        "device_id": "d1",
        "site_id": "s1",
        "site_name": "Contoso",
        "platform": "pinotage",
    }
    triggered, resolved = (
        parse_one(
            json.loads(
                re.sub(
                    r"\[([a-z_]+)\]",
                    lambda m: json.dumps(values[m[1]])[1:-1],
                    (BODIES / name).read_text(),
                )
            )
        )
        for name in ("datto_rmm.json", "datto_rmm_resolved.json")
    )

    assert (triggered.fingerprint, triggered.status) == ("9f0c", AlertStatus.ACTIVE)
    assert (resolved.fingerprint, resolved.status) == ("9f0c", AlertStatus.CLEARED)
    assert (triggered.title, triggered.tenant, triggered.severity) == (
        'Patch "KB5030211" failed',
        "Contoso",
        Severity.INFO,
    )


def test_unknown_fields_are_ignored() -> None:
    body = fixture("datto_rmm", "triggered.json") | {"udf_1": "x", "alertContext": {"@class": 1}}

    assert parse_one(body) == TRIGGERED


def test_missing_required_fields_are_named_together() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"hostname": "PC-7", "priority": "Low"})

    assert sorted(refused.value.details or {}) == ["alert_uid", "status"]


def test_hostile_text_is_kept_literally() -> None:
    alert = parse_one(
        {
            "status": "triggered",
            "alert_uid": "u1",
            "message": HOSTILE,
            "site_name": HOSTILE[:100],
            "properties": {"x": HOSTILE},
        }
    )

    assert (alert.message, alert.tenant, alert.properties["x"]) == (
        HOSTILE,
        HOSTILE[:100],
        HOSTILE,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": "\x00"}, "message"),
        ({"site_name": "\ud800"}, "site_name"),
        ({"alert_uid": "u" * 201}, "alert_uid"),
        ({"alert_uid": ["u1"]}, "alert_uid"),
        ({"timestamp": "tomorrow"}, "timestamp"),
        ({"timestamp": {"ms": 1}}, "timestamp"),
        ({"properties": {"": "x"}}, 'properties."".key'),
    ],
)
def test_bad_values_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"status": "triggered", "alert_uid": "u1"} | change)

    assert list(refused.value.details or {}) == [field]


# -- through the webhook -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_posted_is_202_and_recorded(client: FlaskClient, name: str) -> None:
    response = post(client, "datto_rmm", fixture("datto_rmm", name))

    assert response.status_code == 202, response.get_data(as_text=True)
    [accepted] = response.get_json()["accepted"]
    assert accepted["disposition"] == "queued"
    assert_recorded(alert_record(client, accepted["alert_id"]), EXPECTED[name])


def test_trigger_repeat_resolve_repeat_through_the_webhook(client: FlaskClient) -> None:
    names = ["triggered.json", "triggered.json", "resolved.json", "resolved.json"]

    accepted = [
        post(client, "datto_rmm", fixture("datto_rmm", n)).get_json()["accepted"][0] for n in names
    ]

    assert [a["disposition"] for a in accepted] == ["queued", "duplicate", "queued", "duplicate"]
    assert len({a["alert_id"] for a in accepted}) == 1


def test_test_webhook_through_the_webhook_is_202_and_stores_nothing(client: FlaskClient) -> None:
    response = post(client, "datto_rmm", fixture("datto_rmm", "test_webhook.json"))

    assert response.status_code == 202
    body = response.get_json()
    assert (body["accepted"], body["rejected"]) == ([], [])
    assert alerts_listed(client) == []


def test_a_misspelt_uid_variable_through_the_webhook_is_a_precise_400(client: FlaskClient) -> None:
    body = fixture("datto_rmm", "triggered.json") | {"alert_uid": "[alertuid]"}

    error = precise_400(post(client, "datto_rmm", body))

    assert list(error["details"]) == ["alert_uid"]
