"""Prometheus Alertmanager webhooks (v4): one alert per entry, repeats and HA twins deduplicate."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapters.sources.alertmanager import AlertmanagerSource, host_of, label_fingerprint
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


def parse(payload: Any, **options: Any) -> list[IncomingAlert]:
    return AlertmanagerSource(**options).parse(payload)


def parse_one(payload: Any, **options: Any) -> IncomingAlert:
    [alert] = parse(payload, **options)
    return alert


GROUP_KEY = '{}/{tenant=~".+"}:{alertname="NodeFilesystemAlmostOutOfSpace", tenant="fabrikam"}'
GROUP = {
    "groupKey": GROUP_KEY,
    "receiver": "autotask",
    "externalURL": "http://alertmanager.fabrikam.internal:9093",
    "generatorURL": (
        "http://prometheus.fabrikam.internal:9090/graph?g0.expr="
        "node_filesystem_avail_bytes%7Bjob%3D%22node%22%7D&g0.tab=1"
    ),
}
RUNBOOK = "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemalmostoutofspace"
VAR_STARTS = datetime(2026, 11, 22, 9, 50, 3, 128_000, tzinfo=UTC)
VAR_ALERT = IncomingAlert(
    source="alertmanager",
    fingerprint="8e3bb3a4d2f5c6a1",
    status=AlertStatus.ACTIVE,
    severity=Severity.CRITICAL,
    title="Filesystem has less than 3% space left.",
    message=(
        "Filesystem on /dev/sda2 at srv01.fabrikam.internal:9100 has only 2.91% available"
        " space left."
    ),
    host="srv01.fabrikam.internal",  # the exporter's port dropped
    tenant="fabrikam",
    monitor="NodeFilesystemAlmostOutOfSpace",
    properties={
        "label.alertname": "NodeFilesystemAlmostOutOfSpace",
        "label.device": "/dev/sda2",
        "label.fstype": "ext4",
        "label.instance": "srv01.fabrikam.internal:9100",
        "label.job": "node",
        "label.mountpoint": "/var",
        "label.severity": "critical",
        "label.tenant": "fabrikam",
        "annotation.description": (
            "Filesystem on /dev/sda2 at srv01.fabrikam.internal:9100 has only 2.91% available"
            " space left."
        ),
        "annotation.runbook_url": RUNBOOK,
        "annotation.summary": "Filesystem has less than 3% space left.",
    }
    | GROUP,
    started_at=VAR_STARTS,
    # Firing: startsAt, the same in every re-send and on both Alertmanagers of an HA pair.
    occurred_at=VAR_STARTS,
    raw_severity="critical",
)
DATA_STARTS = datetime(2026, 11, 22, 9, 2, 33, 500_000, tzinfo=UTC)  # 10:02:33.5+01:00
DATA_ALERT = IncomingAlert(
    source="alertmanager",
    fingerprint="c41f0e27a9b3d855",
    status=AlertStatus.ACTIVE,
    severity=Severity.WARNING,
    title="Filesystem has less than 5% space left.",
    message=(
        "Filesystem on /dev/nvme0n1p3 at 10.20.0.15:9100 has only 4.12% available space left."
    ),
    host="10.20.0.15",
    tenant="fabrikam",
    monitor="NodeFilesystemAlmostOutOfSpace",
    properties={
        "label.alertname": "NodeFilesystemAlmostOutOfSpace",
        "label.device": "/dev/nvme0n1p3",
        "label.fstype": "xfs",
        "label.instance": "10.20.0.15:9100",
        "label.job": "node",
        "label.mountpoint": "/srv/data",
        "label.severity": "warning",
        "label.tenant": "fabrikam",
        "annotation.description": (
            "Filesystem on /dev/nvme0n1p3 at 10.20.0.15:9100 has only 4.12% available space left."
        ),
        "annotation.runbook_url": RUNBOOK,
        "annotation.summary": "Filesystem has less than 5% space left.",
    }
    | GROUP,
    started_at=DATA_STARTS,
    # A firing alert's endsAt (here in the future, as Prometheus sends it) is not its event time.
    occurred_at=DATA_STARTS,
    raw_severity="warning",
)
VAR_RESOLVED = IncomingAlert(
    **(
        VAR_ALERT.__dict__
        | {
            "status": AlertStatus.CLEARED,
            # Resolved: endsAt.
            "occurred_at": datetime(2026, 11, 22, 14, 5, 3, 128_000, tzinfo=UTC),
        }
    )
)
PROBE_STARTS = datetime(2026, 11, 22, 11, 58, 30, 512_345, tzinfo=UTC)  # nanoseconds cut
PROBE_LABELS = {
    "severity": "page",
    "job": "blackbox_http",
    "instance": "https://shop.northwind.example/health",
    "customer": "northwind",
    "alertname": "ProbeFailure",
}
PROBE = IncomingAlert(
    source="alertmanager",
    # No fingerprint in the entry: a digest of its sorted labels.
    fingerprint=label_fingerprint(PROBE_LABELS),
    status=AlertStatus.ACTIVE,
    severity=Severity.CRITICAL,  # "page"
    title="ProbeFailure",  # no summary annotation: the alert name
    message="Probe of https://shop.northwind.example/health has failed for more than 5 minutes.",
    host="shop.northwind.example",  # a probe URL: its host
    tenant="northwind",  # no tenant label: the customer label
    monitor="ProbeFailure",
    properties={f"label.{k}": v for k, v in PROBE_LABELS.items()}
    | {
        "annotation.description": (
            "Probe of https://shop.northwind.example/health has failed for more than 5 minutes."
        ),
        "groupKey": '{}:{alertname="ProbeFailure"}',
        "receiver": "webhook",
        "externalURL": "http://alertmanager.northwind.example:9093",
        "generatorURL": (
            "http://prometheus.northwind.example:9090/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1"
        ),
    },
    started_at=PROBE_STARTS,
    occurred_at=PROBE_STARTS,
    raw_severity="page",
)
#: captured_*.json: real webhooks of prometheus-alertmanager 0.25 (Debian), pushed with amtool
#: (no `--end` while firing: Alertmanager writes the zero endsAt).
CAPTURED_STARTS = datetime(2026, 11, 27, 10, 31, 6, tzinfo=UTC)
CAPTURED_ENDS = datetime(2026, 11, 27, 10, 34, 9, tzinfo=UTC)
CAPTURED_GROUP = {
    "groupKey": '{}:{alertname="NodeFilesystemAlmostOutOfSpace", instance="srv01:9100"}',
    "receiver": "hook",
    "externalURL": "http://alertmanager.example.net:9093",
    "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=node_filesystem_avail_bytes",
}


def captured(mountpoint: str, severity: Severity, fingerprint: str, **extra: Any) -> IncomingAlert:
    """One alert of the captured webhooks, firing."""
    summary = extra.pop("summary")
    annotations = {f"annotation.{k}": v for k, v in extra.items()}
    return IncomingAlert(
        source="alertmanager",
        fingerprint=fingerprint,
        status=AlertStatus.ACTIVE,
        severity=severity,
        title=summary,
        message=extra.get("description", ""),
        host="srv01",
        tenant="fabrikam",
        monitor="NodeFilesystemAlmostOutOfSpace",
        properties={
            "label.alertname": "NodeFilesystemAlmostOutOfSpace",
            "label.instance": "srv01:9100",
            "label.job": "node",
            "label.mountpoint": mountpoint,
            "label.severity": severity.value,
            "label.tenant": "fabrikam",
            **annotations,
            "annotation.summary": summary,
        }
        | CAPTURED_GROUP,
        started_at=CAPTURED_STARTS,
        occurred_at=CAPTURED_STARTS,
        raw_severity=severity.value,
    )


CAPTURED_ROOT = captured(
    "/",
    Severity.CRITICAL,
    "483de61b9e27a725",
    summary="Filesystem / on srv01 has only 3% space left",
    description="Filesystem on /dev/sda1 at srv01:9100 has only 3.12% available space left.",
)
CAPTURED_VAR = captured(
    "/var",
    Severity.WARNING,
    "53516ef23a0765d9",
    summary="Filesystem /var on srv01 has only 4% space left",
)
EXPECTED: dict[str, list[IncomingAlert]] = {
    "captured_firing.json": [CAPTURED_ROOT, CAPTURED_VAR],
    "captured_resolved.json": [
        IncomingAlert(
            **(alert.__dict__ | {"status": AlertStatus.CLEARED, "occurred_at": CAPTURED_ENDS})
        )
        for alert in (CAPTURED_ROOT, CAPTURED_VAR)
    ],
    "firing.json": [VAR_ALERT, DATA_ALERT],
    "resolved.json": [VAR_RESOLVED],
    "without_fingerprint.json": [PROBE],
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names("alertmanager")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes_every_field(name: str) -> None:
    assert parse(fixture("alertmanager", name)) == EXPECTED[name]


def test_label_fingerprint_is_stable_across_label_order() -> None:
    body = fixture("alertmanager", "without_fingerprint.json")
    fingerprints = set()
    for seed in range(5):
        shuffled = copy.deepcopy(body)
        items = list(shuffled["alerts"][0]["labels"].items())
        random.Random(seed).shuffle(items)
        shuffled["alerts"][0]["labels"] = dict(items)
        fingerprints.add(parse_one(shuffled).fingerprint)

    assert fingerprints == {PROBE.fingerprint}
    other = copy.deepcopy(body)
    other["alerts"][0]["labels"]["instance"] = "https://shop.northwind.example/cart"
    assert parse_one(other).fingerprint != PROBE.fingerprint


def test_the_same_firing_alert_resent_or_from_an_ha_peer_is_the_same_event() -> None:
    first = parse(fixture("alertmanager", "firing.json"))
    # The peer Alertmanager (or the next group_interval) sends the group again, with its own
    # externalURL, a different group composition and truncation count.
    peer = fixture("alertmanager", "firing.json") | {
        "externalURL": "http://alertmanager-1.fabrikam.internal:9093",
        "truncatedAlerts": 3,
    }
    peer["alerts"] = list(reversed(peer["alerts"]))
    again = parse(peer)

    def key(alert: IncomingAlert) -> tuple[object, ...]:
        return (alert.fingerprint, alert.status, alert.occurred_at)

    assert sorted(map(key, again), key=str) == sorted(map(key, first), key=str)


def test_a_refire_after_resolution_is_a_new_event_of_the_same_alert() -> None:
    refire = fixture("alertmanager", "firing.json")
    refire["alerts"][0]["startsAt"] = "2026-11-22T16:00:00Z"

    alert = parse(refire)[0]

    assert alert.fingerprint == VAR_ALERT.fingerprint
    assert alert.occurred_at == datetime(2026, 11, 22, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ends_at", "occurred_at"),
    [
        ("2026-11-22T14:05:03.128Z", datetime(2026, 11, 22, 14, 5, 3, 128_000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time: unknown
        (None, None),
    ],
)
def test_resolved_occurs_at_ends_at(ends_at: str | None, occurred_at: datetime | None) -> None:
    body = fixture("alertmanager", "resolved.json")
    if ends_at is None:
        del body["alerts"][0]["endsAt"]
    else:
        body["alerts"][0]["endsAt"] = ends_at

    alert = parse_one(body)

    assert (alert.status, alert.occurred_at, alert.started_at) == (
        AlertStatus.CLEARED,
        occurred_at,
        VAR_STARTS,
    )


def minimal(labels: dict[str, str], /, **alert: Any) -> dict[str, Any]:
    entry = {"status": "firing", "labels": labels, "startsAt": "2026-11-22T10:00:00Z"} | alert
    return {"version": "4", "alerts": [entry]}


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        *[(w, Severity.CRITICAL) for w in ("critical", "CRIT", "page", "emergency", "P1")],
        *[(w, Severity.ERROR) for w in ("error", "high", "major", "err")],
        *[(w, Severity.WARNING) for w in ("warning", "warn", "medium", "minor", "average")],
        *[(w, Severity.INFO) for w in ("info", "low", "none", "notice", "informational")],
        ("", Severity.WARNING),
        ("bogus", Severity.WARNING),
    ],
)
def test_severity_label_words(word: str, severity: Severity) -> None:
    assert parse_one(minimal({"alertname": "A", "severity": word})).severity is severity


def test_without_a_severity_label_the_severity_is_warning() -> None:
    assert parse_one(minimal({"alertname": "A"})).severity is Severity.WARNING


def test_severity_and_tenant_labels_are_configurable() -> None:
    labels = {"alertname": "A", "priority": "P1", "severity": "info", "org": "acme", "tenant": "x"}

    alert = parse_one(minimal(labels), severity_label="priority", tenant_labels=["org"])

    assert (alert.severity, alert.tenant) == (Severity.CRITICAL, "acme")


@pytest.mark.parametrize(
    ("labels", "tenant"),
    [
        ({"tenant": "fabrikam", "customer": "northwind"}, "fabrikam"),
        ({"tenant": " ", "customer": "northwind"}, "northwind"),
        ({"customer": "northwind"}, "northwind"),
        ({}, ""),
    ],
)
def test_tenant_label_then_customer(labels: dict[str, str], tenant: str) -> None:
    assert parse_one(minimal({"alertname": "A"} | labels)).tenant == tenant


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        ("srv01:9100", "srv01"),
        ("srv01.fabrikam.internal:9100", "srv01.fabrikam.internal"),
        ("10.20.0.15:9100", "10.20.0.15"),
        ("[2001:db8::1]:9100", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("https://shop.example/health", "shop.example"),
        ("tcp://db01:5432", "db01"),
        ("http://[::1", "http://[::1"),
        ("srv01", "srv01"),
        ("srv01:notaport", "srv01:notaport"),
        ("", ""),
    ],
)
def test_host_from_instance(instance: str, host: str) -> None:
    assert host_of(instance) == host


def test_host_falls_back_to_host_labels() -> None:
    assert parse_one(minimal({"alertname": "A", "hostname": "nas01"})).host == "nas01"


def test_title_and_message_fall_back() -> None:
    plain = parse_one(minimal({"alertname": "Watchdog"}, annotations={"message": "m"}))
    nameless = parse_one(minimal({"job": "x"}, fingerprint="abc"))

    assert (plain.title, plain.message, plain.monitor) == ("Watchdog", "m", "Watchdog")
    assert (nameless.title, nameless.monitor) == ("Alert abc", "")


def test_every_alert_of_a_post_becomes_an_alert() -> None:
    body = fixture("alertmanager", "firing.json")
    body["alerts"] = body["alerts"] + fixture("alertmanager", "resolved.json")["alerts"]

    alerts = parse(body)

    assert [(a.fingerprint, a.status) for a in alerts] == [
        ("8e3bb3a4d2f5c6a1", AlertStatus.ACTIVE),
        ("c41f0e27a9b3d855", AlertStatus.ACTIVE),
        ("8e3bb3a4d2f5c6a1", AlertStatus.CLEARED),
    ]


def test_overlong_fingerprint_becomes_a_digest() -> None:
    alert = parse_one(minimal({"alertname": "A"}, fingerprint="f" * 300))

    assert alert.fingerprint == label_fingerprint({"alertname": "A"})
    assert len(alert.fingerprint) <= 255


def test_truncated_alerts_are_recorded() -> None:
    alert = parse_one(minimal({"alertname": "A"}) | {"truncatedAlerts": 12})

    assert alert.properties["truncatedAlerts"] == "12"


def test_unknown_fields_are_ignored() -> None:
    body = fixture("alertmanager", "resolved.json") | {"orgId": 1, "title": "x", "state": "ok"}
    body["alerts"][0] |= {"silenceURL": "http://x", "values": {"B": 44.2}, "valueString": "v"}

    assert parse(body) == [VAR_RESOLVED]


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"version": "4", "alerts": [{"labels": {"alertname": "A"}}]})

    assert sorted(refused.value.details or {}) == ["alerts.0.startsAt", "alerts.0.status"]


def test_missing_alerts_is_named() -> None:
    with pytest.raises(PayloadError) as refused:
        parse({"version": "4", "status": "firing"})

    assert list(refused.value.details or {}) == ["alerts"]


def test_an_alert_needs_labels_or_a_fingerprint() -> None:
    with pytest.raises(PayloadError) as refused:
        parse(minimal({}))

    assert list(refused.value.details or {}) == ["alerts.0.labels"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3"}, "version"),
        ({"version": "5"}, "version"),
        ({"truncatedAlerts": -1}, "truncatedAlerts"),
        ({"truncatedAlerts": "2"}, "truncatedAlerts"),
        ({"commonLabels": ["a"]}, "commonLabels"),
        ({"alerts": []}, "alerts"),
        ({"alerts": {"0": {}}}, "alerts"),
        ({"alerts": ["x"]}, "alerts.0"),
    ],
)
def test_bad_group_fields_are_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse(minimal({"alertname": "A"}) | change)

    assert list(refused.value.details or {}) == [field]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "pending"}, "alerts.0.status"),
        ({"startsAt": "2026-11-22 10:00"}, None),  # accepted: ISO 8601 with a space
        ({"startsAt": 1795341000}, "alerts.0.startsAt"),
        ({"startsAt": "0001-01-01T00:00:00+14:00"}, "alerts.0.startsAt"),
        ({"endsAt": "never"}, "alerts.0.endsAt"),
        ({"labels": {"alertname": "A", "x": {"y": 1}}}, "alerts.0.labels.x.value"),
        ({"labels": {"alertname": "A\x00"}}, "alerts.0.labels.alertname.value"),
        ({"annotations": {"summary": "\ud800"}}, "alerts.0.annotations.summary.value"),
        ({"fingerprint": 12}, None),  # a number is taken as text
    ],
)
def test_bad_alert_fields_are_named(change: dict[str, Any], field: str | None) -> None:
    body = minimal({"alertname": "A"}, **change)

    if field is None:
        assert parse(body)
        return
    with pytest.raises(PayloadError) as refused:
        parse(body)
    assert list(refused.value.details or {}) == [field]


def test_at_most_500_alerts() -> None:
    one = minimal({"alertname": "A"})["alerts"][0]

    assert len(parse({"alerts": [one] * 500})) == 500
    with pytest.raises(PayloadError) as refused:
        parse({"alerts": [one] * 501})
    assert list(refused.value.details or {}) == ["alerts"]


def test_hostile_text_is_kept_literally() -> None:
    alert = parse_one(
        minimal(
            {"alertname": HOSTILE[:100], "instance": HOSTILE[:60]},
            annotations={"summary": HOSTILE, "description": HOSTILE},
        )
    )

    assert (alert.title, alert.message, alert.monitor) == (HOSTILE, HOSTILE, HOSTILE[:100])
    assert alert.properties["label.instance"] == HOSTILE[:60]


# -- through the webhook -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_posted_is_202_and_recorded(client: FlaskClient, name: str) -> None:
    response = post(client, "alertmanager", fixture("alertmanager", name))

    assert response.status_code == 202, response.get_data(as_text=True)
    accepted = response.get_json()["accepted"]
    assert [a["disposition"] for a in accepted] == ["queued"] * len(EXPECTED[name])
    for entry, alert in zip(accepted, EXPECTED[name], strict=True):
        assert_recorded(alert_record(client, entry["alert_id"]), alert)


def test_repeats_and_ha_twins_deduplicate_through_the_webhook(client: FlaskClient) -> None:
    firing = fixture("alertmanager", "firing.json")
    twin = firing | {"externalURL": "http://alertmanager-1.fabrikam.internal:9093"}
    resolved = fixture("alertmanager", "resolved.json")

    rounds = [
        post(client, "alertmanager", body).get_json()["accepted"]
        for body in (firing, twin, firing, resolved, resolved | {"receiver": "peer"})
    ]

    assert [[a["disposition"] for a in r] for r in rounds] == [
        ["queued", "queued"],
        ["duplicate", "duplicate"],  # the HA peer's copy
        ["duplicate", "duplicate"],  # the next group_interval
        ["queued"],  # the resolution
        ["duplicate"],  # the peer's resolution
    ]
    assert rounds[3][0]["alert_id"] == rounds[0][0]["alert_id"]
    record = alert_record(client, rounds[0][0]["alert_id"])
    assert record["status"] == "cleared"
    assert [e["disposition"] for e in record["events"]] == [
        "queued",
        "duplicate",
        "duplicate",
        "queued",
        "duplicate",
    ]
