"""The generic JSON source: captured payloads in, normalized alerts out; no body gives a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.sources._common import MAX_ALERTS
from adapters.sources.generic import GenericSource
from connector.domain import AlertStatus, IncomingAlert, Severity
from connector.errors import PayloadError
from tests.conftest import FIXTURES, HOOK_TOKEN

PAYLOADS = FIXTURES / "sources" / "generic"


def parse_fixture(name: str) -> list[IncomingAlert]:
    return GenericSource().parse(json.loads((PAYLOADS / name).read_text()))


def test_single_alert() -> None:
    [alert] = parse_fixture("single_alert.json")

    assert alert == IncomingAlert(
        source="generic",
        fingerprint="lm-disk-srv01-var",
        status=AlertStatus.ACTIVE,
        severity=Severity.ERROR,
        title="Disk /var on srv01.fabrikam.local is 97% full",
        message=(
            "Filesystem /var on srv01.fabrikam.local has 2.1 GB free of 64 GB (97% used).\n"
            "Threshold: > 95% for 10 minutes."
        ),
        host="srv01.fabrikam.local",
        tenant="fabrikam",
        monitor="Filesystem Capacity",
        # Every property value is kept as text; the sender's extra fields are ignored.
        properties={
            "instance": "/var",
            "datapoint": "PercentUsed",
            "value": "97.2",
            "threshold": "> 95",
            "autotask.accountid": "29683415",
            "collector": "12",
            "virtual": "false",
        },
        started_at=datetime(2026, 11, 22, 9, 50, tzinfo=UTC),
        occurred_at=datetime(2026, 11, 22, 10, 0, 5, 250_000, tzinfo=UTC),
        note="",
        actor="",
        raw_severity="error",
    )


def test_batch() -> None:
    firewall, cpu, backup = parse_fixture("batch.json")

    # A numeric id becomes text; words are case-insensitive; offsets are turned into UTC.
    assert firewall == IncomingAlert(
        source="generic",
        fingerprint="880213",
        status=AlertStatus.ACTIVE,
        severity=Severity.CRITICAL,
        title="Host northwind-fw01 is down",
        message="ICMP ping: 100% packet loss over 5 checks.",
        host="northwind-fw01",
        tenant="northwind",
        monitor="ping",
        properties={},
        started_at=datetime(2026, 11, 22, 10, 59, 30, tzinfo=UTC),
        occurred_at=None,
        raw_severity="critical",  # words are case-insensitive: kept in lower case
    )
    # A timestamp without an offset is taken as UTC.
    assert cpu.started_at == datetime(2026, 11, 22, 10, 58, tzinfo=UTC)
    assert cpu.occurred_at == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    assert (cpu.status, cpu.severity, cpu.host, cpu.monitor) == (
        AlertStatus.ACTIVE,
        Severity.WARNING,
        "app02",
        "cpu",
    )
    # Only id, status and title are required; severity defaults to warning (no raw word).
    assert backup == IncomingAlert(
        source="generic",
        fingerprint="backup-nightly",
        status=AlertStatus.CLEARED,
        severity=Severity.WARNING,
        title="Nightly backup job failed",
        tenant="fabrikam",
        monitor="backup",
    )


def test_acknowledgement_with_note() -> None:
    [alert] = parse_fixture("acknowledged_with_note.json")

    assert alert == IncomingAlert(
        source="generic",
        fingerprint="lm-disk-srv01-var",
        status=AlertStatus.ACKNOWLEDGED,
        severity=Severity.WARNING,
        title="Disk /var on srv01.fabrikam.local is 97% full",
        note="Rotating logs now; will extend the volume tonight.",
        actor="jane.doe@fabrikam.example",
        occurred_at=datetime(2026, 11, 22, 10, 12, 40, tzinfo=UTC),
    )


def test_resolved() -> None:
    [alert] = parse_fixture("resolved.json")

    assert alert == IncomingAlert(
        source="generic",
        fingerprint="lm-disk-srv01-var",
        status=AlertStatus.CLEARED,
        severity=Severity.INFO,
        title="Disk /var on srv01.fabrikam.local is back to 71% full",
        host="srv01.fabrikam.local",
        started_at=datetime(2026, 11, 22, 9, 50, tzinfo=UTC),
        occurred_at=datetime(2026, 11, 22, 18, 30, tzinfo=UTC),
        raw_severity="info",
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("active", AlertStatus.ACTIVE),
        ("firing", AlertStatus.ACTIVE),
        ("acknowledged", AlertStatus.ACKNOWLEDGED),
        ("ack", AlertStatus.ACKNOWLEDGED),
        ("escalated", AlertStatus.ESCALATED),
        ("cleared", AlertStatus.CLEARED),
        ("resolved", AlertStatus.CLEARED),
        ("  RESOLVED\n", AlertStatus.CLEARED),
    ],
)
def test_status_words(word: str, status: AlertStatus) -> None:
    [alert] = GenericSource().parse({"id": "a", "status": word, "title": "t"})

    assert alert.status is status


def test_at_most_500_alerts() -> None:
    one = {"id": "a", "status": "active", "title": "t"}

    assert len(GenericSource().parse({"alerts": [one] * MAX_ALERTS})) == MAX_ALERTS
    with pytest.raises(PayloadError) as refused:
        GenericSource().parse({"alerts": [one] * (MAX_ALERTS + 1)})
    assert refused.value.details == {"alerts": [f"At most {MAX_ALERTS} alerts."]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("started_at", "0001-01-01T00:00:00+14:00"),
        ("occurred_at", "9999-12-31T23:59:59-14:00"),
    ],
)
def test_timestamps_that_leave_the_calendar_in_utc_are_refused(field: str, value: str) -> None:
    with pytest.raises(PayloadError) as refused:
        GenericSource().parse({"id": "a", "status": "active", "title": "t", field: value})

    assert list(refused.value.details or {}) == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "nul \x00"}, "title"),
        ({"id": "lone \ud800"}, "id"),
        ({"properties": {"k\x00": "v"}}, "properties"),
        ({"properties": {"k": "\udfff"}}, "properties"),
    ],
    ids=["nul-title", "surrogate-id", "nul-property-key", "surrogate-property"],
)
def test_text_no_database_can_store_is_refused(body: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        GenericSource().parse({"id": "a", "status": "active", "title": "t"} | body)

    assert list(refused.value.details or {}) == [field]


# -- property tests: whatever is posted, the answer is 202 or a precise 400 ----------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about parsing, and must stay fast."""
    return f"sqlite:///{tmp_path}/connector.sqlite"


