"""Which company an alert's ticket goes to, and what the ticket looks like.

Through the webhook and the API (dispositions and deliveries), through one worker pass against the
sandbox (the ticket's company, priority and work type), and as pure functions (route_company,
map_severity, build_draft).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.targets.autotask.profile import TICKET_LIMITS
from connector import create_app
from connector.cli import prepare_database
from connector.domain import AlertStatus, IncomingAlert, Severity
from connector.errors import ConfigError
from connector.integrations.settings import (
    IntegrationSettings,
    MonitorOverride,
    ValidationError,
    load_settings,
)
from connector.payloads.text import TRUNCATED, utf16_units
from connector.pipeline.ingest import alert_from_json, alert_to_json
from connector.pipeline.routing import Route, TenantRoute, build_draft, map_severity, route_company
from connector.wiring import make_worker
from tests.conftest import API_TOKEN, HOOK_TOKEN, RestClient

TITLE_LIMIT = TICKET_LIMITS["title"]
DESCRIPTION_LIMIT = TICKET_LIMITS["description"]

DEFAULT_COMPANY = 29683414
FABRIKAM = 29683415
NORTHWIND = 29683416
OVERRIDE_COMPANY = 29683999


def alert_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "disk-srv01",
        "status": "active",
        "severity": "error",
        "title": "Disk full on srv01",
        "host": "srv01",
    }
    body.update(fields)
    return body


def hook(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/hooks/generic", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return dict(response.get_json()["accepted"][0])


def alert_detail(client: FlaskClient, alert_id: int) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    return dict(response.get_json())


@pytest.fixture
def drop_client(connector_settings: dict[str, Any]) -> Iterator[FlaskClient]:
    """A connector whose integration drops alerts of unmapped tenants (unmapped = "drop")."""
    settings = dict(connector_settings)
    settings["INTEGRATION"] = dict(settings["INTEGRATION"], unmapped="drop")
    app = create_app(settings)
    prepare_database(app.extensions["connector"])
    yield app.test_client()
    app.extensions["connector"].dispose()


# -- through the webhook and the API --------------------------------------------------------------

DEFAULT_ROUTES = [
    pytest.param({"tenant": "fabrikam"}, "queued", id="mapped-tenant"),
    pytest.param({"tenant": "contoso"}, "queued", id="unmapped-tenant-to-default"),
    pytest.param({}, "queued", id="no-tenant"),
    pytest.param(
        {"tenant": "switched-off"},
        "dropped: tenant 'switched-off' is switched off",
        id="switched-off-tenant",
    ),
    pytest.param(
        {"tenant": "switched-off", "properties": {"autotask.accountid": str(OVERRIDE_COMPANY)}},
        "queued",
        id="accountid-beats-switched-off",
    ),
    pytest.param(
        {"properties": {"autotask.accountid": "acme"}}, "queued", id="accountid-not-a-number"
    ),
]

#: The warning an `autotask.accountid` that names no company gives (the alert is still routed).
NOT_AN_ID = (
    "autotask.accountid '{}' is not an Autotask company id (a whole number); the alert was"
    " routed by the tenant map and default company instead"
)


@pytest.mark.parametrize(("fields", "disposition"), DEFAULT_ROUTES)
def test_tenant_routing_is_visible_through_the_api(
    client: FlaskClient, fields: dict[str, Any], disposition: str
) -> None:
    accepted = hook(client, alert_body(**fields))

    assert accepted["disposition"] == disposition
    detail = alert_detail(client, accepted["alert_id"])
    assert [e["disposition"] for e in detail["events"]] == [disposition]
    # A dropped event is kept and visible, but nothing is sent to Autotask for it.
    expected = 1 if disposition == "queued" else 0
    assert len(detail["deliveries"]) == expected


def test_every_event_of_a_switched_off_tenant_is_dropped(client: FlaskClient) -> None:
    body = alert_body(tenant="switched-off")
    statuses = ["active", "acknowledged", "cleared"]

    accepted = [hook(client, dict(body, status=status)) for status in statuses]

    assert {a["disposition"] for a in accepted} == {
        "dropped: tenant 'switched-off' is switched off"
    }
    detail = alert_detail(client, accepted[0]["alert_id"])
    assert [e["status"] for e in detail["events"]] == statuses
    assert detail["deliveries"] == []


@pytest.mark.parametrize(
    ("fields", "disposition"),
    [
        pytest.param(
            {"tenant": "contoso"},
            "dropped: tenant 'contoso' is not mapped (unmapped: drop)",
            id="unmapped-tenant-dropped",
        ),
        pytest.param({"tenant": "northwind"}, "queued", id="mapped-tenant"),
        pytest.param({}, "queued", id="no-tenant-to-default"),
        pytest.param(
            {"tenant": "contoso", "properties": {"autotask.accountid": str(OVERRIDE_COMPANY)}},
            "queued",
            id="accountid-beats-unmapped-drop",
        ),
    ],
)
def test_unmapped_drop_drops_only_unmapped_tenants(
    drop_client: FlaskClient, fields: dict[str, Any], disposition: str
) -> None:
    accepted = hook(drop_client, alert_body(**fields))

    assert accepted["disposition"] == disposition
    detail = alert_detail(drop_client, accepted["alert_id"])
    assert len(detail["deliveries"]) == (1 if disposition == "queued" else 0)


def test_drop_reason_quoting_a_long_tenant_fits_the_record(drop_client: FlaskClient) -> None:
    accepted = hook(drop_client, alert_body(tenant="t" * 255))

    disposition = accepted["disposition"]
    assert disposition.startswith("dropped: tenant 'ttt")
    assert disposition.endswith(TRUNCATED)
    assert len(disposition) == 300
    detail = alert_detail(drop_client, accepted["alert_id"])
    assert detail["events"][0]["disposition"] == disposition


def test_an_account_property_that_is_no_company_id_routes_by_default_and_warns(
    client: FlaskClient,
) -> None:
    """Never a silent drop: the alert gets its ticket by the tenant map, the admin a warning."""
    response = client.post(
        "/hooks/generic",
        json=alert_body(properties={"autotask.accountid": "x" * 5000}),
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert response.status_code == 202
    accepted = response.get_json()["accepted"][0]

    assert accepted["disposition"] == "queued"
    (warning,) = accepted["warnings"]
    assert warning.startswith("autotask.accountid 'xxx") and "…'" in warning
    assert len(warning) < 300
    detail = alert_detail(client, accepted["alert_id"])
    assert detail["events"][0]["warnings"] == [warning]
    assert detail["warnings"] == [warning]
    # The next event without the bad property clears the alert's warning.
    hook(client, alert_body(status="acknowledged", acknowledged_by="jane"))
    assert alert_detail(client, accepted["alert_id"])["warnings"] == []


# -- one worker pass against the sandbox: the ticket's company ------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("fields", "company"),
    [
        pytest.param({"tenant": "fabrikam"}, FABRIKAM, id="mapped-tenant"),
        pytest.param({"tenant": "contoso"}, DEFAULT_COMPANY, id="unmapped-to-default"),
        pytest.param(
            {"tenant": "switched-off", "properties": {"autotask.accountid": str(NORTHWIND)}},
            NORTHWIND,
            id="accountid-beats-switched-off",
        ),
    ],
)
def test_ticket_is_created_for_the_routed_company(
    client: FlaskClient,
    connector_app: Flask,
    rest: RestClient,
    fields: dict[str, Any],
    company: int,
) -> None:
    accepted = hook(client, alert_body(**fields))

    assert make_worker(connector_app.extensions["connector"]).run_once() == 1

    ticket = alert_detail(client, accepted["alert_id"])["ticket"]
    assert ticket is not None
    response = rest.get(f"Tickets/{ticket['ticket_id']}")
    assert response.status_code == 200
    assert response.json()["item"]["companyID"] == company


# -- route_company --------------------------------------------------------------------------------

TENANTS = {
    "fabrikam": TenantRoute(FABRIKAM),
    "northwind": TenantRoute(NORTHWIND),
    "switched-off": TenantRoute(None, enabled=False),
    "no-company": TenantRoute(None),
}


def incoming(**fields: Any) -> IncomingAlert:
    values: dict[str, Any] = {
        "source": "generic",
        "fingerprint": "disk-srv01",
        "status": AlertStatus.ACTIVE,
        "severity": Severity.ERROR,
        "title": "Disk full on srv01",
    }
    values.update(fields)
    return IncomingAlert(**values)


def account(value: str) -> dict[str, str]:
    return {"autotask.accountid": value}


@pytest.mark.parametrize(
    ("fields", "settings", "route"),
    [
        pytest.param({}, {}, Route(DEFAULT_COMPANY), id="no-tenant-default"),
        pytest.param({"tenant": "fabrikam"}, {}, Route(FABRIKAM), id="mapped"),
        pytest.param({"tenant": "contoso"}, {}, Route(DEFAULT_COMPANY), id="unmapped-default"),
        pytest.param(
            {"tenant": "contoso"},
            {"unmapped": "drop"},
            Route(None, "tenant 'contoso' is not mapped (unmapped: drop)"),
            id="unmapped-drop",
        ),
        pytest.param(
            {"tenant": "contoso", "source": "office_protect"},
            {},
            Route(None, "tenant 'contoso' is not mapped (unmapped: drop)"),
            id="office-protect-unmapped-drops-by-default",
        ),
        pytest.param(
            {"tenant": "fabrikam", "source": "office_protect"},
            {},
            Route(FABRIKAM),
            id="office-protect-mapped",
        ),
        pytest.param(
            {"tenant": "contoso", "source": "office_protect"},
            {"unmapped_per_source": {"office_protect": "default"}},
            Route(DEFAULT_COMPANY),
            id="office-protect-unmapped-to-default-when-asked",
        ),
        pytest.param(
            {"tenant": "contoso", "source": "datto_rmm"},
            {"unmapped": "drop", "unmapped_per_source": {"datto_rmm": "default"}},
            Route(DEFAULT_COMPANY),
            id="per-source-beats-the-integration-wide-choice",
        ),
        pytest.param(
            {"tenant": "switched-off"},
            {},
            Route(None, "tenant 'switched-off' is switched off"),
            id="switched-off",
        ),
        pytest.param(
            {"tenant": "switched-off", "properties": account("123")},
            {},
            Route(123),
            id="accountid-beats-switched-off",
        ),
        pytest.param(
            {"tenant": "fabrikam", "properties": account("123")},
            {},
            Route(123),
            id="accountid-beats-mapping",
        ),
        pytest.param(
            {"tenant": "contoso", "properties": account(" 123 ")},
            {"unmapped": "drop"},
            Route(123),
            id="accountid-beats-unmapped-drop",
        ),
        pytest.param(
            {"tenant": "fabrikam", "properties": account("")},
            {},
            Route(FABRIKAM),
            id="empty-accountid-ignored",
        ),
        pytest.param(
            {"properties": account("acme")},
            {},
            Route(DEFAULT_COMPANY, warning=NOT_AN_ID.format("acme")),
            id="accountid-not-a-number-uses-default",
        ),
        pytest.param(
            {"tenant": "fabrikam", "properties": account("-5")},
            {},
            Route(FABRIKAM, warning=NOT_AN_ID.format("-5")),
            id="negative-accountid-uses-tenant-map",
        ),
        pytest.param(
            {"tenant": "contoso", "properties": account("4_2")},
            {"unmapped": "drop"},
            Route(
                None,
                "tenant 'contoso' is not mapped (unmapped: drop)",
                warning=NOT_AN_ID.format("4_2"),
            ),
            id="accountid-not-an-id-then-dropped-by-unmapped-drop",
        ),
        pytest.param(
            {"properties": account("99999999999")},
            {},
            Route(DEFAULT_COMPANY, warning=NOT_AN_ID.format("99999999999")),
            id="accountid-out-of-range",
        ),
        pytest.param(
            {"tenant": "switched-off"},
            {"tenant_mapping": False},
            Route(DEFAULT_COMPANY),
            id="tenant-mapping-off-uses-default",
        ),
        pytest.param(
            {"tenant": "no-company"}, {}, Route(DEFAULT_COMPANY), id="mapping-without-company"
        ),
        pytest.param(
            {"tenant": "contoso"},
            {"default_company_id": None},
            Route(None, "no tenant mapping applies and there is no default company"),
            id="unmapped-no-default",
        ),
        pytest.param(
            {"tenant": "fabrikam"}, {"default_company_id": None}, Route(FABRIKAM), id="no-default"
        ),
    ],
)
def test_route_company(fields: dict[str, Any], settings: dict[str, Any], route: Route) -> None:
    options = IntegrationSettings(**({"default_company_id": DEFAULT_COMPANY} | settings))

    assert route_company(incoming(**fields), options, TENANTS) == route


# -- build_draft ----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STARTED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def draft(alert: IncomingAlert, settings: IntegrationSettings | None = None) -> Any:
    return build_draft(
        alert,
        company_id=FABRIKAM,
        status=1,
        marker="aac-1234",
        settings=settings or load_settings({}),
        received_at=NOW,
        limits=TICKET_LIMITS,
    )


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        (Severity.CRITICAL, 4),
        (Severity.ERROR, 1),
        (Severity.WARNING, 2),
        (Severity.INFO, 3),
    ],
    ids=str,
)
def test_default_priority_map(severity: Severity, priority: int) -> None:
    assert draft(incoming(severity=severity)).priority == priority


def test_priority_map_setting_overrides_one_severity_and_keeps_the_rest() -> None:
    settings = load_settings({"priority_map": {"warning": 3}})

    assert draft(incoming(severity=Severity.WARNING), settings).priority == 3
    assert draft(incoming(severity=Severity.CRITICAL), settings).priority == 4


def test_draft_carries_the_integration_defaults() -> None:
    settings = load_settings(
        {
            "queue_id": 29682833,
            "issue_type": 10,
            "sub_issue_type": 220,
            "work_type": 29682801,
            "ticket_category": 3,
            "ticket_type": 5,
            "source": 8,
        }
    )

    result = draft(incoming(host="srv01", message="/var is 99% full"), settings)

    assert result.company_id == FABRIKAM
    assert result.status == 1
    assert result.marker == "aac-1234"
    assert result.title == "Disk full on srv01"
    assert (result.queue_id, result.issue_type, result.sub_issue_type) == (29682833, 10, 220)
    assert (result.ticket_category, result.ticket_type, result.source) == (3, 5, 8)
    assert result.work_type == 29682801
    assert result.description.splitlines()[0] == "/var is 99% full"
    assert "Host: srv01" in result.description.splitlines()
    assert "Severity: error" in result.description.splitlines()


WORK_TYPE = 29682801
DISK_WORK_TYPE = 29682805
MONITOR_SETTINGS = {
    "queue_id": 29682833,
    "issue_type": 10,
    "sub_issue_type": 220,
    "work_type": WORK_TYPE,
    "monitor_overrides": {
        "disk": {
            "queue_id": 29682900,
            "issue_type": 11,
            "sub_issue_type": 230,
            "work_type": DISK_WORK_TYPE,
            "priority": 4,
        },
        "ping": {"issue_type": 12},
        "cpu": {"priority": 3},
        "backup": {"work_type": DISK_WORK_TYPE},
    },
}


@pytest.mark.parametrize(
    ("monitor", "expected"),
    [
        # (queue, issue type, sub-issue type, work type, priority)
        pytest.param("disk", (29682900, 11, 230, DISK_WORK_TYPE, 4), id="every-field"),
        # Another issue type: the integration's sub-issue belongs to its own issue type.
        pytest.param("ping", (29682833, 12, None, WORK_TYPE, 1), id="issue-type-only"),
        pytest.param("cpu", (29682833, 10, 220, WORK_TYPE, 3), id="priority-only"),
        pytest.param("backup", (29682833, 10, 220, DISK_WORK_TYPE, 1), id="work-type-only"),
        pytest.param("memory", (29682833, 10, 220, WORK_TYPE, 1), id="no-override"),
        pytest.param("", (29682833, 10, 220, WORK_TYPE, 1), id="no-monitor"),
    ],
)
def test_monitor_overrides(monitor: str, expected: tuple[Any, ...]) -> None:
    settings = load_settings(MONITOR_SETTINGS)

    result = draft(incoming(monitor=monitor), settings)

    assert (
        result.queue_id,
        result.issue_type,
        result.sub_issue_type,
        result.work_type,
        result.priority,
    ) == expected


def test_work_type_is_unset_unless_configured() -> None:
    assert draft(incoming(monitor="disk")).work_type is None


def test_monitor_override_settings_are_loaded_as_overrides() -> None:
    settings = load_settings(MONITOR_SETTINGS)

    assert settings.monitor_overrides["cpu"] == MonitorOverride(priority=3)


@pytest.mark.parametrize(
    ("started_at", "due_days", "due_at"),
    [
        pytest.param(STARTED, 1.0, STARTED + timedelta(days=1), id="start-plus-one-day"),
        pytest.param(STARTED, 0.5, STARTED + timedelta(hours=12), id="half-a-day"),
        pytest.param(STARTED, 0, STARTED, id="zero-days"),
        pytest.param(None, 2.0, NOW + timedelta(days=2), id="no-start-uses-now"),
    ],
)
def test_due_date_is_start_plus_due_days(
    started_at: datetime | None, due_days: float, due_at: datetime
) -> None:
    settings = load_settings({"due_days": due_days})

    assert draft(incoming(started_at=started_at), settings).due_at == due_at


@pytest.mark.parametrize(
    ("length", "expected"),
    [(TITLE_LIMIT - 1, TITLE_LIMIT - 1), (TITLE_LIMIT, TITLE_LIMIT), (1000, TITLE_LIMIT)],
)
def test_title_is_cut_to_255_with_a_visible_marker(length: int, expected: int) -> None:
    title = "T" * length

    result = draft(incoming(title=title)).title

    assert len(result) == expected
    if length > TITLE_LIMIT:
        assert result == "T" * (TITLE_LIMIT - len(TRUNCATED)) + TRUNCATED
    else:
        assert result == title


FIRE = "\U0001f525"  # two UTF-16 code units


@pytest.mark.parametrize(
    ("title", "cut"),
    [
        pytest.param(FIRE + "T" * 253, False, id="255-units"),
        pytest.param(FIRE + "T" * 254, True, id="255-characters-256-units"),
        pytest.param(FIRE * 200, True, id="200-emoji"),
        pytest.param("T" * 240 + FIRE * 10, True, id="cut-before-a-split-emoji"),
    ],
)
def test_title_limit_counts_utf16_code_units(title: str, cut: bool) -> None:
    # Autotask counts UTF-16 code units, so an emoji counts twice (autotask-api.md §14); the
    # sandbox refuses a longer title with "String value exceeds maximum length (field:title).".
    result = draft(incoming(title=title)).title

    assert utf16_units(result) <= TITLE_LIMIT
    if cut:
        assert result.endswith(TRUNCATED)
        assert title.startswith(result.removesuffix(TRUNCATED))
        assert utf16_units(result) >= TITLE_LIMIT - 1  # at most half an emoji left unused
    else:
        assert result == title


def test_description_is_cut_to_8000_with_a_visible_marker() -> None:
    result = draft(incoming(message="M" * 20_000, host="srv01")).description

    assert len(result) == DESCRIPTION_LIMIT
    assert result.endswith(TRUNCATED)
    assert result.startswith("M" * 100)


def test_description_of_exactly_8000_is_kept_whole() -> None:
    tail = draft(incoming(message="M")).description[1:]  # "\nSeverity: error\nStarted: …"
    message = "M" * (DESCRIPTION_LIMIT - len(tail))

    exact = draft(incoming(message=message)).description
    one_more = draft(incoming(message=message + "M")).description

    assert exact == message + tail
    assert len(exact) == DESCRIPTION_LIMIT
    assert len(one_more) == DESCRIPTION_LIMIT
    assert one_more.endswith(TRUNCATED)


def test_due_date_of_a_start_near_the_end_of_time_does_not_overflow() -> None:
    from datetime import UTC, datetime

    from connector.domain import AlertStatus, IncomingAlert, Severity
    from connector.integrations.settings import IntegrationSettings
    from connector.pipeline.routing import build_draft

    far = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    alert = IncomingAlert("generic", "fp", AlertStatus.ACTIVE, Severity.INFO, "t", started_at=far)
    draft = build_draft(
        alert,
        company_id=1,
        status=1,
        marker="m",
        settings=IntegrationSettings(),
        received_at=far,
        limits=TICKET_LIMITS,
    )
    assert draft.due_at is not None and draft.due_at.year == 9999


# -- severity maps: the sender's own words onto the connector's severities -----------------------

SEVERITY_MAPS = {
    "datto_rmm": {"Moderate": "error", "low": "warning"},
    "logicmonitor": {"WARN": "info"},
    "alertmanager": {"sev1": "critical"},
}


@pytest.mark.parametrize(
    ("source", "word", "adapter_default", "expected"),
    [
        pytest.param("datto_rmm", "Moderate", Severity.WARNING, Severity.ERROR, id="mapped"),
        pytest.param("datto_rmm", "MODERATE", Severity.WARNING, Severity.ERROR, id="any-case"),
        pytest.param("datto_rmm", " Low ", Severity.INFO, Severity.WARNING, id="map-key-any-case"),
        pytest.param("logicmonitor", "warn", Severity.WARNING, Severity.INFO, id="lm-warn-info"),
        pytest.param("datto_rmm", "High", Severity.ERROR, Severity.ERROR, id="unmapped-word"),
        pytest.param("datto_rmm", "", Severity.WARNING, Severity.WARNING, id="no-word"),
        pytest.param(
            "alertmanager", "sev1", Severity.WARNING, Severity.CRITICAL, id="unknown-label"
        ),
        pytest.param(
            "alertmanager", "warn", Severity.WARNING, Severity.WARNING, id="other-sources-map"
        ),
        pytest.param("generic", "Moderate", Severity.WARNING, Severity.WARNING, id="no-map"),
    ],
)
def test_severity_map_applies_to_its_sources_words_only(
    source: str, word: str, adapter_default: Severity, expected: Severity
) -> None:
    settings = load_settings({"severity_maps": SEVERITY_MAPS})
    alert = incoming(source=source, severity=adapter_default, raw_severity=word)

    mapped = map_severity(alert, settings)

    assert mapped.severity is expected
    assert mapped.raw_severity == word  # the sender's word is kept as it came
    assert mapped == IncomingAlert(**(alert.__dict__ | {"severity": expected}))


@pytest.mark.parametrize(
    "severity_maps",
    [
        pytest.param({"datto_rmm": {"Moderate": "urgent"}}, id="not-a-severity"),
        pytest.param({"datto_rmm": {"Moderate": "ERROR"}}, id="severity-names-are-exact"),
        pytest.param({"datto_rmm": {" ": "error"}}, id="blank-word"),
        pytest.param({"datto_rmm": {"Moderate": "error", "moderate": "info"}}, id="word-twice"),
        pytest.param({"datto_rmm": "error"}, id="not-a-map"),
        pytest.param({"": {"Moderate": "error"}}, id="blank-source"),
    ],
)
def test_invalid_severity_maps_are_refused(severity_maps: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings({"severity_maps": severity_maps})

    assert list(refused.value.messages) == ["severity_maps"]


def test_severity_map_settings_are_loaded_with_lower_case_words() -> None:
    settings = load_settings(
        {"severity_maps": {"datto_rmm": {"Moderate": "error", "moderate": "error"}}}
    )

    assert settings.severity_maps == {"datto_rmm": {"moderate": Severity.ERROR}}
    assert load_settings({}).severity_maps == {}


def test_the_raw_severity_is_stored_with_the_event_and_old_events_still_load() -> None:
    alert = incoming(source="datto_rmm", raw_severity="Moderate")

    stored = alert_to_json(alert)

    assert stored["raw_severity"] == "Moderate"
    assert alert_from_json(stored) == alert
    del stored["raw_severity"]  # stored before severity maps existed
    assert alert_from_json(stored).raw_severity == ""


@pytest.mark.parametrize(
    "source_options",
    [
        pytest.param({"alertmanager": {"severity_label": "priority"}}, id="options"),
        pytest.param({"alertmanager": {"tenant_labels": ["org", "customer"]}}, id="list-value"),
        pytest.param({}, id="none"),
    ],
)
def test_source_options_are_loaded_as_given(source_options: dict[str, Any]) -> None:
    assert load_settings({"source_options": source_options}).source_options == source_options


@pytest.mark.parametrize(
    "source_options",
    [
        pytest.param({"alertmanager": "severity"}, id="not-a-map"),
        pytest.param({"alertmanager": ["severity"]}, id="a-list"),
        pytest.param({"": {"severity_label": "priority"}}, id="blank-source"),
    ],
)
def test_source_options_must_be_a_map_of_maps(source_options: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings({"source_options": source_options})

    assert list(refused.value.messages) == ["source_options"]


@pytest.fixture
def mapped_client(connector_settings: dict[str, Any]) -> Iterator[FlaskClient]:
    """A connector with severity maps, a default work type and a work type for monitor "disk"."""
    settings = dict(connector_settings)
    settings["INTEGRATION"] = dict(
        settings["INTEGRATION"],
        severity_maps=SEVERITY_MAPS,
        work_type=WORK_TYPE,
        monitor_overrides={"disk": {"work_type": DISK_WORK_TYPE}},
    )
    app = create_app(settings)
    prepare_database(app.extensions["connector"])
    yield app.test_client()
    app.extensions["connector"].dispose()


def post_source(client: FlaskClient, source: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/hooks/{source}", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return dict(response.get_json()["accepted"][0])


def logicmonitor(level: str) -> dict[str, Any]:
    return {"alert_id": "LMD4711", "status": "active", "level": level, "host": "srv01"}


def datto_rmm(priority: str) -> dict[str, Any]:
    return {"status": "triggered", "alert_uid": "u-1", "priority": priority, "message": "Disk"}


def alertmanager(severity: str) -> dict[str, Any]:
    labels = {"alertname": "DiskFull", "severity": severity, "instance": "srv01:9100"}
    alert = {"status": "firing", "labels": labels, "startsAt": "2026-11-22T10:00:00Z"}
    return {"version": "4", "status": "firing", "alerts": [alert]}


#: (source, body, severity stored and on the ticket, the ticket's Autotask priority)
SEVERITY_THROUGH_THE_WEBHOOK = [
    pytest.param("datto_rmm", datto_rmm("Moderate"), "error", 1, id="datto-moderate-mapped"),
    pytest.param("datto_rmm", datto_rmm("Low"), "warning", 2, id="datto-low-mapped"),
    pytest.param("datto_rmm", datto_rmm("Critical"), "critical", 4, id="datto-critical-default"),
    pytest.param("datto_rmm", datto_rmm("Information"), "info", 3, id="datto-info-default"),
    pytest.param("logicmonitor", logicmonitor("warn"), "info", 3, id="lm-warn-mapped"),
    pytest.param("logicmonitor", logicmonitor("error"), "error", 1, id="lm-error-default"),
    pytest.param("alertmanager", alertmanager("sev1"), "critical", 4, id="am-sev1-mapped"),
    pytest.param("alertmanager", alertmanager("sev9"), "warning", 2, id="am-unknown-default"),
    pytest.param("generic", alert_body(severity="info"), "info", 3, id="generic-no-map"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("source", "body", "severity", "priority"), SEVERITY_THROUGH_THE_WEBHOOK)
def test_severity_maps_change_the_stored_severity_and_the_tickets_priority(
    mapped_client: FlaskClient,
    rest: RestClient,
    source: str,
    body: dict[str, Any],
    severity: str,
    priority: int,
) -> None:
    accepted = post_source(mapped_client, source, body)

    detail = alert_detail(mapped_client, accepted["alert_id"])
    assert detail["severity"] == severity
    assert [event["severity"] for event in detail["events"]] == [severity]
    app = mapped_client.application
    assert make_worker(app.extensions["connector"]).run_once() == 1
    ticket = alert_detail(mapped_client, accepted["alert_id"])["ticket"]
    assert ticket is not None
    item = rest.get(f"Tickets/{ticket['ticket_id']}").json()["item"]
    assert item["priority"] == priority
    assert f"Severity: {severity}" in item["description"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
@pytest.mark.parametrize(
    ("monitor", "work_type"),
    [
        pytest.param("disk", DISK_WORK_TYPE, id="monitor-override"),
        pytest.param("memory", WORK_TYPE, id="integration-default"),
    ],
)
def test_the_work_type_reaches_the_ticket_as_its_billing_code(
    mapped_client: FlaskClient, sandbox: Any, monitor: str, work_type: int
) -> None:
    accepted = hook(mapped_client, alert_body(monitor=monitor))

    assert make_worker(mapped_client.application.extensions["connector"]).run_once() == 1

    ticket = alert_detail(mapped_client, accepted["alert_id"])["ticket"]
    assert ticket is not None
    stored = sandbox.state.get("Tickets", ticket["ticket_id"])
    assert stored is not None
    assert stored["billingCodeID"] == work_type  # SOAP: AllocationCodeID


# -- source options: an integration's own constructor parameters for a source --------------------


def configured_app(connector_settings: dict[str, Any], **integration: Any) -> Any:
    settings = dict(connector_settings)
    settings["INTEGRATION"] = dict(settings["INTEGRATION"], **integration)
    app = create_app(settings)
    try:
        prepare_database(app.extensions["connector"])
    except Exception:
        app.extensions["connector"].dispose()
        raise
    return app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_source_options_choose_the_alertmanager_severity_and_tenant_labels(
    connector_settings: dict[str, Any],
) -> None:
    options = {"alertmanager": {"severity_label": "urgency", "tenant_labels": ["org"]}}
    app = configured_app(connector_settings, source_options=options)
    try:
        labels = {"alertname": "DiskFull", "urgency": "critical", "severity": "info"}
        alert = {
            "status": "firing",
            "labels": labels | {"org": "fabrikam"},
            "startsAt": "2026-11-22T10:00:00Z",
        }
        body = {"version": "4", "status": "firing", "alerts": [alert]}
        client = app.test_client()
        accepted = post_source(client, "alertmanager", body)
        detail = alert_detail(client, accepted["alert_id"])
        assert (detail["severity"], detail["tenant"]) == ("critical", "fabrikam")
    finally:
        app.extensions["connector"].dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("options", "words"),
    [
        pytest.param({"nagios": {"x": 1}}, "unknown sources 'nagios'", id="unknown-source"),
        pytest.param(
            {"alertmanager": {"severity_lable": "x"}}, "severity_lable", id="unknown-parameter"
        ),
    ],
)
def test_bad_source_options_stop_the_start_naming_the_problem(
    connector_settings: dict[str, Any], options: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        configured_app(connector_settings, source_options=options)


OFFICE_PROTECT_ROUTES = [
    pytest.param("fabrikam", "queued", id="mapped"),
    pytest.param(
        "contoso", "dropped: tenant 'contoso' is not mapped (unmapped: drop)", id="unmapped"
    ),
    pytest.param("switched-off", "dropped: tenant 'switched-off' is switched off", id="off"),
]


@pytest.mark.parametrize(("tenant", "disposition"), OFFICE_PROTECT_ROUTES)
def test_office_protect_tickets_only_mapped_tenants_and_keeps_the_rest_visible(
    client: FlaskClient, tenant: str, disposition: str
) -> None:
    event = {"event_id": "evt-1", "event_type": "Sign-In From Unauthorized Country"}
    accepted = post_source(client, "office_protect", event | {"tenant": tenant})

    assert accepted["disposition"] == disposition
    detail = alert_detail(client, accepted["alert_id"])
    assert [e["disposition"] for e in detail["events"]] == [disposition]
    assert len(detail["deliveries"]) == (1 if disposition == "queued" else 0)
