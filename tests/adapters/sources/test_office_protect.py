"""Office Protect-style security events in, normalized alerts out; tenants route or are dropped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapters.sources.office_protect import OfficeProtectSource
from connector import create_app
from connector.cli import prepare_database
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


def parse(payload: Any) -> list[IncomingAlert]:
    return OfficeProtectSource().parse(payload)


def parse_one(payload: Any) -> IncomingAlert:
    [alert] = parse(payload)
    return alert


SIGN_IN_ID = "b3f1c2e4-7d4a-4c55-9a0e-2f1d8c6b9e71"
SIGN_IN_TIME = datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC)
SIGN_IN = IncomingAlert(
    source="office_protect",
    fingerprint=SIGN_IN_ID,
    status=AlertStatus.ACTIVE,
    severity=Severity.ERROR,  # "High"
    title="Sign-In from Unauthorized Country: henry@fabrikam.com",
    message=(
        "Henry signed in from France (FR), a country not in the tenant's list of authorized"
        " countries."
    ),
    host="",
    tenant="fabrikam.onmicrosoft.com",
    monitor="Sign-In from Unauthorized Country",
    properties={
        "detail.Username": "henry@fabrikam.com",
        "detail.Country": "France (FR)",
        "detail.IP address": "203.0.113.54",
        "detail.User Agent": "Outlook-iOS",
        "event_id": SIGN_IN_ID,
        "alert.type": "security event",
        "office_protect.user": "henry@fabrikam.com",
        "office_protect.url": f"https://app.office-protect.example/report/events/{SIGN_IN_ID}",
    },
    started_at=SIGN_IN_TIME,
    occurred_at=SIGN_IN_TIME,
    raw_severity="high",  # words are case-insensitive: kept in lower case
)
ROLE_CHANGE_TIME = datetime(2026, 11, 22, 12, 2, 55, tzinfo=UTC)  # 13:02:55+01:00
ROLE_CHANGE = IncomingAlert(
    source="office_protect",
    fingerprint="4e7a9d12-c3b8-4f60-a1e5-9b2d7c0f3a84",
    status=AlertStatus.ACTIVE,
    severity=Severity.CRITICAL,
    title="Administrator Role Change: temp.contractor@northwind.com",
    message=(
        "User granted administrator rights: Global Administrator was assigned to"
        " temp.contractor@northwind.com by it-admin@northwind.com."
    ),
    tenant="northwind.onmicrosoft.com",
    monitor="Administrator Role Change",
    properties={
        "autotask.accountid": "29683416",
        "detail.Concerned user": "temp.contractor@northwind.com",
        "detail.Role": "Global Administrator",
        "detail.Changed by": "it-admin@northwind.com",
        "event_id": "4e7a9d12-c3b8-4f60-a1e5-9b2d7c0f3a84",
        "alert.type": "security event",
        "office_protect.user": "temp.contractor@northwind.com",
    },
    started_at=ROLE_CHANGE_TIME,
    occurred_at=ROLE_CHANGE_TIME,
    raw_severity="critical",
)
FORWARDING_TIME = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
BATCH = [
    IncomingAlert(
        source="office_protect",
        fingerprint="9d2c6e81-5a4f-4b37-8e1d-c0f9a7b3e526",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,  # "medium"
        title="Mail Forwarding Rule(s) to External Destination Created: accounts@fabrikam.com",
        message="An inbox rule forwarding all mail to an external address was created.",
        tenant="fabrikam.onmicrosoft.com",
        monitor="Mail Forwarding Rule(s) to External Destination Created",
        properties={
            "detail.Rule created by": "accounts@fabrikam.com",
            "detail.Redirection mailbox": "invoices@fabrikam-billing.example",
            "event_id": "9d2c6e81-5a4f-4b37-8e1d-c0f9a7b3e526",
            "alert.type": "security event",
            "office_protect.user": "accounts@fabrikam.com",
        },
        started_at=FORWARDING_TIME,
        occurred_at=FORWARDING_TIME,
        raw_severity="medium",
    ),
    # The sign-in event, ignored in Office Protect: its ticket is closed.
    IncomingAlert(
        source="office_protect",
        fingerprint=SIGN_IN_ID,
        status=AlertStatus.CLEARED,
        severity=Severity.WARNING,
        title="Sign-In from Unauthorized Country: henry@fabrikam.com",
        tenant="fabrikam.onmicrosoft.com",
        monitor="Sign-In from Unauthorized Country",
        properties={
            "event_id": SIGN_IN_ID,
            "alert.type": "security event",
            "office_protect.user": "henry@fabrikam.com",
        },
        started_at=SIGN_IN_TIME,
        occurred_at=SIGN_IN_TIME,
    ),
]
EXPECTED: dict[str, list[IncomingAlert]] = {
    "sign_in_unauthorized_country.json": [SIGN_IN],
    "administrator_role_change.json": [ROLE_CHANGE],
    "batch.json": BATCH,
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names("office_protect")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes_every_field(name: str) -> None:
    assert parse(fixture("office_protect", name)) == EXPECTED[name]


MINIMAL = {"event_id": "e1", "event_type": "Account Deleted", "tenant": "contoso.com"}


def test_only_id_type_and_tenant_are_required() -> None:
    assert parse_one(MINIMAL) == IncomingAlert(
        source="office_protect",
        fingerprint="e1",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="Account Deleted",
        tenant="contoso.com",
        monitor="Account Deleted",
        properties={"event_id": "e1", "alert.type": "security event"},
    )


def test_missing_required_fields_are_named_together() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"description": "x", "severity": "high"})

    assert sorted(refused.value.details or {}) == ["event_id", "event_type", "tenant"]


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("critical", Severity.CRITICAL),
        ("High", Severity.ERROR),
        ("error", Severity.ERROR),
        ("medium", Severity.WARNING),
        ("warning", Severity.WARNING),
        ("low", Severity.INFO),
        ("Informational", Severity.INFO),
        ("info", Severity.INFO),
        ("", Severity.WARNING),
    ],
)
def test_severities(word: str, severity: Severity) -> None:
    assert parse_one(MINIMAL | {"severity": word}).severity is severity


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("new", AlertStatus.ACTIVE),
        ("active", AlertStatus.ACTIVE),
        ("Open", AlertStatus.ACTIVE),
        ("ignored", AlertStatus.CLEARED),
        ("resolved", AlertStatus.CLEARED),
        ("closed", AlertStatus.CLEARED),
        ("DISMISSED", AlertStatus.CLEARED),
    ],
)
def test_statuses(word: str, status: AlertStatus) -> None:
    assert parse_one(MINIMAL | {"status": word}).status is status


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity": "severe"}, "severity"),
        ({"status": "pending"}, "status"),
        ({"time": 1795340467}, "time"),  # epoch numbers are not part of this shape
        ({"time": "2026-02-30T00:00:00Z"}, "time"),
        ({"tenant": " "}, "tenant"),
        ({"event_type": "t" * 256}, "event_type"),
        ({"details": {"k": {"nested": 1}}}, "details.k.value"),
        ({"description": "\x00"}, "description"),
        ({"user": "\udc00"}, "user"),
    ],
)
def test_bad_values_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse(MINIMAL | change)

    assert list(refused.value.details or {}) == [field]


def test_unknown_fields_are_ignored() -> None:
    body = fixture("office_protect", "sign_in_unauthorized_country.json") | {
        "remediation": [{"action": "Block user"}],
        "whitelist_rule": None,
    }

    assert parse_one(body) == SIGN_IN


def test_hostile_text_is_kept_literally() -> None:
    alert = parse_one(
        MINIMAL | {"description": HOSTILE, "user": HOSTILE, "details": {HOSTILE[:40]: HOSTILE}}
    )

    assert alert.message == HOSTILE
    assert alert.title == f"Account Deleted: {HOSTILE}"
    assert alert.properties[f"detail.{HOSTILE[:40]}"] == HOSTILE


def test_batch_errors_name_the_entry() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"events": [MINIMAL, MINIMAL | {"severity": 3}, "x"]})

    assert sorted(refused.value.details or {}) == ["events.1.severity", "events.2"]


@pytest.mark.parametrize("events", [[], {}, "x", None])
def test_events_must_be_a_non_empty_list(events: Any) -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"events": events})

    assert list(refused.value.details or {}) == ["events"]


# -- through the webhook -------------------------------------------------------------------

#: The fixtures' Microsoft 365 tenants, mapped: Office Protect tickets only mapped tenants.
FIXTURE_TENANTS = {"fabrikam.onmicrosoft.com": 29683415, "northwind.onmicrosoft.com": 29683416}


@pytest.fixture
def mapped(connector_settings: dict[str, Any]) -> Iterator[FlaskClient]:
    """A connector whose tenant map also holds the fixtures' tenants."""
    settings = dict(connector_settings)
    integration = settings["INTEGRATION"]
    settings["INTEGRATION"] = integration | {"tenants": integration["tenants"] | FIXTURE_TENANTS}
    app = create_app(settings)
    prepare_database(app.extensions["connector"])
    yield app.test_client()
    app.extensions["connector"].dispose()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_posted_is_202_and_recorded(mapped: FlaskClient, name: str) -> None:
    client = mapped
    response = post(client, "office_protect", fixture("office_protect", name))

    assert response.status_code == 202, response.get_data(as_text=True)
    accepted = response.get_json()["accepted"]
    assert len(accepted) == len(EXPECTED[name])
    for entry, alert in zip(accepted, EXPECTED[name], strict=True):
        assert entry["disposition"] == "queued"
        assert_recorded(alert_record(client, entry["alert_id"]), alert)


def test_event_then_ignored_then_resent_through_the_webhook(mapped: FlaskClient) -> None:
    client = mapped
    event = fixture("office_protect", "sign_in_unauthorized_country.json")
    ignored = fixture("office_protect", "batch.json")["events"][1]

    dispositions = [
        post(client, "office_protect", body).get_json()["accepted"][0]["disposition"]
        for body in (event, event, ignored, ignored)
    ]

    assert dispositions == ["queued", "duplicate", "queued", "duplicate"]


@pytest.mark.parametrize(
    ("tenant", "disposition"),
    [
        ("fabrikam", "queued"),
        ("switched-off", "dropped: tenant 'switched-off' is switched off"),
        ("contoso", "dropped: tenant 'contoso' is not mapped (unmapped: drop)"),
    ],
)
def test_tenant_mapping_applies(client: FlaskClient, tenant: str, disposition: str) -> None:
    response = post(client, "office_protect", MINIMAL | {"tenant": tenant})

    [accepted] = response.get_json()["accepted"]
    assert accepted["disposition"] == disposition
    assert alert_record(client, accepted["alert_id"])["tenant"] == tenant