FIELDS = [
    "id",
    "status",
    "severity",
    "title",
    "message",
    "host",
    "tenant",
    "monitor",
    "properties",
    "started_at",
    "occurred_at",
    "note",
    "acknowledged_by",
]
VALID = {
    "id": "disk-srv01",
    "status": "active",
    "severity": "error",
    "title": "Disk full on srv01",
    "message": "/var is 99% full",
    "host": "srv01",
    "tenant": "fabrikam",
    "monitor": "disk",
    "properties": {"site": "Berlin"},
    "started_at": "2026-11-22T10:00:00Z",
    "occurred_at": "2026-11-22T10:00:05Z",
    "note": "",
    "acknowledged_by": "",
}

# Text that includes what databases refuse: NUL and unpaired surrogates.
text = st.text(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"]), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23))
timestamps = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(),
    offsets,
)
words = st.sampled_from(
    ["active", "FIRING", "resolved", "Ack", "escalated", "critical", "info", "bogus", ""]
)
field_values = json_values | timestamps | words | st.text(max_size=300)
mutations = st.lists(
    st.tuples(st.sampled_from(FIELDS), st.none() | st.tuples(field_values)),
    min_size=1,
    max_size=3,
)
FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def post_raw(client: FlaskClient, body: bytes) -> Any:
    return client.post(
        "/hooks/generic",
        data=body,
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"},
    )


def assert_precise_400(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == 400
    assert error["message"]
    return dict(error)


@FAST
@given(value=json_values)
@example(value=None)
@example(value={"alerts": []})
@example(value={"alerts": [None]})
def test_random_json_is_never_a_500(client: FlaskClient, value: Any) -> None:
    response = post_raw(client, json.dumps(value).encode())

    assert response.status_code in (202, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert_precise_400(response)


@FAST
@given(body=st.binary(max_size=200))
@example(body=b"[" * 50_000)
@example(body=b'{"id": "a", "status": "active", "title": "\\ud800"}')
def test_random_bytes_are_never_a_500(client: FlaskClient, body: bytes) -> None:
    response = post_raw(client, body)

    assert response.status_code in (202, 400), response.get_data(as_text=True)


@FAST
@given(changes=mutations, batch=st.booleans())
@example(changes=[("started_at", ("0001-01-01T00:00:00+14:00",))], batch=False)
@example(changes=[("occurred_at", ("9999-12-31T23:59:59-14:00",))], batch=True)
@example(changes=[("title", ("\x00",))], batch=False)
@example(changes=[("properties", ({"k": "\ud800"},))], batch=False)
@example(changes=[("tenant", ("x" * 255,)), ("properties", ({},))], batch=False)
def test_mutated_alert_is_202_or_a_400_naming_the_mutated_field(
    client: FlaskClient, changes: list[tuple[str, tuple[Any] | None]], batch: bool
) -> None:
    alert = dict(VALID)
    for field, change in changes:
        if change is None:
            alert.pop(field, None)
        else:
            alert[field] = change[0]
    body = {"alerts": [VALID, alert]} if batch else alert

    response = post_raw(client, json.dumps(body).encode())

    if response.status_code == 202:
        answer = response.get_json()
        accepted, rejected = answer["accepted"], answer["rejected"]
        assert len(accepted) + len(rejected) == (2 if batch else 1)
        for entry in accepted:
            assert entry["disposition"] in ("queued", "duplicate") or entry[
                "disposition"
            ].startswith(("dropped: ", "stale: "))
        # Only the mutated alert of a batch may be refused, naming only mutated fields.
        for entry in rejected:
            assert (entry["index"], entry["disposition"]) == (1, "rejected")
            named = {key.removeprefix("alerts.1.") for key in entry["details"]}
            assert named <= {field for field, _ in changes}, entry
        return
    error = assert_precise_400(response)
    prefix = "alerts.1." if batch else ""
    named = {key.removeprefix(prefix) for key in error["details"]}
    assert named <= {field for field, _ in changes}, error
    assert all(key.startswith(prefix) for key in error["details"]), error


@pytest.mark.parametrize("blank", [" ", "\t", " \n "])
def test_a_blank_id_is_refused(blank: str) -> None:
    # Found by fuzzing (fuzz/regressions/generic): " " was taken, one fingerprint for all such.
    body = {"id": blank, "status": "firing", "title": "CPU above 90% on app02"}

    with pytest.raises(PayloadError) as refused:
        GenericSource().parse(body)

    assert list(refused.value.details or {}) == ["id"]
